#!/usr/bin/env bash
# net-hook under faults, crashes, load and hostile input, on real VLANs.
#
#   tests/vm/run tests/vm/scenarios/reliability.sh DIR-WITH-net-hook [CAP [SERIES-S [SECTIONS]]]
#
# 1. Syscall faults (strace -e inject, on net-hook's own process: its
#    firewall children run untouched, since strace counts calls per
#    process): ENOBUFS, EIO, EINTR, EAGAIN on netlink sendto and recvfrom
#    (net-hook receives with recvfrom, never recvmsg) of a managed `started`
#    and `stopped`; the same strict; ENOSPC on writes and EROFS on
#    openat/mkdirat/renameat (the lock, records, config); EACCES on opening
#    the config. Every run: no panic, no hang, exit 0 (fail-soft; 1 strict,
#    with one line), and the host either exactly as before or exactly as
#    configured; then a normal run converges.
# 2. SIGKILL at sendto and write: the lock is free, the next run
#    converges, no temporary file is left behind.
# 3. 32 runs at once over 8 networks on hand-made bridges; then a bounded
#    loop of 50 networks started and stopped with a 200-network config.
# 4. Hostile network names and XML.
#
# Every fault series (one syscall, errno or signal, op) runs at most CAP
# (default 2) injection points, spread over its calls, and starts no
# further point after SERIES-S (default 6) seconds; its first point always
# runs, so every series is tried. SECTIONS (default 1234) picks sections.
# `2000 100000` tries every call of every series.
# Counts are printed as "# count: ..." lines (RELIABILITY.md quotes them).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bins=${1:?usage: reliability.sh DIR [CAP [SERIES-S [SECTIONS]]]}
sections=${4:-1234}
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
# bridge VLANs, the nft ruleset without counters, and the iptables nat
# rules when they are not nft's (then the ruleset has them). Few
# processes: under TCG each costs a few tenths of a second.
ipt_legacy=0
iptables -V 2>/dev/null | grep -q nf_tables || ipt_legacy=1
snapshot() {
    ip -d -o -batch - <<<$'link show\naddr show' | awk '
        $3 ~ /^inet6?$/ { if ($4 !~ /^fe80:/) print $2, $3, $4; next }
        $2 == "lo:" { next }
        { sub(/^[0-9]+: /, ""); gsub(/,?LOWER_UP/, ""); gsub(/ state [A-Z]+/, ""); gsub(/qlen [0-9]+/, "")
          gsub(/ [a-z_]+_timer +[0-9.]+/, ""); gsub(/\\ +/, " "); print }' | sort
    bridge vlan show 2>/dev/null
    if [[ $ipt_legacy == 1 ]]; then
        iptables -w -t nat -S
        ip6tables -w -t nat -S
    fi
    nft -s list ruleset 2>/dev/null
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
# What a fault run is made of, for the time figures.
c0=$(vm_uptime); snapshot >/dev/null; c1=$(vm_uptime)
hook started begin >/dev/null 2>&1; c2=$(vm_uptime)
hook started begin sendto sendto:error=ENOBUFS:when=999 >/dev/null 2>&1
vm_note "count: costs: a snapshot $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')s, a plain run $(awk -v a="$c1" -v b="$c2" 'BEGIN { print b - a }')s, a run under strace $(vm_since "$c2")s"
teardown

# trace OP [NAME]: one clean run of OP from its starting state, traced for
# every syscall the series inject into, into trace.NAME (default OP).
traced='sendto,recvfrom,write,openat,mkdirat,renameat,renameat2'
trace() {
    local op=$1 sub=begin
    [[ $op == stopped ]] && sub=end
    if [[ $op == stopped ]]; then hook started begin >/dev/null 2>&1; else teardown; fi
    timeout 60 strace -f --seccomp-bpf -y -qq -o "$work/trace.${2:-$op}" -e trace="$traced" \
        net-hook hook 1_provider "$op" "$sub" - <"$xml" >/dev/null 2>&1
    known=''
}

# lines NAME SYSCALL: trace NAME's calls of SYSCALL, in order (one a line).
lines() { grep -E "^([0-9]+ +)?$2\(" "$work/trace.$1"; }
ncalls() { lines "$1" "$2" | grep -c .; }

# first_own OP SYSCALL: the number of the first call that is net-hook's
# own, not the dynamic loader's (which opens ld.so.cache and the libraries
# first; failing those is the loader's business).
first_own() { lines "$1" "$2" | grep -nvE 'ld\.so|\.so\.[0-9]|\.so"' | head -1 | cut -d: -f1; }

# nth_call OP SYSCALL PATTERN: the number of the first call matching PATTERN.
nth_call() { lines "$1" "$2" | grep -n -- "$3" | head -1 | cut -d: -f1; }

# known: the host's state (base or up) as the last fault run saw it; empty
# when something else may have changed it since.
known=''
faults=0 unknown=0 leftovers=0 hangs=0 panics=0 badexit=0 badline=0 noconverge=0
state_name() { # which known state the host is in: base, up or other
    local s
    s=$(snapshot)
    if [[ $s == "$base" ]]; then echo base; elif [[ $s == "$up" ]]; then echo up; else echo other; fi
}

# fault OP STRICT LABEL STRACE-ARGS...: one injected run of OP from its
# starting state (base for started, up for stopped), checked; then a normal
# run of OP must reach its end state.
fault() {
    local op=$1 strict=$2 label=$3 sub=begin from=base to=up out rc st errs cur problems=''
    shift 3
    [[ $op == stopped ]] && sub=end from=up to=base
    # Bring the host to the starting state only when it is not there.
    cur=$known
    [[ -n $cur ]] || cur=$(state_name)
    if [[ $cur != "$from" ]]; then
        if [[ $from == base ]]; then teardown; else hook started begin >/dev/null 2>&1; fi
        [[ $(state_name) == "$from" ]] || problems+="could not reach the starting state; "
    fi
    known=''
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
    # What the run says must be what it did. A teardown step whose answer
    # was lost may still have been done; saying it is unknown is true.
    if [[ $st == "$to" && $errs -ne 0 ]]; then
        if [[ $op == stopped ]] && ! grep 'fail-soft: libvirt keeps\|^net-hook: network "1_provider": \|cannot read config' <<<"$out" |
            grep -qv 'whether it was done is unknown'; then
            unknown=$((unknown + 1))
        else
            problems+="reported a failure, but the run was carried out; "
        fi
    fi
    [[ $st != "$from" || $errs -ne 0 ]] || problems+="reported no failure, but nothing was done; "
    if [[ $st != "$to" ]]; then
        hook "$op" "$sub" >/dev/null 2>&1
        st=$(state_name)
        [[ $st == "$to" ]] || { noconverge=$((noconverge + 1)) problems+="the next run did not converge; "; }
    fi
    [[ $st == other ]] || known=$st
    if [[ -n $problems ]]; then
        t_check "$label" "${problems}exit $rc, state $st; stderr: $out"
    fi
}

# Each series gets its own share: at most $cap injection points, one in
# each of $cap equal slices of its calls, and no further point once it has
# run $series_s seconds (the first point always runs). So every series is
# tried whatever came before it, and the whole run stays bounded.
cap=${2:-2}
series_s=${3:-6}
((cap >= 1 && series_s >= 1)) || vm_bail "CAP and SERIES-S must be at least 1"
series_no=0 nseries=0

# spread N: sets pts to up to $cap indexes in 1..N, one per slice; where
# in its slice moves from series to series, so that together they hit
# different calls. (An array, not output: a subshell would lose series_no.)
spread() {
    local n=$1 i lo hi
    series_no=$((series_no + 1)) pts=()
    if ((n <= cap)); then
        ((n < 1)) || mapfile -t pts < <(seq 1 "$n")
        return 0
    fi
    for ((i = 0; i < cap; i++)); do
        lo=$((1 + i * n / cap)) hi=$(((i + 1) * n / cap))
        pts+=($((lo + (series_no + i) % (hi - lo + 1))))
    done
}

# series LABEL OP STRICT SYSCALL ACTION TOTAL CALL...: one fault run of OP
# per CALL (its number among OP's SYSCALL calls; TOTAL of them in a clean
# run), within the series' time; then the series' checks and count line.
series() {
    local label=$1 op=$2 strict=$3 sc=$4 act=$5 total=$6 n t fails=$T_FAIL done=() left=()
    shift 6
    t=$(vm_uptime)
    for n in "$@"; do
        if ((${#done[@]} > 0)) && awk -v a="$t" -v b="$(vm_uptime)" -v l="$series_s" 'BEGIN { exit !(b - a >= l) }'; then
            left+=("$n")
            continue
        fi
        fault "$op" "$strict" "$label at call $n" "$sc" "$sc:$act:when=$n"
        done+=("$n")
    done
    nseries=$((nseries + 1))
    vm_note "count: $label: ${#done[@]} runs, at calls ${done[*]:-none} of $total${left[*]:+; not reached in ${series_s}s: ${left[*]}} ($(vm_since "$t")s)"
    t_ok "$label: at least one injection ran (calls of $total: ${done[*]:-none})" test "${#done[@]}" -ge 1
    t_eq "$label: ${#done[@]} runs, each all or nothing, documented exit, next run converges" "$fails" "$T_FAIL"
}

# inject OP SYSCALL ERRNO FIRST LAST: a series over calls FIRST..LAST.
inject() {
    local op=$1 sc=$2 err=$3 first=$4 last=$5 k calls=()
    spread $((last - first + 1))
    for k in ${pts[@]+"${pts[@]}"}; do calls+=($((first + k - 1))); done
    series "$op: $sc $err" "$op" false "$sc" "error=$err" "$last" ${calls[@]+"${calls[@]}"}
}

# have_calls LABEL N: a series needs calls to inject into; none is a failure.
have_calls() { t_ok "$1: a clean run makes such calls (${2:-0})" test "${2:-0}" -ge 1; }

case $sections in *1*)
vm_note "section 1: syscall faults ($cap points a series at most, ${series_s}s a series)"
t0=$(vm_uptime)
# started and stopped alternate, so that each fault run starts where the
# one before it ended (saves a run and a snapshot each).
declare -A s_n r_n
for op in started stopped; do
    trace "$op"
    s_n[$op]=$(ncalls "$op" sendto) r_n[$op]=$(ncalls "$op" recvfrom)
    vm_note "count: a clean $op makes ${s_n[$op]} sendto and ${r_n[$op]} recvfrom calls"
    have_calls "$op: sendto" "${s_n[$op]}"
    have_calls "$op: recvfrom" "${r_n[$op]}"
done
# EAGAIN makes the run wait for readiness that never comes: each one costs
# the 5 s request timeout.
for err in ENOBUFS EIO EINTR EAGAIN; do
    for op in started stopped; do
        inject "$op" sendto "$err" 1 "${s_n[$op]}"
        inject "$op" recvfrom "$err" 1 "${r_n[$op]}"
    done
done
vm_note "section 1 (netlink): $(vm_since "$t0")s"

# Strict: the same faults exit 1 with one line.
write_config true
trace started strict
n=$(ncalls strict sendto)
spread "$n"
series "strict started: sendto ENOBUFS" started true sendto error=ENOBUFS "$n" ${pts[@]+"${pts[@]}"}
write_config false

# Files: ENOSPC on writes, EROFS on openat/mkdirat/renameat (net-hook's
# own: the lock, run dir, records, config), EACCES on opening the config.
# The traces are section 1's (the same config); ops alternate as above.
declare -A own_w
for op in started stopped; do
    # tokio's wake-ups write to an eventfd, which the kernel never fails
    # with ENOSPC (tokio panics if it does): only real files and pipes.
    own_w[$op]=$(lines "$op" write | grep -nv 'eventfd' | cut -d: -f1 | tr '\n' ' ')
    vm_note "count: a clean $op makes $(ncalls "$op" write) write calls, $(wc -w <<<"${own_w[$op]}") not to tokio's eventfd"
done
for op in started stopped; do
    read -ra own <<<"${own_w[$op]}"
    have_calls "$op: write (not the eventfd's)" "${#own[@]}"
    spread "${#own[@]}"
    calls=()
    for k in ${pts[@]+"${pts[@]}"}; do calls+=("${own[k - 1]}"); done
    series "$op: write ENOSPC" "$op" false write error=ENOSPC "$(ncalls "$op" write)" ${calls[@]+"${calls[@]}"}
done
# glibc may rename with renameat2: whichever the trace shows.
rn=renameat
[[ $(ncalls started renameat) -gt 0 || $(ncalls started renameat2) -eq 0 ]] || rn=renameat2
for sc in openat mkdirat "$rn"; do
    for op in started stopped; do
        n=$(ncalls "$op" "$sc") first=$(first_own "$op" "$sc")
        vm_note "count: a clean $op makes $n $sc calls, net-hook's own from call ${first:-none}"
        have_calls "$op: $sc (net-hook's own)" "$([[ -n $first ]] && echo $((n - first + 1)))"
        [[ -z $first ]] || inject "$op" "$sc" EROFS "$first" "$n"
    done
done
# The config's directory, then the file (opened relative to it).
for pat in '"/etc/net-hook"' '"net-hook.toml"'; do
    for op in started stopped; do
        n=$(nth_call "$op" openat "$pat")
        if [[ -z $n ]]; then
            t_check "$op: the config is opened ($pat)" "no such openat in: $(lines "$op" openat)"
            continue
        fi
        series "$op: openat EACCES on $pat" "$op" false openat error=EACCES "$(ncalls "$op" openat)" "$n"
    done
done
n=$(nth_call started openat '"net-hook.toml"')
out=$(teardown; hook started begin openat "openat:error=EACCES:when=${n:-1}" 2>&1)
known=''
t_match "EACCES on the config: one line naming the file and the fix" \
    "cannot read config $VM_CONFIG: Permission denied .*; create it or pass --config" "$out"
n=$(nth_call started write 'networks/\.1_provider')
have_calls "started: write of the record" "${n:+1}"
out=$(teardown; hook started begin write "write:error=ENOSPC:when=${n:-1}" 2>&1)
faults=$((faults + 2)) known=''

t_match "ENOSPC on the record: reported, the run itself done" \
    'could not record the outcome: writing /run/net-hook/networks/1_provider.toml: No space left on device' "$out"
t_eq "ENOSPC on the record: the host is as configured" up "$(state_name)"
vm_note "section 1 (all): $(vm_since "$t0")s"
;; esac

kills=0
case $sections in *2*)
vm_note "section 2: SIGKILL ($cap points a series at most, ${series_s}s a series)"
t1=$(vm_uptime)
lockheld=0 tempfiles=0 killconv=0
for op in started stopped; do
    sub=begin to=up
    [[ $op == stopped ]] && sub=end to=base
    [[ -s $work/trace.$op ]] || trace "$op"
    for sc in sendto write; do
        n_max=$(ncalls "$op" "$sc")
        have_calls "$op: $sc for SIGKILL" "$n_max"
        t=$(vm_uptime) done=() left=()
        spread "$n_max"
        for n in ${pts[@]+"${pts[@]}"}; do
            if ((${#done[@]} > 0)) && awk -v a="$t" -v b="$(vm_uptime)" -v l="$series_s" 'BEGIN { exit !(b - a >= l) }'; then
                left+=("$n")
                continue
            fi
            if [[ $op == started ]]; then teardown; else hook started begin >/dev/null 2>&1; fi
            hook "$op" "$sub" "$sc" "$sc:signal=KILL:when=$n" >/dev/null 2>&1
            kills=$((kills + 1)) done+=("$n")
            flock -n "$run/lock" true || { lockheld=$((lockheld + 1)); vm_note "kill $op $sc $n: lock held"; }
            hook "$op" "$sub" >/dev/null 2>&1
            [[ $(state_name) == "$to" ]] || { killconv=$((killconv + 1)); vm_note "kill $op $sc $n: no convergence"; }
            # A kill between writing and renaming a record leaves its
            # temporary file; the next write removes it.
            if find "$run/networks" -name '.*' | grep -q .; then
                tempfiles=$((tempfiles + 1))
                vm_note "kill $op $sc $n: left $(find "$run/networks" -name '.*')"
            fi
        done
        nseries=$((nseries + 1))
        vm_note "count: $op: SIGKILL at $sc: ${#done[@]} runs, at calls ${done[*]:-none} of $n_max${left[*]:+; not reached in ${series_s}s: ${left[*]}} ($(vm_since "$t")s)"
        t_ok "$op: SIGKILL at $sc: at least one kill ran" test "${#done[@]}" -ge 1
    done
done
vm_note "count: $kills SIGKILLs"
t_eq "SIGKILL ($kills runs): the lock is always free" 0 "$lockheld"
t_eq "SIGKILL: the next run always converges" 0 "$killconv"
t_eq "SIGKILL: no temporary record is left after the next run" 0 "$tempfiles"
teardown
t_same "after the kills, a teardown leaves the base state" "$base" "$(snapshot)"
vm_note "section 2: $(vm_since "$t1")s"
;; esac

extra=$work/extra.toml
case $sections in *3*)
vm_note "section 3: concurrency and load"
t2=$(vm_uptime)
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
# Under load a run can wait longer than the lock's 20 s: it does nothing,
# says so, exits 0 (fail-soft), and leaves the holder's record alone.
timedout=$(cat "$work"/conc.*.out | grep -c 'another net-hook run held it for')
t_eq "32 concurrent started: every run exits 0" 32 "$(cat "$work"/conc.*.rc | awk '$1 == 0' | wc -l)"
longest=$(cat "$work"/conc.*.rc | awk '{ print $2 }' | sort -n | tail -1)
waited=$(cat "$work"/conc.*.out | sed -n 's/.*waited \([0-9]*\) ms for the lock.*/\1/p' | sort -n | tail -1)
vm_note "count: 32 concurrent started: longest run ${longest} ms, longest lock wait ${waited:-0} ms (waits under 100 ms are not logged); $timedout timed out on the lock"
missing=''
for i in $(seq 0 7); do
    d=$(ip -d addr show dev "brc$i.$((300 + i))" 2>&1)
    grep -q "vlan protocol 802.1Q id $((300 + i)) " <<<"$d" && grep -q "inet 10.200.$i.1/24 " <<<"$d" &&
        grep -q "alias net-hook:c$i" <<<"$d" || missing+="brc$i.$((300 + i)) "
    r=$(cat "$run/networks/c$i.toml" 2>&1)
    grep -qx 'op = "started"' <<<"$r" && grep -qE '^result = "(ok|unchanged)"$' <<<"$r" ||
        missing+="record c$i: $(grep -E '^(op|result|message) = ' <<<"$r" | tr '\n' ' '); "
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
for i in $(seq 0 199); do
    printf '[networks.l%s]\n[[networks.l%s.vlans]]\nid = %s\nname = "l%s.v"\naddresses = ["10.%s.%s.1/24"]\n' \
        "$i" "$i" $((1000 + i)) "$i" $((64 + i / 100)) $((i % 100))
done >"$extra"
write_config false "$extra"
# One ip process for the 50 bridges (each exec is slow under TCG).
for i in $(seq 0 49); do
    printf 'link add lb%s type bridge\nlink set lb%s up\n' "$i" "$i"
    printf "<network><name>l%s</name><forward mode='nat'/><bridge name='lb%s'/></network>\n" "$i" "$i" >"$work/l$i.xml"
done | ip -batch - || vm_bail "could not make the load bridges"
files() { cut -f1 /proc/sys/fs/file-nr; }
rundir_size() { du -sb "$run" | cut -f1; }
rounds=0 bad=0 first_ms='' last_ms='' files0='' size0=''
# 30 s, but at least two full rounds (a loaded machine is slow), at most 180 s.
deadline=$(($(date +%s) + 30)) hard=$(($(date +%s) + 180))
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
;; esac

inputs=0
case $sections in *4*)
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
    # A raw newline in the name would split the line (and could forge one).
    t_check "$label, configured: every stderr line is a whole net-hook line" "$(grep -v '^net-hook: ' <<<"$out")"
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
# The host now has this section's and section 3's bridges: new references.
teardown
base=$(snapshot)
out=$(hook started begin 2>&1)
t_eq "hostile XML: the reference started exits 0" "0" "$?"
up=$(snapshot)
t_ok "hostile XML: the reference started made virbr1.104" vm_link_exists virbr1.104
teardown
t_same "hostile XML: the reference stopped leaves the host as before" "$base" "$(snapshot)"
# What a right parser must do where there is no choice: documents libvirt
# could send, written differently, are parsed; entities (never expanded),
# a document that is not a network, an unfinished one, and a name that
# is not the network's, a NUL are refused. The others may go either way.
declare -A want=([doctype]=parsed [cdata]=parsed [comments]=parsed [charref]=parsed [bom]=parsed
    [laughs]=refused [external]=refused [deep]=refused [truncated]=refused [cdata-markup]=refused [nul-ref]=refused)
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
    out=$(timeout 30 net-hook hook 1_provider started begin - <"$f" 2>&1)
    rc=$?
    inputs=$((inputs + 1))
    st=$(state_name)
    t_check "$label: no panic" "$(grep panicked <<<"$out")"
    got=''
    case "$rc:$st" in
        0:up) xml_ok=$((xml_ok + 1)) got=parsed ;;
        1:base)
            xml_refused=$((xml_refused + 1)) got=refused
            t_eq "$label: refused with one line" 1 "$(wc -l <<<"$out")"
            ;;
        *) t_check "$label: parsed and converged, or refused and unchanged" "exit $rc, state $st: $out" ;;
    esac
    k=${label#xml }
    [[ -z ${want[$k]:-} ]] || t_eq "$label: ${want[$k]}" "${want[$k]}" "$got"
    [[ $st == base ]] || teardown
    vm_note "$label: $got, exit $rc, $(head -n 1 <<<"$out" | cut -c1-200)"
done
n_xml=$(find "$work" -maxdepth 1 -name 'x.*.xml' | grep -c .)
vm_note "count: hostile XML: $n_xml cases, $xml_ok parsed, $xml_refused refused"
t_eq "hostile XML: each of the $n_xml cases parsed and converged or refused and unchanged" "$n_xml" "$((xml_ok + xml_refused))"
t_check "no entity was expanded into a name" "$(grep -l 'aaaaaaaaaa\|root:' "$run"/networks/*.toml 2>/dev/null)"
vm_note "section 4: $(vm_since "$t3")s"
;; esac

vm_note "count: $nseries fault series; faults injected $faults (+ $kills SIGKILLs); inputs tried $inputs; lost answers of steps that were done, reported as unknown $unknown; leftovers $leftovers; hangs $hangs; panics $panics; bad exits $badexit; bad error lines $badline; no convergence $noconverge"
t_eq "fault runs: no leftovers" 0 "$leftovers"
t_eq "fault runs: no hangs" 0 "$hangs"
t_eq "fault runs: no panics" 0 "$panics"
t_eq "fault runs: exit status as documented" 0 "$badexit"
t_eq "fault runs: the next run always converges" 0 "$noconverge"
vm_summary
