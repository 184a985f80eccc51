#!/usr/bin/env bash
# Config in libvirt's own network definition, on a real libvirtd: Debian 12's
# 9.0 (the host root) or Debian 13's 11.3 (NET_HOOK_VM_ROOT, the root
# tests/vm/debian13-root builds).
#
#   tests/vm/run tests/vm/scenarios/metadata.sh DIR-WITH-net-hook-AND-net-hook-virt
#
# 1_provider is defined from xml-templates/1_provider-metadata.xml with no
# config file: net-start creates virbr1.104 = 10.12.8.1/22, net-destroy
# removes it; the file configuring it too is refused and nothing is half
# applied; with `virsh net-metadata` (libvirt >= 9.7) the address is changed
# in the live definition and `net-hook reconcile` follows it. A recording
# hook beside net-hook keeps what libvirt passed on stdin for start, started
# and stopped, in $NET_HOOK_VM_RESULTS/hookdata/ (the fixtures in
# tests/hookdata/libvirt-*/1_provider-metadata_* come from there: copy the
# start, started and stopped files of the first start).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bins=${1:?usage: metadata.sh DIR}
xml=$NET_HOOK_REPO/xml-templates/1_provider-metadata.xml
rec=/run/net-hook/networks/1_provider.toml
out=$NET_HOOK_VM_RESULTS/hookdata
mkdir -p "$out"
version=$(libvirtd --version | awk '{print $NF}')
vm_note "libvirtd $version"

vm_install_binaries --need-virt "$bins"
rm -f "$VM_CONFIG"
hook=$(mktemp)
{
    echo '#!/bin/sh'
    printf 'out=%q\n' "$out"
    # shellcheck disable=SC2016
    echo 'base=$out/$(printf %s-metadata_%s_%s "$1" "$2" "$3" | tr " /" "__")'
    # shellcheck disable=SC2016
    # The first call of each op is kept (the fixtures).
    # shellcheck disable=SC2016
    echo '[ -e "$base.xml" ] && exec cat >/dev/null; printf "%s\n" "$*" >"$base.argv"; cat >"$base.xml"'
} >"$hook"
vm_install_hook "$hook" 00-record
rm -f "$hook"
t_ok "net-hook install" net-hook install
if vm_try_load_libvirtd_profile 2>/dev/null; then
    vm_start_libvirtd --apparmor
else
    vm_note "AppArmor: $VM_PROFILE_ERROR; libvirtd runs unconfined"
    vm_start_libvirtd
fi
denials_before=$(vm_apparmor_denials | wc -l)

t_ok "net-define 1_provider from the metadata template" vm_virsh net-define "$xml"
t_ok "no config file exists" test ! -e "$VM_CONFIG"
t_ok "net-start 1_provider" vm_virsh net-start 1_provider
vm_check_gateway "config from <metadata>"
t_match "the outcome is ok" '^result = "ok"$' "$(cat "$rec" 2>&1)"
st=$(net-hook status --json 2>&1)
t_match "status says the config comes from metadata" '"config": "metadata"' "$st"
t_match "status: VLAN 104 ok" '"state": "ok"' "$st"
t_ok "status exits 0" net-hook status
t_ok "net-destroy 1_provider" vm_virsh net-destroy 1_provider
t_ok "virbr1.104 is gone" vm_link_absent virbr1.104
t_match "stopped recorded" '^op = "stopped"$' "$(cat "$rec" 2>&1)"
for op in start_begin started_begin stopped_end; do
    t_ok "libvirt passed the metadata on stdin to $op" \
        grep -q 'urn:net-hook:network:1' "$out/1_provider-metadata_$op.xml"
done

# Both the file and the metadata: refused, fail-soft, nothing half-applied.
vm_write_config
t_ok "net-start with the file configuring it too" vm_virsh net-start 1_provider
t_ok "no VLAN was created" vm_link_absent virbr1.104
r=$(cat "$rec" 2>&1)
t_match "the outcome is refused" '^result = "refused"$' "$r"
t_match "it names both places" 'configured both in /etc/net-hook/net-hook.toml and in its libvirt <metadata>' "$r"
t_match "status shows why" 'configured both' "$(net-hook status --json 2>&1)"
t_ok "net-destroy" vm_virsh net-destroy 1_provider
# `metadata = false`: only the file counts, and it configures the gateway.
sed -i '1i metadata = false' "$VM_CONFIG"
t_ok "net-start with metadata = false" vm_virsh net-start 1_provider
vm_check_gateway "metadata = false, config from the file"
t_ok "net-destroy" vm_virsh net-destroy 1_provider
rm -f "$VM_CONFIG"

if virsh help net-metadata >/dev/null 2>&1; then
    t_ok "net-start (metadata only again)" vm_virsh net-start 1_provider
    vm_check_gateway "before net-metadata"
    new='<net-hook><vlan id="104"><address>10.12.8.2/22</address></vlan></net-hook>'
    t_ok "virsh net-metadata changes the address (live and config)" \
        vm_virsh net-metadata 1_provider urn:net-hook:network:1 --key nh --set "$new" --live --config
    t_match "the live XML holds the new address" '10\.12\.8\.2/22' "$(vm_virsh net-dumpxml 1_provider)"
    t_match "status shows the drift" '"state": "drifted"' "$(net-hook status --json 2>&1)"
    t_ok "net-hook reconcile" net-hook reconcile
    d=$(ip -br addr show dev virbr1.104 2>&1)
    t_match "virbr1.104 now has 10.12.8.2/22" '10\.12\.8\.2/22' "$d"
    t_check "and no longer 10.12.8.1" "$(grep -o '10\.12\.8\.1/22' <<<"$d")"
    t_ok "status exits 0 after reconcile" net-hook status
    t_ok "net-destroy" vm_virsh net-destroy 1_provider
    t_ok "virbr1.104 is gone" vm_link_absent virbr1.104
else
    vm_note "libvirt $version has no virsh net-metadata (added in 9.7.0): the live change is checked on Debian 13"
fi
t_eq "no AppArmor denials" "$denials_before" "$(vm_apparmor_denials | wc -l)"
vm_summary
