#!/usr/bin/env bash
# Benchmark scenario for scripts/bench (sections 2-4 of BENCHMARKS.md). It
# measures and does not judge: no time is asserted; a check fails only when a
# contender does not do its job (each is verified) or the harness breaks.
#
#   tests/vm/run tests/vm/scenarios/bench.sh PATH-TO-net-hook [--smoke]
#
# 2. managed `started`/`stopped` of 1 and 16 VLANs on virbr1: net-hook vs the
#    shell `ip` hook vs the pyroute2 hook (if python3-pyroute2 is installed),
#    interleaved rounds; 3. their peak RSS and syscalls; 4. `virsh net-start`/
#    `net-destroy 1_provider` with net-hook installed vs without (interleaved
#    in one daemon, and a daemon started without any hook), plus the time
#    libvirtd's own log shows for each hook call.
# JSON results go to $NET_HOOK_VM_RESULTS/bench/ (scripts/bench renders them).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

src_bin=${1:?usage: bench.sh PATH-TO-net-hook [--smoke]}
smoke=0
[[ ${2:-} == --smoke ]] && smoke=1
bench_py=$NET_HOOK_REPO/scripts/bench.d/hookbench.py
py=/usr/bin/python3
out=$NET_HOOK_VM_RESULTS/bench
mkdir -p "$out/strace"

# Under QEMU TCG a pyroute2 run takes seconds and a 16-VLAN shell run tens of
# them: those take part in every k-th round only (always side by side).
sparse=(--every net-hook-16=2 --every shell-ip-16=2 --every pyroute2-1=2 --every pyroute2-16=4)
if ((smoke)); then
    # Round 0 runs every contender once (each is verified), round 1 the
    # every-round ones again (the other `stopped` case).
    # The 16-VLAN baselines run the same code as their 1-VLAN runs, in a loop.
    managed_args=(--rounds 2 --warmup 0 --rss-reps 1 --no-copy-up --resources net-hook
        --skip shell-ip-16 --skip pyroute2-16)
    e2e_rounds=1 e2e_none_rounds=1 e2e_warmup=0
else
    managed_args=(--rounds 8 --warmup 1 --rss-reps 3)
    e2e_rounds=4 e2e_none_rounds=3 e2e_warmup=1
fi

# step NAME CMD...: run CMD with its output shown; a check that it worked.
step() {
    local name=$1 rc=0
    shift
    "$@" || rc=$?
    t_eq "$name" 0 "$rc"
}

vm_install_binaries "$(dirname "$src_bin")"
mkdir -p /etc/net-hook
t_match "net-hook install" 'link /etc/libvirt/hooks/network.d/50-net-hook' "$(net-hook install 2>&1)"

# A host has journald; here a syslog socket at least makes net-hook's logging
# do its real work (a send per message) instead of finding no socket.
busybox syslogd -n -O /run/bench-syslog.log &
syslogd_pid=$!
vm_wait 5 test -S /dev/log || vm_note "no /dev/log from busybox syslogd; net-hook logs to stderr only"

where="VM: QEMU TCG (no KVM), $(nproc) vCPUs, $(free -m | awk '/^Mem:/{print $2}') MiB"
pyroute2=()
if "$py" -c 'import pyroute2' 2>/dev/null; then
    pyroute2=(--pyroute2)
else
    t_skip "pyroute2 contender" "python3-pyroute2 is not installed"
    sparse=(--every net-hook-16=2 --every shell-ip-16=2)
fi

# ---------------------------------------------------------------- 2 + 3
vm_note "section 2: managed started/stopped (guest uptime $(vm_uptime)s)"
step "managed: every contender verified and measured" \
    "$py" "$bench_py" managed --work /tmp/bench-managed --out "$out/managed.json" \
    --strace-dir "$out/strace" --where "$where" "${managed_args[@]}" "${pyroute2[@]}" "${sparse[@]}"
t_check "net-hook logged to syslog" \
    "$(grep -q 'net-hook' /run/bench-syslog.log 2>/dev/null || echo 'nothing from net-hook in the syslog')"
kill "$syslogd_pid" 2>/dev/null || true

# ---------------------------------------------------------------- 4
vm_note "section 4: virsh net-start with and without the hook (guest uptime $(vm_uptime)s)"
install -m 0644 "$NET_HOOK_REPO/examples/1_provider.toml" /etc/net-hook/net-hook.toml
libvirt_version=$(libvirtd --version | awk '{print $NF}')

# As for the contenders in section 2, what libvirtd and virsh load and run
# (dnsmasq, iptables...) is copied off the uncached 9p root first (copy_up in
# hookbench.py): the files libvirtd has mapped, and what one traced
# net-start + net-destroy opens. Untraced rounds follow.
warm_libvirt() {
    local pid strace_pid
    pid=$(vm_libvirtd_pid) || vm_bail "no libvirtd to warm"
    awk '$6 ~ /^\// {print $6}' "/proc/$pid/maps" | sort -u >/tmp/bench-libvirtd.maps
    strace -f -qq -s 4096 -e trace=execve,open,openat -o /tmp/bench-libvirtd.trace -p "$pid" &
    strace_pid=$!
    sleep 2
    strace -f --seccomp-bpf -qq -s 4096 -e trace=execve,open,openat -o /tmp/bench-virsh.trace \
        virsh -q -c qemu:///system net-start 1_provider >/dev/null || vm_bail "warm-up net-start failed"
    vm_virsh net-destroy 1_provider >/dev/null || vm_bail "warm-up net-destroy failed"
    kill "$strace_pid"
    wait "$strace_pid" 2>/dev/null
    "$py" "$bench_py" copy-up --trace /tmp/bench-libvirtd.trace --trace /tmp/bench-virsh.trace \
        --list /tmp/bench-libvirtd.maps
}

e2e() { # e2e MODE ROUNDS
    step "e2e $1: net-start/net-destroy worked, the hook ran exactly when installed" \
        "$py" "$bench_py" e2e --mode "$1" --rounds "$2" --warmup "$e2e_warmup" --out "$out/e2e.json" \
        --where "$where" --libvirt "$libvirt_version" --libvirt-log "$command_log"
}

# libvirtd logs each command it runs (the hooks too) with ms timestamps at
# debug level: "About to run ..." and, once reaped, "Result ...". That gives
# the time it spends per hook call, besides the whole virsh times.
command_log=/var/log/libvirt/bench-command.log
cat >>/etc/libvirt/libvirtd.conf <<EOF
log_filters="1:util.command"
log_outputs="1:file:$command_log 3:file:$VM_LIBVIRTD_LOG"
EOF

# Started with the hook installed, libvirtd lists network.d/ on every call
# (it caches only whether a hook existed at start), so the entry can be
# switched between rounds: net-hook, /bin/true (what any hook costs), none.
net-hook install >/dev/null
vm_start_libvirtd --apparmor
vm_virsh net-define "$NET_HOOK_REPO/xml-templates/1_provider.xml" >/dev/null || vm_bail "net-define 1_provider failed"
((smoke)) || warm_libvirt
e2e interleaved "$e2e_rounds"
# The plain baseline: a daemon that found no hook when it started.
net-hook uninstall >/dev/null
vm_restart_libvirtd --apparmor
e2e no-hook-daemon "$e2e_none_rounds"
t_check "no AppArmor denials" "$(vm_apparmor_denials)"
vm_stop_libvirtd

vm_summary
