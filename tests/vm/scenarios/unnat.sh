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
vm_install_binaries --need-virt "$bindir"
vm_write_config
net-hook install >/dev/null || vm_bail "net-hook install failed"
vm_start_libvirtd --apparmor
vm_virsh net-define "$NET_HOOK_REPO/xml-templates/1_provider.xml" >/dev/null || vm_bail "net-define failed"
vm_virsh net-start 1_provider >/dev/null || vm_bail "net-start failed"
vm_link_exists virbr1.104 || vm_bail "the hook did not create virbr1.104"
vm_udp_peers

t_eq "without the exemption the server sees the gateway (masquerade)" 10.12.8.1 "$(vm_seen_source)"

vm_write_config --unnat
out=$(net-hook apply 1_provider 2>&1)
t_match "apply adds the exemption" 'exempt 10\.12\.4\.0/22 -> 10\.12\.8\.0/22 from masquerade \(iptables nat POSTROUTING, rule 1\)' "$out"
t_eq "with the exemption the server sees the client" 10.12.5.20 "$(vm_seen_source)"
t_match "the RETURN sits ahead of libvirt's jump" '^-A POSTROUTING -s 10\.12\.4\.0/22 -d 10\.12\.8\.0/22 -m comment --comment "?net-hook:1_provider"? -j RETURN$' "$(iptables -t nat -S POSTROUTING | sed -n 2p)"
t_match "check: G4 passes with the exemption in place" '^PASS  G4 .*un-NAT exemption in place' "$(net-hook check 1_provider 2>&1)"
t_match "status shows it" 'unnat exemption: present' "$(net-hook status 2>&1)"
t_eq "a second apply changes nothing" "1_provider: nothing to do, every VLAN is as configured" "$(net-hook apply 1_provider 2>&1)"

vm_restart_libvirtd --apparmor
t_eq "after a libvirtd restart (libvirt re-adds its rules) the server still sees the client" 10.12.5.20 "$(vm_seen_source)"
t_eq "exactly one net-hook rule" 1 "$(vm_exemption_rules)"

t_ok "net-destroy" vm_virsh net-destroy 1_provider
t_eq "stopped removed the exemption" 0 "$(vm_exemption_rules net-hook:)"
t_ok "net-start" vm_virsh net-start 1_provider
t_eq "started added it again" 1 "$(vm_exemption_rules)"
t_match "started's outcome names the backend" 'unnat_backend = "iptables"' "$(cat /run/net-hook/networks/1_provider.toml)"

# A wipe (nft flush ruleset, restarting nftables) takes the exemption with
# it; reconcile puts it back.
iptables -t nat -D POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN
t_eq "the exemption is gone after the wipe" 0 "$(vm_exemption_rules net-hook:)"
t_match "reconcile restores it" 'exempt 10\.12\.4\.0/22 -> 10\.12\.8\.0/22' "$(net-hook reconcile 2>&1)"
t_eq "exactly one rule after reconcile" 1 "$(vm_exemption_rules)"

t_ok "teardown" net-hook teardown 1_provider
t_eq "teardown removed the exemption" 0 "$(vm_exemption_rules net-hook:)"
t_check "no AppArmor denials" "$(vm_apparmor_denials)"
vm_summary
