#!/usr/bin/env bash
# Routed VM interfaces (issue 11) on a real libvirtd confined by its AppArmor
# profile in enforce mode, with the qemu hook installed by `net-hook install`:
# libvirt 9.0 (the host root) or 11.3 (the Debian 13 root).
#
#   tests/vm/run tests/vm/scenarios/routed.sh "$PWD/target/release"
#   NET_HOOK_VM_ROOT=/var/cache/net-hook/trixie-root \
#       tests/vm/run tests/vm/scenarios/routed.sh "$PWD/target/release"
#
#   routed.sh BINDIR    BINDIR holds net-hook and net-hook-virt (release build)
#
# The config is examples/routed.toml (gateway virgw-service 172.31.16.1/24,
# domain routed-demo, tap tap-routed-demo, 172.31.16.10/32) plus a second
# domain routed-demo2 (tap-routed-2, 172.31.16.11/32) on the same gateway.
# Domains come from xml-templates/routed-demo.xml (type qemu, no disk), started
# with `virsh start --paused`: every hook op runs, QEMU holds the tap, no guest
# code runs.
#
# Checks, in order:
#  - libvirt-made taps: the gateway dummy (52:54:00 MAC, 172.31.16.1/24
#    noprefixroute, UP, marked), no 172.31.16.0/24 route in any table, the
#    tap's sysctls, the /32 via the tap with proto 200, the permanent
#    neighbour entry with the domain's MAC; destroy -> route and neighbour
#    gone, gateway kept; start again; libvirtd restart (reconnect) -> the
#    domain still runs and what was removed by hand is back; a second domain
#    on the same gateway, destroyed -> the gateway and the first domain's
#    route stay; `net-hook check`; bird2 with packaging/bird/net-hook.conf
#    learns 172.31.16.10/32 and not 172.31.16.0/24.
#  - pre-created taps (tap_mode = "precreated", <target managed='no'/>): the
#    tap exists at start (net-hook made it at prepare), is deleted at release.
#  - real packets: a third domain's pre-created tap, set up by the hook ops
#    prepare + started run by hand with that domain's XML (as libvirt runs
#    them; no QEMU attaches, so tests/vm/tap-player.py can, as QEMU would):
#    the player ARPs for 172.31.16.1 and reaches a server in another network
#    namespace (ICMP echo, and UDP to an echo server), the reply comes back
#    through the tap; with the /32 removed, no reply.
#  - no AppArmor denial for net-hook, libvirtd still confined; uninstall,
#    teardown --all removes the gateway.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bindir=${1:?usage: routed.sh DIR-WITH-net-hook-AND-net-hook-virt}
repo=$NET_HOOK_REPO
template=$repo/xml-templates/routed-demo.xml
player=$repo/tests/vm/tap-player.py
snippet=$repo/packaging/bird/net-hook.conf
qemu_entry=/etc/libvirt/hooks/qemu.d/50-net-hook

gw=virgw-service
dom=routed-demo tap=tap-routed-demo mac=52:54:00:1e:10:0a addr=172.31.16.10
dom2=routed-demo2 tap2=tap-routed-2 mac2=52:54:00:1e:10:0b addr2=172.31.16.11
dom3=routed-pkt tap3=tap-routed-pkt mac3=52:54:00:1e:10:0c addr3=172.31.16.12
srv_ns=nh-srv srv_addr=198.51.100.2

# write_config MODE: examples/routed.toml, with routed-demo's tap_mode MODE
# (libvirt or precreated), plus routed-demo2 and the pre-created routed-pkt.
write_config() {
    mkdir -p /etc/net-hook
    chmod 0755 /etc/net-hook
    sed "s|^# tap_mode = \"libvirt\"|tap_mode = \"$1\"|" "$repo/examples/routed.toml" >"$VM_CONFIG"
    cat >>"$VM_CONFIG" <<EOF

[domains.$dom2]
[[domains.$dom2.interfaces]]
tap = "$tap2"
gateway = "$gw"
addresses = ["$addr2/32"]

[domains.$dom3]
[[domains.$dom3.interfaces]]
tap = "$tap3"
gateway = "$gw"
addresses = ["$addr3/32"]
tap_mode = "precreated"
EOF
    chmod 0644 "$VM_CONFIG"
}

# domain_xml NAME MAC TAP [precreated]: the template for another domain.
domain_xml() {
    local managed=''
    [[ ${4:-} != precreated ]] || managed=" managed='no'"
    sed -e "s|<name>$dom</name>|<name>$1</name>|" \
        -e "s|<mac address='$mac'/>|<mac address='$2'/>|" \
        -e "s|<target dev='$tap'/>|<target dev='$3'$managed/>|" "$template"
}

# hook_diag: what net-hook said and recorded, for a failed check.
hook_diag() {
    {
        echo "net-hook status:"
        net-hook status 2>&1
        echo "records:"
        grep -r . /run/net-hook 2>/dev/null | grep -v '\.lock' | tail -n 40
        [[ ! -s ${syslog:-/nonexistent} ]] || { echo "log:"; tail -n 20 "$syslog"; }
        echo "libvirtd log:"
        grep -i 'hook' "$VM_LIBVIRTD_LOG" 2>/dev/null | tail -n 10
    } | _t_diag
}

# start_paused NAME LABEL: virsh start --paused, with the reasons on failure.
start_paused() {
    local out rc=0
    out=$(vm_virsh start --paused "$1" 2>&1) || rc=$?
    t_eq "$2: virsh start --paused $1" 0 "$rc"
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "$out" | _t_diag
        tail -n 20 "/var/log/libvirt/qemu/$1.log" 2>/dev/null | _t_diag
        hook_diag
    fi
    return "$rc"
}

# sysctl_of IFACE KEY [ipv4/conf|ipv4/neigh]
sysctl_of() { cat "/proc/sys/net/${3:-ipv4/conf}/$1/$2" 2>&1; }

# effective IFACE KEY: what the kernel uses for rp_filter and arp_ignore, the
# larger of net.ipv4.conf.all.KEY and the device's.
effective() {
    local a d
    a=$(sysctl_of all "$2") d=$(sysctl_of "$1" "$2")
    [[ $a =~ ^[0-9]+$ && $d =~ ^[0-9]+$ ]] || { echo "unreadable: all=$a $1=$d"; return; }
    echo $((a > d ? a : d))
}

# check_gateway LABEL: virgw-service is net-hook's dummy with the gateway
# address, and no connected route exists for its prefix.
check_gateway() {
    local d a
    d=$(ip -d link show dev "$gw" 2>&1)
    a=$(ip -4 addr show dev "$gw" 2>&1)
    t_match "$1: $gw is a dummy device" '(^|[[:space:]])dummy([[:space:]]|$)' "$d"
    t_match "$1: $gw has a 52:54:00 MAC" 'link/ether 52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2} ' "$d"
    t_match "$1: $gw is administratively UP" '<[^>]*,UP(,[^>]*)?>' "$d"
    t_match "$1: $gw is marked as net-hook's" 'alias net-hook-gw' "$d"
    t_match "$1: $gw has 172.31.16.1/24 with noprefixroute" 'inet 172\.31\.16\.1/24 .*noprefixroute' "$a"
    t_eq "$1: no route 172.31.16.0/24 (main)" "" "$(ip route show 172.31.16.0/24 2>&1)"
    t_eq "$1: no route 172.31.16.0/24 in any table" "" "$(ip route show table all 172.31.16.0/24 2>&1)"
}

# check_vm LABEL TAP MAC ADDR: the tap's sysctls, the /32 and the neighbour.
check_vm() {
    local l=$1 t=$2 m=$3 a=$4
    t_ok "$l: $t exists" vm_link_exists "$t"
    t_eq "$l: $t forwarding=1" 1 "$(sysctl_of "$t" forwarding)"
    t_eq "$l: $t proxy_arp=1" 1 "$(sysctl_of "$t" proxy_arp)"
    t_eq "$l: $t proxy_delay=0" 0 "$(sysctl_of "$t" proxy_delay ipv4/neigh)"
    t_eq "$l: $t arp_ignore effective 0" 0 "$(effective "$t" arp_ignore)"
    t_eq "$l: $t rp_filter effective 1 (the default)" 1 "$(effective "$t" rp_filter)"
    t_match "$l: $a/32 via $t with proto 200" "^${a//./\\.} dev $t proto 200 scope link" \
        "$(ip route show "$a/32" 2>&1)"
    t_match "$l: permanent neighbour $a -> $m on $t" "^${a//./\\.} lladdr $m PERMANENT" \
        "$(ip neigh show "$a" dev "$t" 2>&1)"
}

# check_vm_gone LABEL TAP ADDR: no route and no neighbour entry for ADDR.
check_vm_gone() {
    t_eq "$1: no route for $3" "" "$(ip route show "$3/32" 2>&1)"
    t_eq "$1: no neighbour entry for $3" "" "$(ip neigh show "$3" 2>/dev/null)"
}

# ---------------------------------------------------------------- setup

vm_install_binaries --need-virt "$bindir"
modprobe tun || vm_bail "modprobe tun failed"
modprobe dummy || vm_bail "modprobe dummy failed"
vm_note "libvirtd $(libvirtd --version | awk '{print $NF}'), $(qemu-system-x86_64 --version | head -n 1), $(bird --version 2>&1)"
# A syslog sink on /dev/log (no journald in the VM): busybox's syslogd, or,
# in a root without busybox (Debian 13), a few lines of Python.
syslog=/run/routed-syslog.log
: >"$syslog"
if command -v busybox >/dev/null; then
    busybox syslogd -n -O "$syslog" &
else
    python3 - "$syslog" 2>/run/routed-syslog.err <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\n") + b"\n")
PY
fi
# (Python's start-up takes seconds under TCG.)
vm_wait 60 test -S /dev/log ||
    vm_bail "no syslog socket /dev/log for net-hook's log lines: $(cat /run/routed-syslog.err 2>/dev/null)"

write_config libvirt
t_ok "config check passes on examples/routed.toml (+ 2 domains)" net-hook config check
out=$(net-hook install 2>&1)
printf '%s\n' "$out" | _t_diag
t_match "install links the qemu hook entry" "link $qemu_entry -> /usr/bin/net-hook" "$out"
t_eq "the qemu.d entry is a link to /usr/bin/net-hook" /usr/bin/net-hook "$(readlink "$qemu_entry" 2>&1)"

mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /run/libvirt
virtlogd --daemon || vm_bail "virtlogd --daemon failed"
vm_start_libvirtd --apparmor
denials_before=$(vm_apparmor_denials | wc -l)

# ---------------------------------------------------------------- libvirt-made taps

vm_virsh define "$template" >/dev/null || vm_bail "virsh define $template failed"
start_paused "$dom" "first start" || vm_bail "routed-demo does not start"
t_match "the domain is paused" paused "$(vm_virsh domstate "$dom")"
check_gateway "after start"
check_vm "after start" "$tap" "$mac" "$addr"
t_match "the tap's MAC is libvirt's fe:54:00:1e:10:0a" 'link/ether fe:54:00:1e:10:0a ' "$(ip link show dev "$tap" 2>&1)"
st=$(net-hook status 2>&1)
rc=$?
printf '%s\n' "$st" | _t_diag
t_eq "status exits 0 (no drift)" 0 "$rc"
t_match "status: routed-demo is running and as configured" "^domain $dom \\(running\\): ok" "$st"
t_match "status: its interface is routed" "^  $tap via gateway $gw .*: ${addr//./\\.}/32; routed" "$st"
# The log lines (syslog here, journald on a systemd host): one per step.
t_match "logged: the route for routed-demo" "net-hook\[[0-9]+\]: domain $dom: route ${addr//./\\.}/32 via $tap" "$(cat "$syslog")"
gw_mac=$(cat "/sys/class/net/$gw/address" 2>/dev/null)

t_ok "virsh destroy $dom" vm_virsh destroy "$dom"
check_vm_gone "after destroy" "$tap" "$addr"
t_ok "after destroy: libvirt deleted its tap" vm_wait_link_gone "$tap"
t_ok "after destroy: the gateway stays" vm_link_exists "$gw"
t_match "after destroy: the gateway keeps 172.31.16.1/24" 'inet 172\.31\.16\.1/24 ' "$(ip -4 addr show dev "$gw" 2>&1)"

start_paused "$dom" "second start"
check_gateway "after the second start"
check_vm "after the second start" "$tap" "$mac" "$addr"
t_eq "the gateway's MAC is the same as before" "$gw_mac" "$(cat "/sys/class/net/$gw/address" 2>&1)"

# Daemon restart: libvirt runs `reconnect begin`, which must re-apply (here:
# the route and the neighbour entry removed by hand) and never fail.
ip route del "$addr/32" dev "$tap"
ip neigh del "$addr" dev "$tap"
vm_restart_libvirtd --apparmor
t_match "after a libvirtd restart: the domain still runs (paused)" paused "$(vm_virsh domstate "$dom" 2>&1)"
check_gateway "after reconnect"
check_vm "after reconnect (route and neighbour removed by hand before)" "$tap" "$mac" "$addr"

# Two domains on one gateway.
x2=$(mktemp --suffix=.xml)
domain_xml "$dom2" "$mac2" "$tap2" >"$x2"
grep -q "<target dev='$tap2'/>" "$x2" || vm_bail "could not make $dom2's XML"
vm_virsh define "$x2" >/dev/null || vm_bail "virsh define $dom2 failed"
start_paused "$dom2" "two domains"
check_vm "two domains, $dom2" "$tap2" "$mac2" "$addr2"
check_vm "two domains, $dom" "$tap" "$mac" "$addr"
t_ok "virsh destroy $dom2" vm_virsh destroy "$dom2"
check_vm_gone "after destroying $dom2" "$tap2" "$addr2"
check_gateway "after destroying $dom2"
check_vm "after destroying $dom2, $dom still" "$tap" "$mac" "$addr"

# BIRD with the shipped snippet, as its comments say to include it.
mkdir -p /etc/bird /run/bird
install -m 0644 "$snippet" /etc/bird/net-hook.conf
cat >/etc/bird/bird.conf <<'EOF'
log stderr all;
router id 192.0.2.1;
include "/etc/bird/net-hook.conf";
protocol device { }
protocol kernel net_hook_v4 {
    learn;
    ipv4 { import filter net_hook_vm_routes; export none; };
}
protocol kernel net_hook_v6 {
    learn;
    ipv6 { import filter net_hook_vm_routes; export none; };
}
EOF
t_ok "bird -p accepts bird.conf with the snippet" bird -p -c /etc/bird/bird.conf
bird -c /etc/bird/bird.conf -P /run/bird/bird.pid 2>/run/bird/stderr.log || vm_note "bird did not start: $(cat /run/bird/stderr.log)"
learned() { birdc show route 2>/dev/null | grep -q "^172\.31\.16\.10/32 "; }
vm_wait 30 learned
routes=$(birdc show route 2>&1)
printf '%s\n' "$routes" | _t_diag
t_match "bird learned 172.31.16.10/32" '^172\.31\.16\.10/32 ' "$routes"
t_check "bird did not learn 172.31.16.0/24" "$(grep '172\.31\.16\.0/24' <<<"$routes")"
t_check "bird did not learn the gateway address" "$(grep '^172\.31\.16\.1/32' <<<"$routes")"
t_check "bird learned nothing else" "$(grep -E '^[0-9a-f.:]+/[0-9]+ ' <<<"$routes" | grep -v '^172\.31\.16\.10/32 ')"
t_match "bird: its krt_source is 200" 'Kernel\.source: 200' "$(birdc show route all 172.31.16.10/32 2>&1)"

out=$(net-hook check "$dom" 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "net-hook check $dom exits 0" 0 "$rc"
t_check "check: no FAIL line" "$(grep '^FAIL' <<<"$out")"
t_match "check: BIRD learned 172.31.16.10/32" '^PASS .*(bird|BIRD).*172\.31\.16\.10/32|^PASS .*172\.31\.16\.10/32.*(bird|BIRD)' "$out"
kill "$(cat /run/bird/bird.pid 2>/dev/null)" 2>/dev/null

out=$(net-hook routed xml "$dom" "$tap" 2>&1)
t_match "routed xml prints the interface block" "<interface type='ethernet'>" "$out"
t_match "routed xml: the tap" "<target dev='$tap'" "$out"

t_ok "virsh destroy $dom" vm_virsh destroy "$dom"
check_vm_gone "routed-demo destroyed" "$tap" "$addr"
vm_virsh undefine "$dom" >/dev/null
vm_virsh undefine "$dom2" >/dev/null

# ---------------------------------------------------------------- pre-created taps

write_config precreated
t_ok "config check passes with tap_mode = \"precreated\"" net-hook config check
xp=$(mktemp --suffix=.xml)
domain_xml "$dom" "$mac" "$tap" precreated >"$xp"
grep -q "<target dev='$tap' managed='no'/>" "$xp" || vm_bail "could not make the managed='no' XML"
vm_virsh define "$xp" >/dev/null || vm_bail "virsh define (managed='no') failed"
if start_paused "$dom" "precreated"; then
    d=$(ip -d link show dev "$tap" 2>&1)
    t_match "precreated: $tap is a tap" 'tun type tap ' "$d"
    t_match "precreated: $tap is persistent" 'persist on' "$d"
    t_match "precreated: $tap has vnet_hdr (virtio)" 'vnet_hdr on' "$d"
    t_match "precreated: $tap has MAC fe:54:00:1e:10:0a" 'link/ether fe:54:00:1e:10:0a ' "$d"
    t_match "precreated: $tap is marked as net-hook's" "alias net-hook-tap:$dom" "$d"
    check_vm "precreated" "$tap" "$mac" "$addr"
    t_ok "precreated: virsh destroy" vm_virsh destroy "$dom"
    check_vm_gone "precreated, destroyed" "$tap" "$addr"
    t_ok "precreated: net-hook deleted the tap at release" vm_wait_link_gone "$tap"
fi
t_ok "precreated: undefine" vm_virsh undefine "$dom"
t_ok "precreated: no tap left after undefine" vm_link_absent "$tap"
t_ok "precreated: the gateway stays" vm_link_exists "$gw"

# ---------------------------------------------------------------- real packets

# The server: another network namespace behind a veth pair, reached through
# the host's routing (198.51.100.0/24 on nh-srv0).
{
    ip netns add "$srv_ns" &&
        ip link add nh-srv0 type veth peer name nh-srv1 &&
        ip link set nh-srv1 netns "$srv_ns" &&
        ip addr add 198.51.100.1/24 dev nh-srv0 &&
        ip link set nh-srv0 up &&
        sysctl -qw net.ipv4.conf.nh-srv0.forwarding=1 &&
        ip -n "$srv_ns" link set lo up &&
        ip -n "$srv_ns" addr add "$srv_addr/24" dev nh-srv1 &&
        ip -n "$srv_ns" link set nh-srv1 up &&
        ip -n "$srv_ns" route add default via 198.51.100.1
} || vm_bail "could not set up the server namespace"

# routed-pkt: the hook ops libvirt runs before QEMU attaches, run by hand
# with that domain's XML (managed='no'); then the player attaches as QEMU would.
x3=$(mktemp --suffix=.xml)
domain_xml "$dom3" "$mac3" "$tap3" precreated >"$x3"
grep -q "<target dev='$tap3' managed='no'/>" "$x3" || vm_bail "could not make $dom3's XML"
t_ok "$dom3: hook prepare begin (by hand)" net-hook hook --qemu "$dom3" prepare begin - <"$x3"
t_ok "$dom3: hook started begin (by hand)" net-hook hook --qemu "$dom3" started begin - <"$x3"
check_vm "$dom3" "$tap3" "$mac3" "$addr3"
# migrate and restore are filters: what the hook prints replaces the XML.
for op in migrate restore; do
    out=$(net-hook hook --qemu "$dom3" "$op" begin - <"$x3" 2>/dev/null)
    rc=$?
    t_eq "$dom3: hook $op begin exits 0" 0 "$rc"
    t_eq "$dom3: hook $op begin prints nothing on stdout" "" "$out"
done
# A domain net-hook has no config for: exit 0, no output, nothing made.
domain_xml other-vm 52:54:00:1e:10:0d tap-other precreated >"$x3.other"
out=$(net-hook hook --qemu other-vm prepare begin - <"$x3.other" 2>&1)
rc=$?
t_eq "an unconfigured domain: prepare exits 0" 0 "$rc"
t_eq "an unconfigured domain: no output" "" "$out"
t_ok "an unconfigured domain: no tap made" vm_link_absent tap-other
rm -f "$x3.other"

play() { # play LABEL ARGS...: run the player on tap3, show what it printed
    local l=$1 out rc=0
    shift
    out=$(timeout 60 python3 "$player" play --tap "$tap3" --mac "$mac3" --ip "$addr3" \
        --gateway 172.31.16.1 --server "$srv_addr" --vnet-hdr "$@" 2>&1) || rc=$?
    printf '%s\n' "$out" | _t_diag
    PLAY_OUT=$out PLAY_RC=$rc
}
play icmp --proto icmp --timeout 15
t_eq "packets: ICMP echo to $srv_addr, the reply came back through $tap3" 0 "$PLAY_RC"
t_match "packets: the ARP reply for the gateway came through the tap" 'ARP reply: 172\.31\.16\.1 is-at ' "$PLAY_OUT"
t_match "packets: the reply was routed (TTL 63)" 'echo reply from 198\.51\.100\.2 .*TTL 63' "$PLAY_OUT"

ready=$(mktemp -u /run/nh-echo.XXXXXX)
ip netns exec "$srv_ns" python3 "$player" echo-server --port 7007 --ready "$ready" --timeout 30 >/run/nh-echo.log 2>&1 &
echo_pid=$!
vm_wait 20 test -e "$ready" || vm_note "the echo server did not report ready"
play udp --proto udp --port 7007 --timeout 15
t_eq "packets: UDP to $srv_addr:7007, the echo came back through $tap3" 0 "$PLAY_RC"
kill "$echo_pid" 2>/dev/null
wait "$echo_pid" 2>/dev/null

# The server's reply to the VM takes the /32 via the tap.
t_match "packets: the route back from the server is the /32 via $tap3" "^${addr3//./\\.} from ${srv_addr//./\\.} dev $tap3 " \
    "$(ip route get "$addr3" from "$srv_addr" iif nh-srv0 2>&1)"
# Without the /32 nothing works: the tap's rp_filter (1) drops the VM's
# frames, so not even the gateway's ARP is answered.
ip route del "$addr3/32" dev "$tap3"
play no-route --proto icmp --timeout 5
t_eq "packets: without the /32, no exchange (player exits 1)" 1 "$PLAY_RC"
t_ok "$dom3: hook reconnect begin (by hand) restores the /32" net-hook hook --qemu "$dom3" reconnect begin - <"$x3"
t_match "$dom3: the /32 is back" "^${addr3//./\\.} dev $tap3 proto 200 scope link" "$(ip route show "$addr3/32" 2>&1)"
play again --proto icmp --timeout 15
t_eq "packets: with the /32 back, the reply comes back again" 0 "$PLAY_RC"

t_ok "$dom3: hook stopped end (by hand)" net-hook hook --qemu "$dom3" stopped end - <"$x3"
t_ok "$dom3: hook release end (by hand)" net-hook hook --qemu "$dom3" release end - <"$x3"
check_vm_gone "$dom3 released" "$tap3" "$addr3"
t_ok "$dom3: the pre-created tap is deleted at release" vm_link_absent "$tap3"
ip netns del "$srv_ns"
ip link del nh-srv0 2>/dev/null

# ---------------------------------------------------------------- the end

denials=$(vm_apparmor_denials | tail -n +"$((denials_before + 1))")
t_check "no AppArmor denials for net-hook" "$(grep -E 'net-hook' <<<"$denials")"
[[ -z $denials ]] || { vm_note "other AppArmor denials while the scenario ran:"; printf '%s\n' "$denials" | _t_diag; }
t_match "libvirtd is still confined (enforce)" '^libvirtd \(enforce\)$' "$(vm_apparmor_label "$(vm_libvirtd_pid)")"

out=$(net-hook uninstall 2>&1)
t_match "uninstall removes the qemu.d entry" "remove $qemu_entry" "$out"
t_ok "the qemu.d entry is gone" test ! -e "$qemu_entry"
out=$(net-hook teardown --all 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "teardown --all exits 0" 0 "$rc"
t_ok "teardown --all removed the gateway" vm_link_absent "$gw"
# What brings the gateway back after a reboot, before any routed domain
# starts: reconcile (the package's unit runs it when libvirtd starts).
out=$(net-hook reconcile 2>&1)
printf '%s\n' "$out" | _t_diag
t_ok "reconcile creates the gateway with no domain running" vm_link_exists "$gw"
t_eq "the gateway's MAC is the same as at the first start (derived, not random)" "$gw_mac" \
    "$(cat "/sys/class/net/$gw/address" 2>&1)"
check_gateway "after reconcile"
net-hook teardown --all >/dev/null 2>&1
t_ok "teardown --all removed it again" vm_link_absent "$gw"

rm -f "$x2" "$xp" "$x3"
vm_summary
