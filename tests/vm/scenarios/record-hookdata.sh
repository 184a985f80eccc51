#!/usr/bin/env bash
# Record real network hook input (argv and stdin) from Debian 12's libvirtd 9.0
# for the networks in xml-templates/, into $NET_HOOK_VM_RESULTS/hookdata/ as
# <name with spaces as _>_<op>_<subop>.argv|.xml.
#
#   tests/vm/run tests/vm/scenarios/record-hookdata.sh
#
# The repo is read-only inside the VM. To refresh the fixtures, on the host:
#   cp -n target/vm/record-hookdata.XXXXXX/hookdata/* tests/hookdata/libvirt-9.0/
# (-n keeps the existing 1_provider files, which the checks below compare with.)
#
# libvirtd runs without AppArmor here: the profile would still let the hook
# write, but the recording must not depend on confinement details.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

out=$NET_HOOK_VM_RESULTS/hookdata
calls=$NET_HOOK_VM_RESULTS/hook-calls.log
templates=$NET_HOOK_REPO/xml-templates
fixtures=$NET_HOOK_REPO/tests/hookdata/libvirt-9.0
mkdir -p "$out"
: >"$calls"

# The recording hook. The .argv file holds the four arguments joined by single
# spaces, like the recordings in tests/hookdata (a name may contain spaces, the
# op and sub-op never do). stdin is copied byte for byte (libvirt sends no
# trailing newline). hook-calls.log keeps the call order and which network
# devices existed at each call.
hook=$(mktemp)
{
    echo '#!/bin/sh'
    printf 'out=%q\ncalls=%q\n' "$out" "$calls"
    cat <<'EOF'
base=$(printf '%s_%s_%s' "$1" "$2" "$3" | tr ' /' '__')
printf '%s\n' "$*" >"$out/$base.argv"
cat >"$out/$base.xml"
printf '%s | devices: %s\n' "$*" "$(ls /sys/class/net | tr '\n' ' ')" >>"$calls"
EOF
} >"$hook"
# Before libvirtd starts: it only looks for hooks once, at daemon start.
vm_install_hook "$hook" 00-record
rm -f "$hook"

# forward mode='bridge' attaches to an existing bridge; libvirt never creates it.
ip link add nhbr0 type bridge
ip link set nhbr0 up

vm_start_libvirtd

# t_recorded NAME OP SUBOP: the hook saw exactly "NAME OP SUBOP -" and the
# network's XML inside <hookData>.
t_recorded() {
    local name=$1 op=$2 sub=$3 f
    f=$out/${name// /_}_${op}_${sub}
    t_eq "$name: $op/$sub argv" "$name $op $sub -" "$(cat "$f.argv" 2>/dev/null)"
    t_ok "$name: $op/$sub stdin is <hookData> with <name>$name</name>" \
        grep -qzE "^<hookData>.*<name>$name</name>.*</hookData>$" "$f.xml"
}

# record_network TEMPLATE NAME: define, start, destroy, undefine.
record_network() {
    local xml=$1 name=$2
    t_ok "$name: net-define" vm_virsh net-define "$xml"
    t_ok "$name: net-start" vm_virsh net-start "$name"
    t_ok "$name: net-destroy" vm_virsh net-destroy "$name"
    t_ok "$name: net-undefine" vm_virsh net-undefine "$name"
    t_recorded "$name" start begin
    t_recorded "$name" started begin
    t_recorded "$name" stopped end
}

# --- 1_provider, the real target: also updated, port-created, port-deleted.
name=1_provider
t_ok "$name: net-define" vm_virsh net-define "$templates/1_provider.xml"
t_ok "$name: net-start" vm_virsh net-start "$name"
t_ok "$name: net-update add dhcp host" vm_virsh net-update "$name" add ip-dhcp-host \
    "<host mac='52:54:00:00:00:01' ip='10.12.4.50'/>" --live --config
# A port without a domain: what a VM's <interface type='network'> plug does.
port_xml=$(mktemp)
cat >"$port_xml" <<'EOF'
<networkport>
  <uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>
  <owner>
    <name>vm1</name>
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  </owner>
  <mac address='52:54:00:7b:35:93'/>
</networkport>
EOF
t_ok "$name: net-port-create" vm_virsh net-port-create "$name" "$port_xml"
t_ok "$name: net-port-delete" vm_virsh net-port-delete "$name" 5d744f21-ba4a-4d6e-bdb2-30a35ff3207d
rm -f "$port_xml"
t_ok "$name: net-destroy" vm_virsh net-destroy "$name"
t_ok "$name: net-undefine" vm_virsh net-undefine "$name"
for opsub in "start begin" "started begin" "updated begin" \
    "port-created begin" "port-deleted begin" "stopped end"; do
    # shellcheck disable=SC2086 # split "op subop"
    t_recorded "$name" $opsub
done

# The stored 1_provider recordings came from another run of the same libvirt:
# apart from generated uuids and macs they must be what this template yields.
normalize() { sed -E 's#<uuid>[^<]*</uuid>#<uuid/>#; s#<mac address=[^/]*/>#<mac/>#' "$1"; }
for base in 1_provider_start_begin 1_provider_started_begin \
    1_provider_updated_begin 1_provider_stopped_end; do
    if [[ -f $fixtures/$base.xml ]]; then
        t_check "$base.xml equals tests/hookdata/libvirt-9.0 (uuid, mac aside)" \
            "$(diff <(normalize "$fixtures/$base.xml") <(normalize "$out/$base.xml") || true)"
    else
        t_skip "$base.xml equals tests/hookdata/libvirt-9.0" "no stored fixture"
    fi
done

# --- the other network shapes.
record_network "$templates/test/route.xml" test-route
record_network "$templates/test/open.xml" test-open
record_network "$templates/test/isolated.xml" test-isolated
record_network "$templates/test/bridge.xml" test-bridge
record_network "$templates/test/nat-ipv6.xml" test-nat6
record_network "$templates/test/space-name.xml" "provider vip test"
record_network "$templates/test/metadata.xml" test-metadata

t_ok "test-nat6: <nat ipv6='yes'/> kept" grep -q "<nat ipv6='yes'" "$out/test-nat6_started_begin.xml"
# libvirt re-serializes <metadata> with double quotes.
t_ok "test-metadata: foreign metadata passed to the hook" \
    grep -qE "<app:vlan id=['\"]104['\"]" "$out/test-metadata_started_begin.xml"
t_ok "test-metadata: dnsmasq:options passed to the hook" \
    grep -q "<dnsmasq:option value='dhcp-authoritative'/>" "$out/test-metadata_started_begin.xml"

vm_stop_libvirtd
vm_note "hook calls in order:"
sed 's/^/#   /' "$calls"
vm_note "$(find "$out" -type f | wc -l) files in $out"
vm_summary
