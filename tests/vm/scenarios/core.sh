#!/usr/bin/env bash
# The core hook on a real Debian libvirtd confined by its AppArmor profile in
# enforce mode, with the hook installed by `net-hook install` from /usr/bin.
#
#   tests/vm/run tests/vm/scenarios/core.sh PATH-TO-BUILT-net-hook
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

src_bin=${1:?usage: core.sh PATH-TO-net-hook}
templates=$NET_HOOK_REPO/xml-templates
conf=/etc/net-hook/net-hook.toml
rec=/run/net-hook/networks

write_config() { # write_config STRICT
    mkdir -p /etc/net-hook
    cat >"$conf" <<EOF
[networks.1_provider]
strict = $1
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22"]

[networks."provider vip test"]
[[networks."provider vip test".vlans]]
id = 300
name = "vip300"
addresses = ["10.77.0.1/24", "fd00:77::1/64"]

[networks.nh-filter]
[[networks.nh-filter.vlans]]
id = 200
addresses = ["10.99.0.1/24"]
EOF
    chmod 0644 "$conf"
}

vm_install_binaries "$(dirname "$src_bin")"
write_config false

# Installed before the daemon starts, so libvirt sees it without a restart.
out=$(net-hook install 2>&1)
t_match "install links the hook to /usr/bin/net-hook" 'link /etc/libvirt/hooks/network\.d/50-net-hook -> /usr/bin/net-hook' "$out"
t_match "install says no daemon is running" 'no libvirt daemon is running' "$out"
t_match "install is idempotent" 'nothing to do' "$(net-hook install 2>&1)"
t_ok "config check passes" net-hook config check

vm_start_libvirtd --apparmor
denials_before=$(vm_apparmor_denials | wc -l)

vm_virsh net-define "$templates/1_provider.xml" >/dev/null || vm_bail "net-define 1_provider failed"
t_ok "net-start 1_provider" vm_virsh net-start 1_provider
vm_check_gateway "after net-start"
t_match "outcome recorded" 'result = "ok"' "$(cat "$rec/1_provider.toml" 2>&1)"

t_ok "net-destroy 1_provider" vm_virsh net-destroy 1_provider
t_ok "virbr1.104 is gone after net-destroy" vm_link_absent virbr1.104
t_match "stopped recorded" 'op = "stopped"' "$(cat "$rec/1_provider.toml" 2>&1)"

t_ok "net-start 1_provider again" vm_virsh net-start 1_provider
vm_check_gateway "after the second start"

vm_restart_libvirtd --apparmor
vm_check_gateway "after a libvirtd restart"

# A network net-hook does not manage: nothing is created, nothing recorded.
vm_virsh net-define "$templates/test/route.xml" >/dev/null
route_net=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$templates/test/route.xml" | head -n 1)
links_before=$(ip -br link | awk '{print $1}' | sort)
t_ok "net-start of an unmanaged network ($route_net)" vm_virsh net-start "$route_net"
new_links=$(comm -13 <(echo "$links_before") <(ip -br link | awk '{print $1}' | sort) | grep -v '^virbr' || true)
t_check "no VLAN for an unmanaged network" "$new_links"
t_ok "no outcome record for it" test ! -e "$rec/$route_net.toml"
vm_virsh net-destroy "$route_net" >/dev/null

# A network name with a space, two addresses (IPv4 + IPv6), an explicit name.
cat >/tmp/space.xml <<'EOF'
<network>
  <name>provider vip test</name>
  <forward mode='nat'/>
  <bridge name='virbr77' stp='on' delay='0'/>
  <ip address='10.76.0.1' prefix='24'/>
</network>
EOF
vm_virsh net-define /tmp/space.xml >/dev/null
t_ok "net-start 'provider vip test'" vm_virsh net-start "provider vip test"
d=$(ip -d addr show dev vip300 2>&1)
t_match "vip300 is VLAN 300 on virbr77" 'vip300@virbr77: .*vlan protocol 802\.1Q id 300 ' "$(tr '\n' ' ' <<<"$d")"
t_match "vip300 has its IPv4 address" 'inet 10\.77\.0\.1/24 ' "$d"
t_match "vip300 has its IPv6 address" 'inet6 fd00:77::1/64 ' "$d"
t_ok "net-destroy 'provider vip test'" vm_virsh net-destroy "provider vip test"
t_ok "vip300 is gone" vm_link_absent vip300

# vlan_filtering=1 (libvirt sets it for macTableManager='libvirt'): the VID
# must be in the bridge's own VLAN list, or tagged frames never reach the VLAN.
cat >/tmp/filter.xml <<'EOF'
<network>
  <name>nh-filter</name>
  <bridge name='virbr9' macTableManager='libvirt'/>
  <ip address='10.98.0.1' prefix='24'/>
</network>
EOF
vm_virsh net-define /tmp/filter.xml >/dev/null
t_ok "net-start nh-filter" vm_virsh net-start nh-filter
t_eq "virbr9 filters VLANs" 1 "$(cat /sys/class/net/virbr9/bridge/vlan_filtering 2>&1)"
t_match "VID 200 is in virbr9's own VLAN list" '\b200\b' "$(bridge vlan show dev virbr9 2>&1)"
t_ok "virbr9.200 exists" vm_link_exists virbr9.200
t_match "bridge VID recorded for teardown" 'vid = 200' "$(cat "$rec/nh-filter.toml" 2>&1)"
t_ok "net-destroy nh-filter" vm_virsh net-destroy nh-filter
t_ok "virbr9.200 is gone" vm_link_absent virbr9.200

# The phase-00 ordering trap: another bridge still holds 10.12.8.1/22.
vm_virsh net-destroy 1_provider >/dev/null
ip link add virbr2 type bridge
ip addr add 10.12.8.1/22 dev virbr2
ip link set virbr2 up
t_ok "fail-soft: 1_provider still starts despite the conflict" vm_virsh net-start 1_provider
t_ok "no VLAN carries the conflicting address" test -z "$(ip -br addr show dev virbr1.104 2>/dev/null | grep 10.12.8.1)"
r=$(cat "$rec/1_provider.toml" 2>&1)
t_match "the outcome is 'refused'" 'result = "refused"' "$r"
t_match "the outcome names the holder" 'holders = \["virbr2"\]' "$r"
t_eq "10.12.8.1 is still only on virbr2" "virbr2" "$(ip -br addr | awk '/10\.12\.8\.1\//{print $1}')"

# strict = true: libvirt fails the start with net-hook's one line, and since
# net-hook refuses in `start` (before the bridge exists) nothing leaks.
vm_virsh net-destroy 1_provider >/dev/null
write_config true
out=$(vm_virsh net-start 1_provider 2>&1)
rc=$?
vm_note "virsh said: $(tr '\n' ' ' <<<"$out")"
t_eq "strict: net-start fails" 1 "$((rc != 0))"
t_match "strict: the error is net-hook's message naming the holder" 'net-hook: network "1_provider": changed nothing: address 10\.12\.8\.1/22 conflicts with 10\.12\.8\.1/22 on virbr2' "$out"
t_ok "strict: no bridge leaked" vm_link_absent virbr1
ip link del virbr2
t_ok "strict: net-start works once the conflict is gone" vm_virsh net-start 1_provider
vm_check_gateway "strict, after the conflict is gone"

denials=$(vm_apparmor_denials | tail -n +"$((denials_before + 1))")
t_check "no AppArmor denials while libvirtd ran the hook" "$denials"
t_match "libvirtd is still confined (enforce)" '^libvirtd \(enforce\)$' "$(vm_apparmor_label "$(vm_libvirtd_pid)")"

out=$(net-hook uninstall 2>&1)
t_match "uninstall removes the entry" 'remove /etc/libvirt/hooks/network\.d/50-net-hook' "$out"
t_ok "the entry is gone" test ! -e /etc/libvirt/hooks/network.d/50-net-hook

vm_summary
