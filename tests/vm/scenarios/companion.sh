#!/usr/bin/env bash
# The companion commands (check, status, apply, teardown, reconcile) against
# the real libvirtd, confined by its AppArmor profile.
#
#   tests/vm/run tests/vm/scenarios/companion.sh DIR-WITH-net-hook-AND-net-hook-virt
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bindir=${1:?usage: companion.sh DIR-WITH-BINARIES}
vm_install_binaries --need-virt "$bindir"
vm_write_config
net-hook install >/dev/null || vm_bail "net-hook install failed"
vm_start_libvirtd --apparmor
vm_virsh net-define "$NET_HOOK_REPO/xml-templates/1_provider.xml" >/dev/null || vm_bail "net-define failed"
vm_virsh net-autostart 1_provider >/dev/null
vm_virsh net-start 1_provider >/dev/null || vm_bail "net-start failed"

# A correctly prepared 1_provider: no FAIL (NAT is a WARN: masquerade note).
out=$(net-hook check 1_provider 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "check passes on a prepared 1_provider" 0 "$rc"
t_match "check: G1 vlan_filtering=0" '^PASS  G1 .*vlan_filtering=0' "$out"
t_match "check: G3 virbr1 is a bridge, up" '^PASS  G3 .*virbr1 is a Linux bridge, up' "$out"
t_match "check: G4 NAT masquerade note" '^WARN  G4 .*forward mode nat' "$out"
t_match "check: G6 the VLAN is owned and as configured" '^PASS  G6 .*virbr1\.104\) is present, owned by net-hook' "$out"
t_match "check: the hook is installed and libvirt runs it" '^PASS  HOOK .*libvirtd started after a network hook existed' "$out"
t_eq "check --json says pass or warn" warn "$(net-hook check --json 1_provider | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')"

vm_virsh net-autostart --disable 1_provider >/dev/null
out=$(net-hook check 1_provider 2>&1)
rc=$?
t_eq "autostart off: check fails" 1 "$rc"
t_match "autostart off: G4 says how to fix it" '^FAIL  G4 .*virsh net-autostart 1_provider' "$out"
vm_virsh net-autostart 1_provider >/dev/null

# Another bridge holding the gateway address: G6 fails naming it.
vm_virsh net-destroy 1_provider >/dev/null
ip link add virbr2 type bridge && ip addr add 10.12.8.1/22 dev virbr2 && ip link set virbr2 up
vm_virsh net-start 1_provider >/dev/null
out=$(net-hook check 1_provider 2>&1)
rc=$?
t_eq "conflict: check fails" 1 "$rc"
t_match "conflict: G6 names virbr2" '^FAIL  G6 .*conflicts with 10\.12\.8\.1/22 on virbr2' "$out"
ip link del virbr2

# apply on the running network (the hook refused during the conflict).
t_ok "apply: no VLAN before" vm_link_absent virbr1.104
out=$(net-hook apply 1_provider 2>&1)
t_match "apply creates the VLAN" 'create virbr1\.104 \(VLAN 104 on virbr1\)' "$out"
t_match "apply: 10.12.8.1/22 on virbr1.104" 'inet 10\.12\.8\.1/22' "$(ip addr show dev virbr1.104 2>&1)"
t_eq "a second apply changes nothing" "1_provider: nothing to do, every VLAN is as configured" "$(net-hook apply 1_provider 2>&1)"
t_ok "status: everything as configured" net-hook status

# teardown removes only what net-hook owns.
ip link add link virbr1 name virbr1.105 type vlan id 105
t_ok "teardown" net-hook teardown 1_provider
t_ok "teardown removed virbr1.104" vm_link_absent virbr1.104
t_ok "teardown left the foreign virbr1.105" vm_link_exists virbr1.105
ip link del virbr1.105

# reconcile after someone deleted the VLAN by hand.
net-hook apply 1_provider >/dev/null
ip link del virbr1.104
out=$(net-hook reconcile 2>&1)
t_match "reconcile reports what it did" '^1_provider: create virbr1\.104' "$out"
t_ok "reconcile brought virbr1.104 back" vm_link_exists virbr1.104

# status reports drift after an address is removed by hand.
ip addr del 10.12.8.1/22 dev virbr1.104
out=$(net-hook status 2>&1)
rc=$?
t_eq "status: drift exits 1" 1 "$rc"
t_match "status: shows the drift and the fix" 'drifted.*|add 10\.12\.8\.1/22 to virbr1\.104' "$out"
state=$(net-hook status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["vlans"][0]["state"])')
t_eq "status --json: vlan state drifted" drifted "$state"
net-hook reconcile >/dev/null
t_ok "status after reconcile: as configured" net-hook status

t_check "no AppArmor denials" "$(vm_apparmor_denials)"
vm_summary
