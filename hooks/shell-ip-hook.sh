#!/bin/sh
# Baseline for scripts/bench, not part of net-hook: the runbook's way to give a
# libvirt bridge its tagged VLAN gateways, written as a typical network hook.
# It greps its config and exits for networks it does not know (the common
# case), and on `started` runs `ip link add` / `ip addr add` / `ip link set up`
# per VLAN; on `stopped` it deletes them ("no such device" is fine: the kernel
# removes VLANs together with their bridge).
#
# Config /etc/net-hook/vlans.conf, one VLAN a line: NETWORK VID ADDRESS...
# (no spaces in network names; '#' starts a comment line).
set -eu

conf=/etc/net-hook/vlans.conf
net=$1 op=$2

case $op in
    started | stopped) ;;
    *) exit 0 ;;
esac
grep -q "^${net}[[:space:]]" "$conf" 2>/dev/null || exit 0

# The bridge libvirt made for this network, from the network XML on stdin.
bridge=$(sed -n "/<bridge /{s/.*name='\([^']*\)'.*/\1/p;q}")
[ -n "$bridge" ] || { echo "shell-ip-hook: no <bridge name=...> in the XML" >&2; exit 1; }

grep "^${net}[[:space:]]" "$conf" | while read -r _ vid addrs; do
    dev=$bridge.$vid
    if [ "$op" = started ]; then
        ip link add link "$bridge" name "$dev" type vlan id "$vid"
        for a in $addrs; do
            ip addr add "$a" dev "$dev"
        done
        ip link set "$dev" up
    else
        ip link del "$dev" 2>/dev/null || true
    fi
done
