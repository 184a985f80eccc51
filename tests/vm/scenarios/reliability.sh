#!/usr/bin/env bash
# net-hook under faults, crashes, load and hostile input, on real VLANs.
#
#   tests/vm/run tests/vm/scenarios/reliability.sh DIR-WITH-net-hook
#
# 1. Syscall faults (strace -e inject, on net-hook's own process: its
#    firewall children run untouched, since strace counts calls per
#    process): ENOBUFS, EINTR, EAGAIN, EIO at the 1st..Nth netlink sendto
#    and recvfrom (net-hook receives with recvfrom, never recvmsg) of a
#    managed `started` and `stopped`; ENOSPC on each write and EROFS on each
#    openat/mkdirat/renameat (the lock, records, config); EACCES on opening
#    the config. Every run: no panic, no hang, exit 0 (fail-soft; 1 strict,
#    with one line), and the host either exactly as before or exactly as
#    configured; then a normal run converges.
# 2. SIGKILL at each sendto and write: the lock is free, the next run
#    converges, no temporary file is left behind.
# 3. 32 runs at once over 8 networks on hand-made bridges; then a bounded
#    loop of 50 networks started and stopped with a 200-network config.
# 4. Hostile network names and XML.
# Counts are printed as "# count: ..." lines (RELIABILITY.md quotes them).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bins=${1:?usage: reliability.sh DIR}
run=/run/net-hook
work=/run/nh-rel
mkdir -p "$work"
xml=$work/1_provider.xml

command -v strace >/dev/null || vm_bail "strace is not installed (apt-get install strace)"
vm_install_binaries "$bins"

write_config() { # write_config STRICT [EXTRA-FILE]
    mkdir -p /etc/net-hook
    chmod 0755 /etc/net-hook
    cat >"$VM_CONFIG" <<EOF
[networks.1_provider]
strict = $1
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22", "fd00:12:8::1/64"]
[[networks.1_provider.vlans]]
id = 105
addresses = ["10.12.12.1/22"]
EOF
    [[ -z ${2:-} ]] || cat "$2" >>"$VM_CONFIG"
    chmod 0644 "$VM_CONFIG"
}
write_config false

# virbr1 and its NAT rules as libvirt 9.0 leaves them before `started`,
# made by hand (no libvirtd: every run below is by hand, and a loaded
# machine needs minutes to start it), and the XML a real libvirtd 9.0 sent.
cp "$NET_HOOK_REPO/tests/hookdata/libvirt-9.0/1_provider_started_begin.xml" "$xml"
{
    ip link add virbr1 type bridge stp_state 1 &&
        ip addr add 10.12.4.1/22 dev virbr1 &&
        ip link set virbr1 up &&
        iptables -w -t nat -N LIBVIRT_PRT &&
        iptables -w -t nat -A POSTROUTING -j LIBVIRT_PRT &&
        iptables -w -t nat -A LIBVIRT_PRT -s 10.12.4.0/22 -d 224.0.0.0/24 -j RETURN &&
        iptables -w -t nat -A LIBVIRT_PRT -s 10.12.4.0/22 ! -d 10.12.4.0/22 -j MASQUERADE &&
        ip6tables -w -t nat -N LIBVIRT_PRT &&
        ip6tables -w -t nat -A POSTROUTING -j LIBVIRT_PRT
} || vm_bail "could not make virbr1 and libvirt's NAT rules"

# The host as the checks compare it: links (admin flags, kind, VLAN, alias;
# not the ifindex, which a re-created VLAN changes, nor timers),
# addresses (not the kernel's link-local ones, which come with carrier),
# bridge VLANs, nat rules, the nft ruleset without counters.
snapshot() {
    ip -d -o link show | grep -v ' lo: ' |
        sed -E 's/^[0-9]+: //; s/,?LOWER_UP//; s/ state [A-Z]+//; s/qlen [0-9]+//; s/ [a-z_]+_timer +[0-9.]+//g; s/\\ +/ /g' | sort
    ip -o addr show | awk '$4 !~ /^fe80:/ { print $2, $3, $4 }' | sort
    bridge vlan show 2>/dev/null
    iptables -w -t nat -S
    ip6tables -w -t nat -S
    nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+//'
}

hook() { # hook OP SUBOP [SYSCALL INJECTION]: one run by hand, bounded
    local op=$1 sub=$2
    shift 2
    if [[ $# -gt 0 ]]; then
        # seccomp-bpf: the tracee stops only at SYSCALL (needs -f; net-hook
        # starts no child for this config: no exemption, no firewalld).
        timeout 60 strace -f --seccomp-bpf -qq -o /dev/null -e trace="$1" -e inject="$2" \
            net-hook hook 1_provider "$op" "$sub" - <"$xml"
    else
        timeout 60 net-hook hook 1_provider "$op" "$sub" - <"$xml"
    fi
}

teardown() { net-hook teardown 1_provider >/dev/null 2>&1; }

# t_same NAME EXPECTED ACTUAL: like t_eq, showing a diff of multi-line text.
t_same() {
    if [[ $2 == "$3" ]]; then
        t_ok "$1" true
    else
        t_check "$1" "$(diff <(echo "$2") <(echo "$3"))"
    fi
}

teardown
base=$(snapshot)
out=$(hook started begin 2>&1) || vm_bail "a plain started failed: $out"
up=$(snapshot)
vm_check_gateway "plain started"
t_ok "plain started: virbr1.105 exists" vm_link_exists virbr1.105
hook started begin >/dev/null 2>&1
t_same "plain started again changes nothing" "$up" "$(snapshot)"
hook stopped end >/dev/null 2>&1
t_same "plain stopped leaves the host as before started" "$base" "$(snapshot)"

# calls OP SYSCALL: how many times a clean run of OP makes SYSCALL.
calls() {
    local op=$1 sc=$2 sub=begin n
    [[ $op == stopped ]] && sub=end
    [[ $op == stopped ]] && hook started begin >/dev/null 2>&1
    [[ $op == started ]] && teardown
    timeout 60 strace -f --seccomp-bpf -y -qq -o "$work/calls" -e trace="$sc" net-hook hook 1_provider "$op" "$sub" - <"$xml" >/dev/null 2>&1
    grep -cE '^([0-9]+ +)?[a-z0-9_]+\(' "$work/calls"
}

# first_own: the number of the first call in the last `calls` trace that is
# net-hook's own, not the dynamic loader's (which opens ld.so.cache and
# the libraries first; failing those is the loader's business).
first_own() {
    grep -E '^([0-9]+ +)?[a-z0-9_]+\(' "$work/calls" | grep -nvE 'ld\.so|\.so\.[0-9]|\.so"' | head -1 | cut -d: -f1
}

# nth_call PATTERN: the number of the first call in the last trace whose
# line matches PATTERN.
nth_call() { grep -E '^([0-9]+ +)?[a-z0-9_]+\(' "$work/calls" | grep -n -- "$1" | head -1 | cut -d: -f1; }

faults=0 leftovers=0 hangs=0 panics=0 badexit=0 badline=0 noconverge=0
state_name() { # which known state the host is in: base, up or other
    local s
    s=$(snapshot)
    if [[ $s == "$base" ]]; then echo base; elif [[ $s == "$up" ]]; then echo up; else echo other; fi
}

# fault OP STRICT LABEL STRACE-ARGS...: one injected run of OP from its
# starting state (base for started, up for stopped), checked; then a normal
# run of OP must reach its end state.
fault() {
    local op=$1 strict=$2 label=$3 sub=begin from=base to=up out rc st errs problems=''
    shift 3
    [[ $op == stopped ]] && sub=end from=up to=base
    # Bring the host to the starting state only when it is not there.
    if [[ $(state_name) != "$from" ]]; then
        if [[ $from == base ]]; then teardown; else hook started begin >/dev/null 2>&1; fi
    fi
    [[ $(state_name) == "$from" ]] || { problems+="could not reach the starting state; "; }
    out=$(hook "$op" "$sub" "$@" 2>&1)
    rc=$?
    faults=$((faults + 1))
    st=$(state_name)
    errs=$(grep -c 'fail-soft: libvirt keeps\|^net-hook: network "1_provider": \|cannot read config' <<<"$out")
    if grep -q 'panicked' <<<"$out"; then panics=$((panics + 1)) problems+="panicked; "; fi
    case $rc in
        124) hangs=$((hangs + 1)) problems+="hung (killed after 60 s); " ;;
        0) [[ $strict == false || $errs -eq 0 ]] || { badexit=$((badexit + 1)); problems+="strict failure exited 0; "; } ;;
        1) [[ $strict == true ]] || { badexit=$((badexit + 1)); problems+="fail-soft exited 1; "; } ;;
        *) badexit=$((badexit + 1)) problems+="exit $rc; " ;;
    esac
    if [[ $strict == true && $rc -eq 1 && $(wc -l <<<"$out") -ne 1 ]]; then
        badline=$((badline + 1)) problems+="strict stderr is not one line; "
    fi
    [[ $errs -le 1 ]] || { badline=$((badline + 1)) problems+="$errs error lines; "; }
    # All or nothing: a bring-up is at its start or its end; a teardown
    # removes what it can and says what it could not.
    if [[ $st == other ]]; then
        if [[ $op == started || $errs -eq 0 ]]; then
            leftovers=$((leftovers + 1)) problems+="half-applied; "
        fi
    fi
    # What the run says must be what it did.
    [[ $st != "$to" || $errs -eq 0 ]] || problems+="reported a failure, but the run was carried out; "
    [[ $st != "$from" || $errs -ne 0 ]] || problems+="reported no failure, but nothing was done; "
    if [[ $st != "$to" ]]; then
        hook "$op" "$sub" >/dev/null 2>&1
        [[ $(state_name) == "$to" ]] || { noconverge=$((noconverge + 1)) problems+="the next run did not converge; "; }
    fi
    if [[ -n $problems ]]; then
        t_check "$label" "${problems}exit $rc, state $st; stderr: $out"
    fi
}

# inject OP SYSCALL ERRNO FIRST LAST STEP: faults at calls FIRST..LAST,
# every STEPth, while the section's time budget lasts.
inject() {
    local op=$1 sc=$2 err=$3 first=$4 last=$5 step=$6 n before=$faults fails_before t
    fails_before=$T_FAIL t=$(vm_uptime)
    # At most $cap runs per series, spread over its range.
    ((step * cap >= last - first + 1)) || step=$(((last - first + cap) / cap))
    for ((n = first; n <= last; n += step)); do
        if ! in_budget; then
            vm_note "budget: $op $sc $err stopped before call $n"
            break
        fi
        fault "$op" false "$op: $sc $err at call $n" "$sc" "$sc:error=$err:when=$n"
    done
    t_eq "$op: $sc $err at calls $first..$last (every $step): $((faults - before)) runs, all or nothing" "$fails_before" "$T_FAIL"
    vm_note "$op $sc $err: $((faults - before)) runs in $(vm_since "$t")s"
}
cap=${3:-3}

# The scenario's time budget for the fault and kill sections (guest seconds
# from the start of section 1): past it, series stop early and say so.
budget=${2:-480}
b_start=0 b_limit=$budget
in_budget() { awk -v a="$b_start" -v b="$(vm_uptime)" -v l="$b_limit" 'BEGIN { exit !(b - a < l) }'; }

vm_note "section 1: syscall faults (budget ${budget}s)"
t0=$(vm_uptime) b_start=$t0
for op in started stopped; do
    s_n=$(calls "$op" sendto)
    r_n=$(calls "$op" recvfrom)
    vm_note "count: a clean $op makes $s_n sendto and $r_n recvfrom calls"
    inject "$op" sendto ENOBUFS 1 "$s_n" 1
    inject "$op" recvfrom EIO 1 "$r_n" 1
    inject "$op" sendto EIO 1 "$s_n" 2
    inject "$op" recvfrom ENOBUFS 2 "$r_n" 2
    inject "$op" sendto EINTR 2 "$s_n" 3
    inject "$op" recvfrom EINTR 1 "$r_n" 4
    # EAGAIN makes the run wait for readiness that never comes: each one
    # costs the 5 s request timeout, so a sample.
    inject "$op" sendto EAGAIN 1 "$s_n" 4
    inject "$op" recvfrom EAGAIN 3 "$r_n" 8
done
vm_note "section 1 (netlink): $(vm_since "$t0")s"

# Strict: the same faults exit 1 with one line.
write_config true
s_n=$(calls started sendto)
before=$T_FAIL
for ((n = 1; n <= s_n; n++)); do
    fault started true "strict started: sendto ENOBUFS at call $n" sendto "sendto:error=ENOBUFS:when=$n"
done
t_eq "strict started: sendto ENOBUFS at calls 1..$s_n: exit 1 with one line, all or nothing" "$before" "$T_FAIL"
write_config false

out=''
# Files: ENOSPC on every write, EROFS on every openat/mkdirat/renameat,
# EACCES on opening the config.
for op in started stopped; do
    w_n=$(calls "$op" write)
    # tokio's wake-ups write to an eventfd, which the kernel never fails
    # with ENOSPC (tokio panics if it does): only real files and pipes.
    own=$(grep -E '^([0-9]+ +)?write\(' "$work/calls" | grep -nv 'eventfd' | cut -d: -f1)
    vm_note "count: a clean $op makes $w_n write calls, $(wc -w <<<"$own") not to tokio's eventfd"
    before=$T_FAIL k=0
    for n in $own; do
        in_budget || { vm_note "budget: $op write ENOSPC stopped before call $n"; break; }
        fault "$op" false "$op: write ENOSPC at call $n" write "write:error=ENOSPC:when=$n"
        k=$((k + 1))
    done
    t_eq "$op: write ENOSPC at each write but the eventfd's: $k runs, all or nothing" "$before" "$T_FAIL"
    for sc in openat mkdirat renameat; do
        n=$(calls "$op" "$sc")
        first=$(first_own)
        vm_note "count: a clean $op makes $n $sc calls, net-hook's own from call ${first:-none}"
        [[ -z $first ]] || inject "$op" "$sc" EROFS "$first" "$n" 1
    done
    # The config's directory, then the file (opened relative to it).
    calls "$op" openat >/dev/null
    for pat in '"/etc/net-hook"' '"net-hook.toml"'; do
        n=$(nth_call "$pat")
        if [[ -z $n ]]; then
            t_check "$op: the config is opened ($pat)" "no such openat in $(cat "$work/calls")"
            continue
        fi
        fault "$op" false "$op: EACCES opening $pat" openat "openat:error=EACCES:when=$n"
        [[ $op == stopped ]] || out=$(teardown; hook started begin openat "openat:error=EACCES:when=$n" 2>&1)
    done
done
t_match "EACCES on the config: one line naming the file and the fix" \
    "cannot read config $VM_CONFIG: Permission denied .*; create it or pass --config" "$out"
calls started write >/dev/null
n=$(nth_call 'networks/\.1_provider')
out=$(teardown; hook started begin write "write:error=ENOSPC:when=${n:-1}" 2>&1)
t_match "ENOSPC on the record: reported, the run itself done" \
    'could not record the outcome: writing /run/net-hook/networks/1_provider.toml: No space left on device' "$out"
t_eq "ENOSPC on the record: the host is as configured" up "$(state_name)"
vm_note "section 1 (all): $(vm_since "$t0")s"

vm_note "section 2: SIGKILL at each point"
t1=$(vm_uptime) b_start=$t1 b_limit=$((budget / 2))
kills=0 lockheld=0 tempfiles=0 killconv=0
for op in started stopped; do
    sub=begin to=up
    [[ $op == stopped ]] && sub=end to=base
    for sc in sendto write; do
        n_max=$(calls "$op" "$sc")
        for ((n = 1; n <= n_max; n++)); do
            if [[ $op == started ]]; then teardown; else hook started begin >/dev/null 2>&1; fi
            in_budget || { vm_note "budget: kills stopped at $op $sc $n"; break 3; }
            hook "$op" "$sub" "$sc" "$sc:signal=KILL:when=$n" >/dev/null 2>&1
            kills=$((kills + 1))
            flock -n "$run/lock" true || lockheld=$((lockheld + 1))
            hook "$op" "$sub" >/dev/null 2>&1
            [[ $(state_name) == "$to" ]] || { killconv=$((killconv + 1)); vm_note "kill $op $sc $n: no convergence"; }
            # A kill between writing and renaming a record leaves its
            # temporary file; the next write removes it.
            if find "$run/networks" -name '.*' | grep -q .; then
                tempfiles=$((tempfiles + 1))
                vm_note "kill $op $sc $n: left $(find "$run/networks" -name '.*')"
            fi
        done
    done
done
vm_note "count: $kills SIGKILLs"
t_eq "SIGKILL at every sendto and write ($kills runs): the lock is always free" 0 "$lockheld"
t_eq "SIGKILL: the next run always converges" 0 "$killconv"
t_eq "SIGKILL: no temporary record is left after the next run" 0 "$tempfiles"
teardown
t_same "after the kills, a teardown leaves the base state" "$base" "$(snapshot)"
vm_note "section 2: $(vm_since "$t1")s"

vm_note "section 3: concurrency and load"
t2=$(vm_uptime)
extra=$work/extra.toml
: >"$extra"
for i in $(seq 0 7); do
    ip link add "brc$i" type bridge && ip link set "brc$i" up
    cat >>"$extra" <<EOF
[networks.c$i]
[[networks.c$i.vlans]]
id = $((300 + i))
addresses = ["10.200.$i.1/24"]
EOF
    printf "<network><name>c%s</name><forward mode='nat'/><bridge name='brc%s'/></network>\n" "$i" "$i" >"$work/c$i.xml"
done
write_config false "$extra"
concurrent() { # concurrent OP SUBOP: 32 runs at once, 4 per network
    local i k
    rm -f "$work"/conc.*
    for k in 0 1 2 3; do
        for i in $(seq 0 7); do
            (
                s=$(date +%s%N)
                timeout 60 net-hook hook "c$i" "$1" "$2" - <"$work/c$i.xml" >"$work/conc.$i.$k.out" 2>&1
                echo "$? $((($(date +%s%N) - s) / 1000000))" >"$work/conc.$i.$k.rc"
            ) &
        done
    done
    wait
}
concurrent started begin
t_eq "32 concurrent started: every run exits 0" 32 "$(cat "$work"/conc.*.rc | awk '$1 == 0' | wc -l)"
longest=$(cat "$work"/conc.*.rc | awk '{ print $2 }' | sort -n | tail -1)
waited=$(cat "$work"/conc.*.out | sed -n 's/.*waited \([0-9]*\) ms for the lock.*/\1/p' | sort -n | tail -1)
vm_note "count: 32 concurrent started: longest run ${longest} ms, longest lock wait ${waited:-0} ms (waits under 100 ms are not logged)"
missing=''
for i in $(seq 0 7); do
    d=$(ip -d addr show dev "brc$i.$((300 + i))" 2>&1)
    grep -q "vlan protocol 802.1Q id $((300 + i)) " <<<"$d" && grep -q "inet 10.200.$i.1/24 " <<<"$d" &&
        grep -q "alias net-hook:c$i" <<<"$d" || missing+="brc$i.$((300 + i)) "
    r=$(cat "$run/networks/c$i.toml" 2>&1)
    grep -qx 'op = "started"' <<<"$r" && grep -qE '^result = "(ok|unchanged)"$' <<<"$r" || missing+="record c$i; "
done
t_check "32 concurrent started: each of the 8 VLANs is as configured, each record ok/unchanged" "$missing"
t_eq "32 concurrent started: exactly one run per network created its VLAN" 8 "$(cat "$work"/conc.*.out | grep -c ': create brc')"
concurrent stopped end
t_eq "32 concurrent stopped: every run exits 0" 32 "$(cat "$work"/conc.*.rc | awk '$1 == 0' | wc -l)"
t_check "32 concurrent stopped: no VLAN left" "$(ip -br link | grep -o '^brc[0-9]\.[0-9]*' || true)"
longest2=$(cat "$work"/conc.*.rc | awk '{ print $2 }' | sort -n | tail -1)
vm_note "count: 32 concurrent stopped: longest run ${longest2} ms"

# Load: a 200-network config, 50 of them with bridges here, started and
# stopped in turn for a bounded time.
: >"$extra"
for i in $(seq 0 199); do
    cat >>"$extra" <<EOF
[networks.l$i]
[[networks.l$i.vlans]]
id = $((1000 + i))
name = "l$i.v"
addresses = ["10.$((64 + i / 100)).$((i % 100)).1/24"]
EOF
done
write_config false "$extra"
for i in $(seq 0 49); do
    ip link add "lb$i" type bridge && ip link set "lb$i" up
    printf "<network><name>l%s</name><forward mode='nat'/><bridge name='lb%s'/></network>\n" "$i" "$i" >"$work/l$i.xml"
done
files() { cut -f1 /proc/sys/fs/file-nr; }
rundir_size() { du -sb "$run" | cut -f1; }
rounds=0 bad=0 first_ms='' last_ms='' files0='' size0=''
# 60 s, but at least two full rounds (a loaded machine is slow), at most 240 s.
deadline=$(($(date +%s) + 60)) hard=$(($(date +%s) + 240))
while [[ $rounds -lt 2 || $(date +%s) -lt $deadline ]] && [[ $(date +%s) -lt $hard ]]; do
    s=$(date +%s%N)
    for i in $(seq 0 49); do
        net-hook hook "l$i" started begin - <"$work/l$i.xml" >/dev/null 2>&1 || bad=$((bad + 1))
        net-hook hook "l$i" stopped end - <"$work/l$i.xml" >/dev/null 2>&1 || bad=$((bad + 1))
    done
    ms=$(((($(date +%s%N) - s) / 1000000) / 100))
    rounds=$((rounds + 1))
    if [[ -z $first_ms ]]; then
        first_ms=$ms files0=$(files) size0=$(rundir_size)
    fi
    last_ms=$ms
done
files1=$(files) size1=$(rundir_size)
vm_note "count: load: $rounds rounds of 50 started+stopped ($((rounds * 100)) runs); per run ${first_ms} ms in round 1, ${last_ms} ms in the last; open files $files0 -> $files1; run dir $size0 -> $size1 bytes"
t_eq "load: every run exits 0" 0 "$bad"
t_ok "load: at least 2 rounds ran" test "$rounds" -ge 2
t_ok "load: no growth in run-dir size (1 KiB slack)" test "$size1" -le "$((size0 + 1024))"
t_ok "load: open files did not grow by more than 64 (system-wide)" test "$files1" -le "$((files0 + 64))"
t_ok "load: time per run did not double" test "$last_ms" -le "$((first_ms * 2 + 5))"
t_check "load: no VLAN left" "$(ip -br link | grep -o '^l[0-9]*\.v' || true)"
vm_note "section 3: $(vm_since "$t2")s"

vm_note "section 4: hostile input"
t3=$(vm_uptime)
ip link add hostbr type bridge && ip link set hostbr up
long200=$(printf 'y%.0s' $(seq 1 200))
long255=$(printf 'x%.0s' $(seq 1 255))
# Names the config accepts, and names it rejects (with '/', control
# characters, over 200 bytes), each tried with and without an entry.
good=(".." "-x" "a b" "lock" "networks" "%2F" "$long200")
bad=("a/b" "../escape" $'new\nline' $'tab\there' "$long255")
toml_entries() { # toml_entries FIRST-ID NAME...: one VLAN h<ID> each
    local id=$1 n key
    shift
    for n in "$@"; do
        key=$(printf '%s' "$n" | sed 's/\\/\\\\/g; s/"/\\"/g' | sed ':a;N;$!ba;s/\n/\\n/g; s/\t/\\t/g')
        printf '[networks."%s"]\n[[networks."%s".vlans]]\nid = %d\nname = "h%d"\naddresses = []\n' "$key" "$key" "$id" "$id"
        id=$((id + 1))
    done
}
toml_entries 500 "${good[@]}" >"$extra"
write_config false "$extra"
t_ok "hostile names: the config with the accepted names is valid" net-hook config check
# As libvirt runs it (a network.d entry): the name is never an option.
mkdir -p "$work/hooks/network.d"
ln -sf /usr/bin/net-hook "$work/hooks/network.d/50-net-hook"
as_libvirt() { timeout 30 "$work/hooks/network.d/50-net-hook" "$@"; }
name_xml() { printf '<network><name>%s</name><bridge name="hostbr"/></network>' "$1" >"$work/h.xml"; }
label_of() { printf 'name %s' "$(printf '%q' "$1" | cut -c1-40)"; }
ls -a /run >"$work/run-before"
inputs=0
for k in "${!good[@]}"; do
    n=${good[$k]} dev=h$((500 + k))
    label=$(label_of "$n")
    name_xml "$n"
    out=$(as_libvirt "$n" started begin - <"$work/h.xml" 2>&1)
    t_eq "$label: started exits 0" 0 "$?"
    inputs=$((inputs + 1))
    t_check "$label: no panic" "$(grep panicked <<<"$out")"
    t_match "$label: $dev created and marked" "alias net-hook:" "$(ip -d link show dev "$dev" 2>&1)"
    out=$(as_libvirt "$n" stopped end - <"$work/h.xml" 2>&1)
    t_eq "$label: stopped exits 0" 0 "$?"
    t_ok "$label: $dev removed" vm_link_absent "$dev"
done
# Without an entry a rejected name is not ours: silent, nothing done.
for n in "${bad[@]}"; do
    label=$(label_of "$n")
    name_xml "$n"
    out=$(as_libvirt "$n" started begin - <"$work/h.xml" 2>&1)
    t_eq "$label, not configured: exits 0 silently" "0:" "$?:$out"
    inputs=$((inputs + 1))
done
# With an entry: refused, naming the line; the other networks still work.
toml_entries 520 "${bad[@]}" >>"$extra"
write_config false "$extra"
t_fails "hostile names: config check rejects the rejected names" net-hook config check
for k in "${!bad[@]}"; do
    n=${bad[$k]}
    label=$(label_of "$n")
    name_xml "$n"
    out=$(as_libvirt "$n" started begin - <"$work/h.xml" 2>&1)
    t_eq "$label, configured: started exits 0" 0 "$?"
    inputs=$((inputs + 1))
    t_match "$label, configured: refused naming the line" "^net-hook: .*$VM_CONFIG:[0-9]+: networks\..*(cannot contain|control characters|longer than)" "$out"
    t_ok "$label, configured: nothing created" vm_link_absent "h$((520 + k))"
done
name_xml "a b"
out=$(as_libvirt "a b" started begin - <"$work/h.xml" 2>&1)
t_match "hostile names: another network's bad entry does not break 'a b'" "alias net-hook:a b" "$(ip -d link show dev h502 2>&1)"
as_libvirt "a b" stopped end - <"$work/h.xml" >/dev/null 2>&1
# Non-UTF-8: not configurable, so not ours.
out=$(as_libvirt $'\xff\xfe' started begin - <"$work/h.xml" 2>&1)
t_eq "non-UTF-8 name: exits 0" 0 "$?"
t_match "non-UTF-8 name: says why it is ignored" 'its name is not UTF-8' "$out"
inputs=$((inputs + 1))
t_check "hostile names: nothing created outside the run dir" "$(diff <(ls -a /run) "$work/run-before")"
t_check "hostile names: the run dir holds only the lock and networks/" "$(ls -A "$run" | grep -vx 'lock\|networks')"
t_check "hostile names: networks/ holds only escaped .toml records" \
    "$(ls -A "$run/networks" | grep -vE '^[A-Za-z0-9_%-][A-Za-z0-9_.%~-]*\.toml$')"

# XML: each either parsed (the run converges) or refused with one line
# (nothing changed); never a panic, a hang, or an entity expanded.
write_config true
x() { printf '%s' "$1" >"$work/x.$2.xml"; }
x "<!DOCTYPE network [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'><!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>]><network><name>1_provider&d;</name><bridge name='virbr1'/></network>" laughs
x "<!DOCTYPE network [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><network><name>&x;</name><bridge name='virbr1'/></network>" external
x "<!DOCTYPE network><network><name>1_provider</name><bridge name='virbr1'/></network>" doctype
x "<network><name><![CDATA[1_provider]]></name><bridge name='virbr1'/></network>" cdata
x "<network><name><![CDATA[1_provider</name><bridge name='virbr9'/>]]></name><bridge name='virbr1'/></network>" cdata-markup
x "<n:network xmlns:n='urn:x'><n:name>1_provider</n:name><n:bridge name='virbr1'/></n:network>" namespace
x "<hookData xmlns='urn:y'><network xmlns:v='urn:v'><v:name>other</v:name><name>1_provider</name><bridge v:name='virbr9' name='virbr1'/></network></hookData>" ns-attrs
x "<!-- a --><?pi x?><network><!-- b --><name><!-- c -->1_provider<!-- d --></name><bridge name='virbr1'/><!-- --></network><!-- e -->" comments
x "<network><name>1_provider</name><name>2_other</name><bridge name='virbr1'/></network>" two-names
x "<network><name>1_provider</name><bridge name='virbr1'/><bridge name='virbr9'/></network>" two-bridges
x "<network><name>1_provider</name><bridge name='virbr1'/>" truncated
x "$(printf '<a>%.0s' $(seq 1 5000))" deep
x "<network><name>1_provider</name><bridge name='virbr1'/>$(printf '<x>%.0s' $(seq 1 20000))$(printf '</x>%.0s' $(seq 1 20000))</network>" deep-inside
x "<network><name>1_provider</name><bridge name='virbr1'/></network>$(printf '<x/>%.0s' $(seq 1 3000))" trailing
x "$(printf '\xef\xbb\xbf')<network><name>1_provider</name><bridge name='virbr1'/></network>" bom
x "<network><name>1_provider</name><bridge name='vir&#x62;r1'/></network>" charref
x "<network><name>1_provider</name><bridge name='virbr1&#0;'/></network>" nul-ref
xml_ok=0 xml_refused=0
for f in "$work"/x.*.xml; do
    label="xml ${f#"$work"/x.}"
    label=${label%.xml}
    teardown
    out=$(timeout 30 net-hook hook 1_provider started begin - <"$f" 2>&1)
    rc=$?
    inputs=$((inputs + 1))
    st=$(state_name)
    t_check "$label: no panic" "$(grep panicked <<<"$out")"
    case "$rc:$st" in
        0:up) xml_ok=$((xml_ok + 1)) ;;
        1:base)
            xml_refused=$((xml_refused + 1))
            t_eq "$label: refused with one line" 1 "$(wc -l <<<"$out")"
            ;;
        *) t_check "$label: parsed and converged, or refused and unchanged" "exit $rc, state $st: $out" ;;
    esac
    vm_note "$label: exit $rc, $(head -c 200 <<<"$out")"
done
t_ok "hostile XML: $xml_ok parsed, $xml_refused refused" true
t_check "no entity was expanded into a name" "$(grep -l 'aaaaaaaaaa\|root:' "$run"/networks/*.toml 2>/dev/null)"
vm_note "section 4: $(vm_since "$t3")s"

vm_note "count: faults injected $faults (+ $kills SIGKILLs); inputs tried $inputs; leftovers $leftovers; hangs $hangs; panics $panics; bad exits $badexit; bad error lines $badline; no convergence $noconverge"
t_eq "fault runs: no leftovers" 0 "$leftovers"
t_eq "fault runs: no hangs" 0 "$hangs"
t_eq "fault runs: no panics" 0 "$panics"
t_eq "fault runs: exit status as documented" 0 "$badexit"
t_eq "fault runs: the next run always converges" 0 "$noconverge"
vm_summary
