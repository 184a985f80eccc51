# shellcheck shell=bash
# Helpers for scenarios that tests/vm/run executes inside the VM (as root, on
# an overlay of the host root: changes to /etc, /var, /run, /usr stay in the VM).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# Results go to $NET_HOOK_VM_RESULTS (the only directory shared back to the host).

NET_HOOK_REPO=${NET_HOOK_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
NET_HOOK_VM_RESULTS=${NET_HOOK_VM_RESULTS:?run scenarios through tests/vm/run}
export NET_HOOK_REPO NET_HOOK_VM_RESULTS

VM_LIBVIRTD_PIDFILE=/run/libvirtd.pid
VM_LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log
VM_APPARMOR_PROFILE=/etc/apparmor.d/usr.sbin.libvirtd

T_N=0
T_PASS=0
T_FAIL=0

# ---------------------------------------------------------------- output

vm_note() { printf '# %s\n' "$*"; }

# Elapsed guest uptime in seconds, for timing notes.
vm_uptime() { cut -d' ' -f1 /proc/uptime; }

# vm_since T0: seconds (one decimal) since T0, an earlier vm_uptime.
vm_since() { awk -v a="$1" -v b="$(vm_uptime)" 'BEGIN { printf "%.1f", b - a }'; }

# Indent diagnostic text so it cannot be mistaken for a result line.
_t_diag() { sed 's/^/#   /'; }

_t_result() { # _t_result 0|1 NAME
    T_N=$((T_N + 1))
    if [[ $1 -eq 0 ]]; then
        T_PASS=$((T_PASS + 1))
        printf 'ok %d - %s\n' "$T_N" "$2"
    else
        T_FAIL=$((T_FAIL + 1))
        printf 'not ok %d - %s\n' "$T_N" "$2"
    fi
}

# ---------------------------------------------------------------- assertions

# t_ok NAME CMD...: passes if CMD exits 0; on failure shows its output.
t_ok() {
    local name=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    _t_result "$rc" "$name"
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "command failed (exit $rc): $*" "$out" | _t_diag
    fi
    return 0
}

# t_fails NAME CMD...: passes if CMD exits non-zero.
t_fails() {
    local name=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]]; then
        _t_result 0 "$name"
    else
        _t_result 1 "$name"
        printf '%s\n' "command unexpectedly succeeded: $*" "$out" | _t_diag
    fi
    return 0
}

# t_eq NAME EXPECTED ACTUAL
t_eq() {
    if [[ $2 == "$3" ]]; then
        _t_result 0 "$1"
    else
        _t_result 1 "$1"
        printf 'expected: %s\n  actual: %s\n' "$2" "$3" | _t_diag
    fi
    return 0
}

# t_match NAME ERE TEXT: passes if TEXT matches the extended regex.
t_match() {
    if grep -qE -- "$2" <<<"$3"; then
        _t_result 0 "$1"
    else
        _t_result 1 "$1"
        printf 'no match for /%s/ in:\n%s\n' "$2" "$3" | _t_diag
    fi
    return 0
}

# t_check NAME DIAGNOSTIC: passes if DIAGNOSTIC is empty, else prints it.
# For checks computed by the scenario itself (e.g. a list of missing files).
t_check() {
    if [[ -z $2 ]]; then
        _t_result 0 "$1"
    else
        _t_result 1 "$1"
        printf '%s\n' "$2" | _t_diag
    fi
    return 0
}

# t_skip NAME REASON: counted as neither passed nor failed.
t_skip() {
    T_N=$((T_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$T_N" "$1" "$2"
}

# vm_bail MSG: abort the scenario (a precondition failed): counts as a failure.
vm_bail() {
    printf 'Bail out! %s\n' "$*"
    T_FAIL=$((T_FAIL + 1))
    vm_summary
    exit 1
}

# vm_summary: the closing line "N passed, N failed"; non-zero if anything failed
# or nothing ran. Scenarios end with it, so it is their exit status (which
# tests/vm/run writes to the results dir).
vm_summary() {
    local rc=0
    [[ $T_FAIL -eq 0 && $T_PASS -gt 0 ]] || rc=1
    vm_note "guest uptime $(vm_uptime)s"
    printf '%d passed, %d failed\n' "$T_PASS" "$T_FAIL"
    return "$rc"
}

# ---------------------------------------------------------------- waiting

# vm_wait SECONDS CMD...: poll CMD every 0.2 s until it succeeds; 1 on timeout.
vm_wait() {
    local deadline
    deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [[ $(date +%s) -lt $deadline ]] || return 1
        sleep 0.2
    done
}

vm_link_exists() { [[ -e /sys/class/net/$1 ]]; }
vm_link_absent() { [[ ! -e /sys/class/net/$1 ]]; }

# vm_wait_link_gone IFACE [SECONDS]: wait until IFACE is gone (default 10 s).
vm_wait_link_gone() { vm_wait "${2:-10}" vm_link_absent "$1"; }

# ---------------------------------------------------------------- libvirt

# virsh against the system daemon, bounded: a hook that calls back into
# libvirt, or one that never closes stdout, would otherwise hang the scenario.
vm_virsh() { timeout 120 virsh -q -c qemu:///system "$@"; }

vm_libvirtd_pid() {
    local pid
    pid=$(cat "$VM_LIBVIRTD_PIDFILE" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# AppArmor label of a process, e.g. "libvirtd (enforce)" or "unconfined".
vm_apparmor_label() {
    local f
    for f in "/proc/$1/attr/apparmor/current" "/proc/$1/attr/current"; do
        if [[ -r $f ]]; then
            tr -d '\0' <"$f"
            return 0
        fi
    done
    return 1
}

vm_mount_securityfs() {
    if [[ ! -d /sys/kernel/security/apparmor ]]; then
        mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
    fi
}

vm_apparmor_enabled() {
    [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] &&
        [[ -d /sys/kernel/security/apparmor ]]
}

# vm_try_load_libvirtd_profile: load the Debian libvirtd profile in enforce
# mode; non-zero, with the reason in VM_PROFILE_ERROR, if it cannot (the
# parser's own messages go to stderr). The parser resolves its includes
# (tunables/global, abstractions/base, abstractions/dbus) from /etc/apparmor.d;
# local/usr.sbin.libvirtd must exist, even empty.
VM_PROFILE_ERROR=''
vm_try_load_libvirtd_profile() {
    VM_PROFILE_ERROR=''
    vm_mount_securityfs
    if ! vm_apparmor_enabled; then
        VM_PROFILE_ERROR="AppArmor is not enabled in this kernel"
        return 1
    fi
    if [[ ! -f $VM_APPARMOR_PROFILE ]]; then
        VM_PROFILE_ERROR="$VM_APPARMOR_PROFILE missing (apt-get install libvirt-daemon-system apparmor)"
        return 1
    fi
    mkdir -p /etc/apparmor.d/local
    [[ -e /etc/apparmor.d/local/usr.sbin.libvirtd ]] || : >/etc/apparmor.d/local/usr.sbin.libvirtd
    # --skip-cache: always compile what is on disk now (scenarios may edit local/).
    if ! apparmor_parser -r --skip-cache "$VM_APPARMOR_PROFILE"; then
        VM_PROFILE_ERROR="apparmor_parser failed to load $VM_APPARMOR_PROFILE"
        return 1
    fi
}

# vm_load_libvirtd_profile: the same, bailing out if the profile does not load.
vm_load_libvirtd_profile() {
    vm_try_load_libvirtd_profile || vm_bail "$VM_PROFILE_ERROR"
}

# Remove the profile so a later plain start is really unconfined (a loaded
# profile attaches to /usr/sbin/libvirtd at exec whatever we intend).
vm_unload_libvirtd_profile() {
    if [[ -r /sys/kernel/security/apparmor/profiles ]] &&
        grep -q '^libvirtd ' /sys/kernel/security/apparmor/profiles; then
        apparmor_parser -R "$VM_APPARMOR_PROFILE" >/dev/null 2>&1 ||
            vm_bail "could not unload the libvirtd AppArmor profile"
    fi
}

# vm_start_libvirtd [--apparmor]: start libvirtd (never exits on idle) and wait
# until it answers. With --apparmor it must run confined by the Debian profile
# in enforce mode, otherwise without any profile.
vm_start_libvirtd() {
    local apparmor=0 pid label t0
    case ${1:-} in
        --apparmor) apparmor=1 ;;
        '') ;;
        *) vm_bail "vm_start_libvirtd: unknown option $1" ;;
    esac
    ! vm_libvirtd_pid >/dev/null || vm_bail "libvirtd is already running"
    t0=$(vm_uptime)
    if [[ $apparmor -eq 1 ]]; then
        vm_load_libvirtd_profile
    else
        vm_unload_libvirtd_profile
    fi
    # /var/log is an empty tmpfs in the VM; libvirtd --daemon refuses to start
    # without its log directory.
    mkdir -p /var/log/libvirt /run/libvirt
    rm -f "$VM_LIBVIRTD_PIDFILE"
    libvirtd --daemon --timeout 0 --pid-file "$VM_LIBVIRTD_PIDFILE" ||
        vm_bail "libvirtd --daemon failed; log: $(tail -n 20 "$VM_LIBVIRTD_LOG" 2>/dev/null)"
    if ! vm_wait 120 virsh -q -c qemu:///system version; then
        tail -n 30 "$VM_LIBVIRTD_LOG" 2>/dev/null | _t_diag
        vm_bail "libvirtd did not answer within 120 s"
    fi
    pid=$(vm_libvirtd_pid) || vm_bail "no libvirtd pid in $VM_LIBVIRTD_PIDFILE"
    label=$(vm_apparmor_label "$pid" || echo '?')
    if [[ $apparmor -eq 1 && $label != 'libvirtd (enforce)' ]]; then
        vm_bail "libvirtd (pid $pid) is not confined in enforce mode: label '$label'"
    fi
    if [[ $apparmor -eq 0 && $label != unconfined && $label != '?' ]]; then
        vm_bail "libvirtd (pid $pid) should be unconfined: label '$label'"
    fi
    vm_note "libvirtd pid $pid ($label) answered after $(vm_since "$t0")s"
}

vm_stop_libvirtd() {
    local pid
    pid=$(vm_libvirtd_pid) || return 0
    kill -TERM "$pid"
    if ! vm_wait 30 test ! -e "/proc/$pid"; then
        vm_note "libvirtd $pid ignored SIGTERM for 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        vm_wait 10 test ! -e "/proc/$pid" || vm_bail "libvirtd $pid does not die"
    fi
    rm -f "$VM_LIBVIRTD_PIDFILE"
}

vm_restart_libvirtd() {
    vm_stop_libvirtd
    vm_start_libvirtd "$@"
}

# AppArmor denials logged by the kernel so far (no auditd in the VM: they go
# to the kernel log).
vm_apparmor_denials() { dmesg | grep 'apparmor="DENIED"' || true; }

# vm_install_hook SRC NAME: install SRC as /etc/libvirt/hooks/network.d/NAME.
# libvirtd caches at start whether any network hook exists: install hooks
# before vm_start_libvirtd (or restart it).
vm_install_hook() {
    mkdir -p /etc/libvirt/hooks/network.d
    install -m 0755 "$1" "/etc/libvirt/hooks/network.d/$2"
}

# ---------------------------------------------------------------- net-hook

VM_CONFIG=/etc/net-hook/net-hook.toml

# vm_install_binaries [--need-virt] DIR: load 8021q and install DIR's net-hook
# into /usr/bin, and DIR's net-hook-virt next to it when there is one (net-hook
# finds it there). With --need-virt a missing net-hook-virt is a bail-out: the
# scenarios that run the companion commands need it.
vm_install_binaries() {
    local need_virt=0 bins
    if [[ ${1:-} == --need-virt ]]; then
        need_virt=1
        shift
    fi
    modprobe 8021q || vm_bail "modprobe 8021q failed"
    [[ -x $1/net-hook ]] || vm_bail "no net-hook in $1"
    [[ $need_virt -eq 0 || -x $1/net-hook-virt ]] || vm_bail "no net-hook-virt in $1"
    bins=("$1/net-hook")
    [[ ! -x $1/net-hook-virt ]] || bins+=("$1/net-hook-virt")
    install -m 0755 "${bins[@]}" /usr/bin/
}

# vm_write_config [--unnat]: the runbook's config, 1_provider's gateway
# virbr1.104 = 10.12.8.1/22, with --unnat also its exemption for 10.12.8.0/22.
vm_write_config() {
    mkdir -p /etc/net-hook
    chmod 0755 /etc/net-hook
    cat >"$VM_CONFIG" <<'CONF'
[networks.1_provider]
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22"]
CONF
    if [[ ${1:-} == --unnat ]]; then
        printf '\n[networks.1_provider.unnat]\ndestinations = ["10.12.8.0/22"]\n' >>"$VM_CONFIG"
    fi
    chmod 0644 "$VM_CONFIG"
}

# vm_check_gateway LABEL: the checks of "the gateway is up": virbr1.104 is
# VLAN 104 on virbr1 with 10.12.8.1/22, UP, and marked as net-hook's.
vm_check_gateway() {
    local d
    d=$(ip -d addr show dev virbr1.104 2>&1)
    t_match "$1: virbr1.104 is VLAN 104 on virbr1" '^[0-9]+: virbr1\.104@virbr1: ' "$d"
    t_match "$1: 802.1Q id 104" 'vlan protocol 802\.1Q id 104 ' "$d"
    t_match "$1: has 10.12.8.1/22" 'inet 10\.12\.8\.1/22 ' "$d"
    # UP among the flags, never first (BROADCAST,MULTICAST come before it).
    t_match "$1: is administratively UP" '<[^>]*,UP(,[^>]*)?>' "$d"
    t_match "$1: marked as net-hook's" 'alias net-hook:1_provider' "$d"
}

# vm_exemption_rules [PATTERN]: how many iptables nat POSTROUTING rules
# contain PATTERN (default net-hook:1_provider, the exemption's comment).
# Prints 0 when there are none (grep -c; the exit status is grep's).
# shellcheck disable=SC2120 # the pattern is optional
vm_exemption_rules() { iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -c -- "${1:-net-hook:1_provider}"; }

# ---------------------------------------------------------------- packets

# vm_plug NS PORT: a namespace NS whose interface PORT is a port of virbr1.
vm_plug() {
    ip netns add "$1" &&
        ip link add "$2" type veth peer name "$2p" &&
        ip link set "$2p" master virbr1 up &&
        ip link set "$2" netns "$1" &&
        ip -n "$1" link set lo up &&
        ip -n "$1" link set "$2" up
}

# vm_udp_peers: "client", a guest on virbr1 (10.12.5.20, via 10.12.4.1), and
# "server", a host on VLAN 104 of the same bridge (10.12.8.50, via the
# gateway 10.12.8.1). Needs virbr1 up.
vm_udp_peers() {
    {
        vm_plug client c0 &&
            ip -n client addr add 10.12.5.20/22 dev c0 &&
            ip -n client route add default via 10.12.4.1 &&
            vm_plug server s0 &&
            ip -n server link add link s0 name s0.104 type vlan id 104 &&
            ip -n server addr add 10.12.8.50/22 dev s0.104 &&
            ip -n server link set s0.104 up &&
            ip -n server route add default via 10.12.8.1
    } || vm_bail "could not set up the client and server namespaces"
}

vm_udp_peers_gone() { ip netns del client; ip netns del server; }

# vm_seen_source: the source address the server sees for UDP from the client
# ("timeout" if nothing arrives). A fresh port each time: a fresh conntrack
# entry, so the current rules decide.
vm_seen_source() {
    local port=$((5000 + RANDOM % 1000)) dir rpid spid
    dir=$(mktemp -d /run/nh-probe.XXXXXX)
    ip netns exec server python3 "$NET_HOOK_REPO/tests/vm/udp-probe.py" recv "$port" "$dir/ready" >"$dir/seen" &
    rpid=$!
    # Send only once the receiver is bound: on a loaded host, starting
    # python in a namespace can take seconds.
    vm_wait 20 test -e "$dir/ready"
    ip netns exec client python3 "$NET_HOOK_REPO/tests/vm/udp-probe.py" send 10.12.8.50 "$port" &
    spid=$!
    wait "$rpid"
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    cat "$dir/seen"
    rm -rf "$dir"
}
