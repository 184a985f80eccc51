#!/usr/bin/env bash
# The un-NAT exemption with real packets on the real libvirtd (iptables
# backend, as Debian 12's libvirt 9.0 has no other): a client on virbr1
# (10.12.5.20) sends UDP to a server on VLAN 104 (10.12.8.50) through the
# gateway virbr1.104; the server reports the source it sees.
#
#   tests/vm/run tests/vm/scenarios/unnat.sh DIR-WITH-net-hook-AND-net-hook-virt
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bindir=${1:?usage: unnat.sh DIR-WITH-BINARIES}
modprobe 8021q || vm_bail "modprobe 8021q failed"
install -m 0755 "$bindir/net-hook" "$bindir/net-hook-virt" /usr/bin/
conf=/etc/net-hook/net-hook.toml
mkdir -p /etc/net-hook
write_config() { # write_config WITH-UNNAT(0|1)
    cat >"$conf" <<'EOF'
[networks.1_provider]
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22"]
EOF
    if [[ $1 == 1 ]]; then
        printf '\n[networks.1_provider.unnat]\ndestinations = ["10.12.8.0/22"]\n' >>"$conf"
    fi
    chmod 0644 "$conf"
}
write_config 0
net-hook install >/dev/null || vm_bail "net-hook install failed"
vm_start_libvirtd --apparmor
vm_virsh net-define "$NET_HOOK_REPO/xml-templates/1_provider.xml" >/dev/null || vm_bail "net-define failed"
vm_virsh net-start 1_provider >/dev/null || vm_bail "net-start failed"
vm_link_exists virbr1.104 || vm_bail "the hook did not create virbr1.104"

# client: a "guest" on virbr1; server: a host on VLAN 104 of the same bridge.
plug() { # plug NS PORT
    ip netns add "$1"
    ip link add "$2" type veth peer name "$2p"
    ip link set "$2p" master virbr1 up
    ip link set "$2" netns "$1"
    ip -n "$1" link set lo up
    ip -n "$1" link set "$2" up
}
plug client c0
ip -n client addr add 10.12.5.20/22 dev c0
ip -n client route add default via 10.12.4.1
plug server s0
ip -n server link add link s0 name s0.104 type vlan id 104
ip -n server addr add 10.12.8.50/22 dev s0.104
ip -n server link set s0.104 up
ip -n server route add default via 10.12.8.1

cat >/tmp/udp.py <<'EOF'
# recv PORT READY: bind, create READY, print the source of the first datagram
# (10 s limit); send HOST PORT: send for up to 10 s (the first may wait for ARP).
import socket, sys, time
if sys.argv[1] == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    open(sys.argv[3], "w").close()
    s.settimeout(10)
    try:
        print(s.recvfrom(64)[1][0])
    except socket.timeout:
        print("timeout")
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(40):
        s.sendto(b"hi", (sys.argv[2], int(sys.argv[3])))
        time.sleep(0.25)
EOF
seen_source() { # the source the server sees (a fresh port: a fresh conntrack entry)
    local port=$((5000 + RANDOM % 1000))
    rm -f /tmp/ready
    ip netns exec server python3 /tmp/udp.py recv "$port" /tmp/ready >/tmp/seen &
    local rpid=$!
    # Send only once the receiver is bound: on a loaded host, starting
    # python in a namespace can take seconds.
    vm_wait 20 test -e /tmp/ready
    ip netns exec client python3 /tmp/udp.py send 10.12.8.50 "$port" &
    local spid=$!
    wait "$rpid"
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    cat /tmp/seen
}

t_eq "without the exemption the server sees the gateway (masquerade)" 10.12.8.1 "$(seen_source)"

write_config 1
out=$(net-hook apply 1_provider 2>&1)
t_match "apply adds the exemption" 'exempt 10\.12\.4\.0/22 -> 10\.12\.8\.0/22 from masquerade \(iptables nat POSTROUTING, rule 1\)' "$out"
t_eq "with the exemption the server sees the client" 10.12.5.20 "$(seen_source)"
t_match "the RETURN sits ahead of libvirt's jump" '^-A POSTROUTING -s 10\.12\.4\.0/22 -d 10\.12\.8\.0/22 -m comment --comment "?net-hook:1_provider"? -j RETURN$' "$(iptables -t nat -S POSTROUTING | sed -n 2p)"
t_match "check: G4 passes with the exemption in place" '^PASS  G4 .*un-NAT exemption in place' "$(net-hook check 1_provider 2>&1)"
t_match "status shows it" 'unnat exemption: present' "$(net-hook status 2>&1)"
t_eq "a second apply changes nothing" "1_provider: nothing to do, every VLAN is as configured" "$(net-hook apply 1_provider 2>&1)"

vm_restart_libvirtd --apparmor
t_eq "after a libvirtd restart (libvirt re-adds its rules) the server still sees the client" 10.12.5.20 "$(seen_source)"
t_eq "exactly one net-hook rule" 1 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:1_provider')"

t_ok "net-destroy" vm_virsh net-destroy 1_provider
t_eq "stopped removed the exemption" 0 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:')"
t_ok "net-start" vm_virsh net-start 1_provider
t_eq "started added it again" 1 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:1_provider')"
t_match "started's outcome names the backend" 'unnat_backend = "iptables"' "$(cat /run/net-hook/networks/1_provider.toml)"

# A wipe (nft flush ruleset, restarting nftables) takes the exemption with
# it; reconcile puts it back.
iptables -t nat -D POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN
t_eq "the exemption is gone after the wipe" 0 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:')"
t_match "reconcile restores it" 'exempt 10\.12\.4\.0/22 -> 10\.12\.8\.0/22' "$(net-hook reconcile 2>&1)"
t_eq "exactly one rule after reconcile" 1 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:1_provider')"

t_ok "teardown" net-hook teardown 1_provider
t_eq "teardown removed the exemption" 0 "$(iptables -t nat -S POSTROUTING | grep -c 'net-hook:')"
t_check "no AppArmor denials" "$(vm_apparmor_denials)"
vm_summary
