#!/usr/bin/env bash
# Record real qemu hook input (argv and stdin) from libvirtd for the domain in
# xml-templates/routed-demo.xml, in both tap modes, into
# $NET_HOOK_VM_RESULTS/qemu-hookdata/ as <domain>_<op>_<subop>[_<mode>].argv|.xml:
# libvirt-created tap ("managed"), and a tap made beforehand with
# <target managed='no'/> ("precreated"). Each domain is defined, started
# paused, carried across a daemon restart (reconnect), destroyed, undefined.
#
#   tests/vm/run tests/vm/scenarios/record-qemu-hookdata.sh                 # libvirt 9.0
#   NET_HOOK_VM_ROOT=/var/cache/net-hook/trixie-root \
#       tests/vm/run tests/vm/scenarios/record-qemu-hookdata.sh            # 11.3
#
# To refresh the fixtures, on the host:
#   cp target/vm/record-qemu-hookdata.XXXXXX/qemu-hookdata/* tests/hookdata/qemu-<version>/
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

out=$NET_HOOK_VM_RESULTS/qemu-hookdata
calls=$NET_HOOK_VM_RESULTS/qemu-hook-calls.log
xml=$NET_HOOK_REPO/xml-templates/routed-demo.xml
mkdir -p "$out"
: >"$calls"
mode_file=$out/.mode
echo managed >"$mode_file"
vm_note "libvirtd $(libvirtd --version | awk '{print $NF}'), $(qemu-system-x86_64 --version | head -n 1)"

hook=$(mktemp)
{
    echo '#!/bin/sh'
    printf 'out=%q\ncalls=%q\nmode_file=%q\n' "$out" "$calls" "$mode_file"
    cat <<'HOOK'
base=$(printf '%s_%s_%s_%s' "$1" "$2" "$3" "$(cat "$mode_file")" | tr ' /' '__')
printf '%s\n' "$*" >"$out/$base.argv"
cat >"$out/$base.xml"
printf '%s | taps: %s\n' "$*" "$(ls /sys/class/net | grep '^tap' | tr '\n' ' ')" >>"$calls"
HOOK
} >"$hook"
mkdir -p /etc/libvirt/hooks/qemu.d
install -m 0755 "$hook" /etc/libvirt/hooks/qemu.d/00-record
rm -f "$hook"

modprobe tun 2>/dev/null
t_ok "/dev/net/tun exists" test -c /dev/net/tun
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /run/libvirt
virtlogd --daemon || vm_bail "virtlogd --daemon failed"
if vm_try_load_libvirtd_profile 2>/dev/null; then
    vm_start_libvirtd --apparmor
else
    vm_note "AppArmor: $VM_PROFILE_ERROR; libvirtd runs unconfined"
    vm_start_libvirtd
fi

# run_domain XML MODE: the life of one domain, recorded as MODE.
run_domain() {
    local x=$1 mode=$2
    echo "$mode" >"$mode_file"
    t_ok "$mode: define" vm_virsh define "$x"
    if ! vm_virsh start --paused routed-demo >"$NET_HOOK_VM_RESULTS/start-$mode.log" 2>&1; then
        t_ok "$mode: start --paused" false
        _t_diag <"$NET_HOOK_VM_RESULTS/start-$mode.log"
        tail -n 20 /var/log/libvirt/qemu/routed-demo.log 2>/dev/null | _t_diag
        vm_virsh undefine routed-demo >/dev/null 2>&1
        return
    fi
    t_ok "$mode: start --paused" true
    t_ok "$mode: tap-routed-demo exists while it runs" vm_link_exists tap-routed-demo
    t_match "$mode: the domain is paused" 'paused' "$(vm_virsh domstate routed-demo)"
    vm_restart_libvirtd "$aa"
    t_match "$mode: still running after a daemon restart (reconnect)" 'paused' "$(vm_virsh domstate routed-demo)"
    t_ok "$mode: destroy" vm_virsh destroy routed-demo
    t_ok "$mode: undefine" vm_virsh undefine routed-demo
    for op in prepare_begin start_begin started_begin reconnect_begin stopped_end release_end; do
        t_ok "$mode: $op recorded" test -s "$out/routed-demo_${op}_${mode}.xml"
    done
}
aa=''
[[ $(vm_apparmor_label "$(vm_libvirtd_pid)" 2>/dev/null) == 'libvirtd (enforce)' ]] && aa=--apparmor
run_domain "$xml" managed
t_ok "managed: libvirt deleted its tap" vm_link_absent tap-routed-demo

# managed='no': the tap must exist first (as net-hook will create it).
ip tuntap add dev tap-routed-demo mode tap vnet_hdr || vm_bail "ip tuntap add failed"
pre=$(mktemp --suffix=.xml)
sed "s|<target dev='tap-routed-demo'/>|<target dev='tap-routed-demo' managed='no'/>|" "$xml" >"$pre"
grep -q "managed='no'" "$pre" || vm_bail "could not make the managed='no' variant"
run_domain "$pre" precreated
t_ok "precreated: libvirt left the tap alone" vm_link_exists tap-routed-demo
ip tuntap del dev tap-routed-demo mode tap
rm -f "$mode_file" "$pre"
vm_note "calls:"
_t_diag <"$calls"
vm_summary
