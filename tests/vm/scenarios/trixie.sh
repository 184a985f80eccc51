#!/usr/bin/env bash
# net-hook on Debian 13 "trixie": libvirt 11.3 with the nftables firewall
# backend, binaries built on Debian 12. Runs inside the root that
# tests/vm/debian13-root builds, booted by tests/vm/run with NET_HOOK_VM_ROOT:
#
#   tests/vm/debian13-root &&
#   NET_HOOK_VM_ROOT=/var/cache/net-hook/trixie-root \
#       tests/vm/run tests/vm/scenarios/trixie.sh "$PWD/target/release"
#
#   trixie.sh BINDIR [REPO]    BINDIR holds net-hook and net-hook-virt;
#                              REPO (default: $NET_HOOK_REPO) has xml-templates/.
#
# How the repository reaches the guest: tests/vm/run mounts it read-only at
# its host path inside the root (vng --rodir REPO=REPO), exactly as the host
# root is shared in the default mode, so BINDIR, REPO, xml-templates/ and
# tests/vm/lib.sh need no copying; nothing is written into the cached root
# except those mount points (the guest's /etc, /var, /run, /usr are overlays).
#
# The libvirt daemon: the monolithic libvirtd (Debian 13 still ships it; its
# systemd units default to the modular daemons, but there is no systemd here)
# is started with lib.sh's vm_start_libvirtd (`libvirtd --daemon --timeout 0`),
# confined by Debian's usr.sbin.libvirtd AppArmor profile in enforce mode when
# that profile loads (reported as a skip otherwise). Without libvirtd the
# scenario falls back to `virtnetworkd --daemon` (+ virtqemud when present).
#
# Checks: the nftables backend is in use (table ip libvirt_network), the hook
# creates virbr1.104 (VLAN 104, 10.12.8.1/22, UP), the outcome record names
# unnat_backend = "nftables", table ip net_hook holds the identity snat rule,
# and real packets: a client on virbr1 (10.12.5.20) sends UDP to a server on
# VLAN 104 (10.12.8.50) through the gateway; the server sees 10.12.5.20 (and
# 10.12.8.1, libvirt's masquerade, with the exemption removed), also after a
# daemon restart. net-destroy removes virbr1.104 and the table; a start that
# another hook fails (libvirt 11.x then runs `stopped`) leaves nothing behind.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bindir=${1:?usage: trixie.sh BINDIR [REPO]}
repo=${2:-$NET_HOOK_REPO}
xml=$repo/xml-templates/1_provider.xml

# ---------------------------------------------------------------- the root

vm_note "kernel $(uname -r); Debian $(cat /etc/debian_version 2>/dev/null)"
t_match "the guest runs Debian 13" '^13(\.|$)' "$(cat /etc/debian_version 2>/dev/null)"
[[ -f $xml ]] || vm_bail "$xml not visible in the guest (is the repository mounted? run through tests/vm/run with NET_HOOK_VM_ROOT)"
t_match "/etc/libvirt/network.conf sets firewall_backend = \"nftables\"" '^firewall_backend = "nftables"' "$(cat /etc/libvirt/network.conf)"

# ---------------------------------------------------------------- install

vm_install_binaries --need-virt "$bindir"
t_match "net-hook (built on Debian 12) runs on Debian 13's glibc" '^net-hook [0-9]' "$(net-hook --version 2>&1)"
t_check "net-hook-virt finds every library it links (libvirt 11.3's libvirt.so.0)" "$(ldd /usr/bin/net-hook-virt 2>&1 | grep -E 'not found|version .* not found')"
vm_note "glibc $(ldd --version | head -n 1 | awk '{print $NF}')"

vm_write_config --unnat
t_ok "net-hook config check" net-hook config check
out=$(net-hook install 2>&1) || vm_bail "net-hook install failed: $out"
vm_note "net-hook install: $out"
t_eq "install links network.d/50-net-hook to /usr/bin/net-hook" /usr/bin/net-hook "$(readlink /etc/libvirt/hooks/network.d/50-net-hook)"

# ---------------------------------------------------------------- the daemon

daemon=''   # what runs the network driver, for the report
aa=''       # --apparmor when the profile loads
start_daemon() {
    if command -v libvirtd >/dev/null; then
        daemon="libvirtd $(libvirtd --version | awk '{print $NF}') (monolithic, libvirtd --daemon --timeout 0)"
        vm_start_libvirtd $aa
        return
    fi
    # Modular daemons only: virtnetworkd owns networks; virtqemud answers
    # qemu:///system (net-hook-virt's default URI) when installed.
    local d
    mkdir -p /var/log/libvirt /run/libvirt
    daemon="virtnetworkd --daemon (modular)"
    for d in virtnetworkd virtqemud; do
        command -v "$d" >/dev/null || continue
        "$d" --daemon --timeout 0 --pid-file "/run/$d.pid" || vm_bail "$d --daemon failed"
    done
    vm_wait 120 virsh -q -c network:///system net-list --all || vm_bail "virtnetworkd did not answer within 120 s"
}
stop_daemon() {
    local d pid
    if command -v libvirtd >/dev/null; then
        vm_stop_libvirtd
        return
    fi
    for d in virtqemud virtnetworkd; do
        pid=$(cat "/run/$d.pid" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null
        vm_wait 30 test ! -e "/proc/$pid" || kill -KILL "$pid" 2>/dev/null
        rm -f "/run/$d.pid"
    done
}
virsh_net() { timeout 120 virsh -q -c network:///system "$@"; }

if command -v libvirtd >/dev/null; then
    aa_log=$(mktemp)
    if vm_try_load_libvirtd_profile 2>"$aa_log"; then
        aa=--apparmor
        vm_note "AppArmor: $VM_APPARMOR_PROFILE loads (apparmor_parser $(apparmor_parser --version | head -n 1 | awk '{print $NF}'))"
    else
        vm_note "AppArmor: $VM_PROFILE_ERROR; libvirtd runs unconfined:"
        _t_diag <"$aa_log"
    fi
    rm -f "$aa_log"
fi
start_daemon
vm_note "daemon: $daemon"
if [[ $aa == --apparmor ]]; then
    t_eq "libvirtd is confined by the AppArmor profile in enforce mode" 'libvirtd (enforce)' "$(vm_apparmor_label "$(vm_libvirtd_pid)")"
else
    t_skip "libvirtd confined by AppArmor" "the profile did not load or there is no monolithic libvirtd"
fi

t_ok "net-define 1_provider" virsh_net net-define "$xml"
t0=$(vm_uptime)
t_ok "net-start 1_provider" virsh_net net-start 1_provider
vm_note "net-start took $(vm_since "$t0")s"
vm_link_exists virbr1.104 || {
    vm_note "libvirt log:"; tail -n 30 "$VM_LIBVIRTD_LOG" 2>/dev/null | _t_diag
    vm_note "outcome:"; cat /run/net-hook/networks/1_provider.toml 2>&1 | _t_diag
    vm_bail "the hook did not create virbr1.104"
}

# ---------------------------------------------------------------- state

t_ok "libvirt uses the nftables backend (table ip libvirt_network)" nft list table ip libvirt_network
t_check "libvirt added no iptables rules (no LIBVIRT_PRT chain)" "$(iptables -w -t nat -S 2>/dev/null | grep LIBVIRT)"
vm_check_gateway "after net-start"
record=$(cat /run/net-hook/networks/1_provider.toml 2>&1)
t_match "the outcome record says unnat_backend = \"nftables\"" '^unnat_backend = "nftables"$' "$record"
rule_re='ip saddr 10\.12\.4\.0/22 ip daddr 10\.12\.8\.0/22 snat ip prefix to ip saddr map \{ 10\.12\.4\.0/22 : 10\.12\.4\.0/22 \}'
nh_table() { nft list table ip net_hook 2>&1; }
t_match "table ip net_hook holds the identity snat rule" "$rule_re" "$(nh_table)"
t_match "its chain runs at priority srcnat - 1" 'type nat hook postrouting priority srcnat - 1;' "$(nh_table)"
t_match "status (net-hook-virt against libvirt 11.3) shows the exemption" 'unnat exemption: present' "$(net-hook status 2>&1)"

# ---------------------------------------------------------------- packets

vm_udp_peers

t_eq "with the exemption the server sees the client" 10.12.5.20 "$(vm_seen_source)"

# Control: without net-hook's table, libvirt's nftables masquerade applies;
# reconcile puts the table back.
nft delete table ip net_hook
t_eq "control: without net_hook's table the server sees the gateway (masquerade)" 10.12.8.1 "$(vm_seen_source)"
t_match "reconcile restores the exemption" 'exempt 10\.12\.4\.0/22 -> 10\.12\.8\.0/22' "$(net-hook reconcile 2>&1)"
t_match "table ip net_hook is back" "$rule_re" "$(nh_table)"
t_eq "after reconcile the server sees the client again" 10.12.5.20 "$(vm_seen_source)"

# The hook by hand with the live XML, as the README describes: a second
# `started` changes nothing. Timed, to tell the hook's share of a slow
# net-start (TCG) from libvirt's.
xmlnow=$(virsh_net net-dumpxml 1_provider)
t0=$(vm_uptime)
out=$(net-hook hook 1_provider started begin - <<<"$xmlnow" 2>&1)
rc=$?
vm_note "a manual 'started' hook run took $(vm_since "$t0")s"
t_eq "a second started (by hand, live XML) exits 0" 0 "$rc"
[[ $rc -eq 0 ]] || printf '%s\n' "$out" | _t_diag
t_eq "and leaves exactly one net-hook rule" 1 "$(nh_table | grep -c 'comment "net-hook:1_provider"')"

t0=$(vm_uptime)
stop_daemon
start_daemon
vm_note "daemon restart took $(vm_since "$t0")s"
t_ok "after the restart libvirt's nftables table is there" nft list table ip libvirt_network
t_eq "exactly one net-hook rule after the restart" 1 "$(nh_table | grep -c 'comment "net-hook:1_provider"')"
t_eq "after a daemon restart the server still sees the client" 10.12.5.20 "$(vm_seen_source)"

# ---------------------------------------------------------------- stop

vm_udp_peers_gone
t_ok "net-destroy 1_provider" virsh_net net-destroy 1_provider
t_ok "net-destroy removed virbr1.104" vm_wait_link_gone virbr1.104
t_fails "net-destroy removed table ip net_hook (stopped)" nft list table ip net_hook
# libvirt keeps its (then empty) base chains in table ip libvirt_network.
t_check "and libvirt removed its rules for 10.12.4.0/22" "$(nft list table ip libvirt_network 2>&1 | grep '10\.12\.4\.0/22')"
t_match "the outcome record is stopped's" 'op = "stopped"' "$(cat /run/net-hook/networks/1_provider.toml 2>&1)"

# A start that fails after net-hook's `started` ran: another network.d hook
# fails `started`; libvirt 11.x undoes the start and runs `stopped`, which
# must remove what net-hook added.
cat >/etc/libvirt/hooks/network.d/90-fail-started <<'EOF'
#!/bin/sh
cat >/dev/null
if [ "$2 $3" = "started begin" ]; then echo "90-fail-started: failing on purpose" >&2; exit 1; fi
exit 0
EOF
chmod 0755 /etc/libvirt/hooks/network.d/90-fail-started
out=$(virsh_net net-start 1_provider 2>&1)
rc=$?
t_eq "net-start fails when another hook fails started" 1 "$((rc != 0))"
t_match "libvirt reports the other hook's error" 'failing on purpose' "$out"
t_ok "after the failed start virbr1.104 is gone" vm_wait_link_gone virbr1.104
t_fails "after the failed start table ip net_hook is gone" nft list table ip net_hook
t_match "the outcome record is stopped's (libvirt ran stopped after the failed start)" 'op = "stopped"' "$(cat /run/net-hook/networks/1_provider.toml 2>&1)"
rm -f /etc/libvirt/hooks/network.d/90-fail-started

t_ok "net-start works again" virsh_net net-start 1_provider
t_ok "virbr1.104 is back" vm_link_exists virbr1.104
t_match "and the exemption" "$rule_re" "$(nh_table)"
t_ok "net-destroy" virsh_net net-destroy 1_provider
t_fails "net_hook table gone again" nft list table ip net_hook

if [[ $aa == --apparmor ]]; then
    t_check "no AppArmor denials" "$(vm_apparmor_denials)"
fi
stop_daemon
vm_summary
