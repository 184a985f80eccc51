#!/usr/bin/env bash
# The Debian package on the real Debian libvirtd, confined by its AppArmor
# profile in enforce mode: install without libvirt, install next to a running
# libvirtd, configure 1_provider, restart, net-start (the packaged hook brings
# the gateway up), the reconcile unit (verified; its ExecStart run by hand:
# no systemd as PID 1 here), upgrade to N+1, remove, purge.
#
#   scripts/build-deb                      # version N (Cargo.toml's)
#   scripts/build-deb --version N+1        # e.g. 0.1.0+1
#   tests/vm/run tests/vm/scenarios/package.sh DEB-N DEB-N+1
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

deb1=${1:?usage: package.sh DEB-VERSION-N DEB-VERSION-N+1}
deb2=${2:?usage: package.sh DEB-VERSION-N DEB-VERSION-N+1}
[[ -f $deb1 && -f $deb2 ]] || vm_bail "no such .deb: $deb1 / $deb2"

templates=$NET_HOOK_REPO/xml-templates
conf=/etc/net-hook/net-hook.toml
entry=/etc/libvirt/hooks/network.d/50-net-hook
qentry=/etc/libvirt/hooks/qemu.d/50-net-hook
unit=/lib/systemd/system/net-hook-reconcile.service
fwunit=/lib/systemd/system/net-hook-firewalld-reload.service
v1=$(dpkg-deb -f "$deb1" Version)
v2=$(dpkg-deb -f "$deb2" Version)
vm_note "packages: $v1 ($deb1), $v2 ($deb2)"
dpkg --compare-versions "$v2" gt "$v1" || vm_bail "$v2 is not newer than $v1"

export DEBIAN_FRONTEND=noninteractive
# man-db's trigger rebuilds its whole index: minutes under TCG, and beside
# the point here (/var is an overlay: the host is not affected).
rm -f /var/lib/man-db/auto-update

# pkg_run NAME VAR CMD...: run a dpkg command, store its output in VAR, and
# record "NAME succeeds".
pkg_run() {
    local _name=$1 _var=$2 _out _rc=0
    shift 2
    _out=$("$@" 2>&1) || _rc=$?
    printf '%s\n' "$_out" | grep -i 'net-hook' | _t_diag
    t_eq "$_name succeeds" 0 "$_rc"
    printf -v "$_var" '%s' "$_out"
}

pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}${Version}' net-hook 2>/dev/null; }

out=""
modprobe 8021q || vm_bail "modprobe 8021q failed"
[[ ! -e /usr/bin/net-hook ]] || vm_bail "/usr/bin/net-hook exists before the package is installed"

# ------------------------------------------------ 1. a machine without libvirt
vm_note "phase 1: no libvirt daemon installed"
hidden=()
for d in /usr/sbin/libvirtd /usr/sbin/virtnetworkd; do
    if [[ -e $d ]]; then mv "$d" "$d.hidden" && hidden+=("$d"); fi
done
pkg_run "no libvirt: dpkg -i $v1" out dpkg -i "$deb1"
t_match "no libvirt: postinst says the hook is used once libvirt is installed" \
    'will be used once libvirt is installed' "$out"
t_eq "no libvirt: the hook entry links to /usr/bin/net-hook" /usr/bin/net-hook "$(readlink "$entry" 2>&1)"
t_eq "no libvirt: installed" "ii $v1" "$(pkg_status)"
printf '\n[networks.1_provider]\n[[networks.1_provider.vlans]]\nid = 104\naddresses = ["10.12.8.1/22"]\n' >>"$conf"
sum=$(sha256sum "$conf")
pkg_run "no libvirt: dpkg -r" out dpkg -r net-hook
t_ok "remove: the hook entry is gone" test ! -e "$entry" -a ! -L "$entry"
t_eq "remove: the edited config is kept" "$sum" "$(sha256sum "$conf" 2>&1)"
t_eq "remove: state config-files" "rc $v1" "$(pkg_status)"
pkg_run "no libvirt: dpkg --purge" out dpkg --purge net-hook
t_ok "purge: /etc/net-hook is gone" test ! -e /etc/net-hook
for d in "${hidden[@]}"; do mv "$d.hidden" "$d"; done

# ------------------------------------------------ 2. a foreign entry is never clobbered
vm_note "phase 2: a foreign 50-net-hook"
mkdir -p "${entry%/*}"
printf '#!/bin/sh\n# not net-hook\nexit 0\n' >"$entry"
chmod 0755 "$entry"
foreign=$(sha256sum "$entry")
pkg_run "foreign entry: dpkg -i $v1" out dpkg -i "$deb1"
t_match "foreign entry: postinst says it left it alone" 'did not create|NOT installed' "$out"
t_eq "foreign entry: untouched by install" "$foreign" "$(sha256sum "$entry" 2>&1)"
pkg_run "foreign entry: dpkg --purge" out dpkg --purge net-hook
t_eq "foreign entry: untouched by purge" "$foreign" "$(sha256sum "$entry" 2>&1)"
rm -f "$entry"

# ------------------------------------------------ 3. install next to a running libvirtd
vm_note "phase 3: install while libvirtd runs (AppArmor enforcing)"
vm_start_libvirtd --apparmor
denials_before=$(vm_apparmor_denials | wc -l)
pkg_run "dpkg -i $v1" out dpkg -i "$deb1"
t_match "postinst links the hook" "link $entry -> /usr/bin/net-hook" "$out"
t_match "postinst says, in one sentence, that libvirtd must be restarted" \
    'net-hook: libvirtd is running .*: run `systemctl restart libvirtd`' "$out"
t_eq "the hook entry links to /usr/bin/net-hook" /usr/bin/net-hook "$(readlink "$entry" 2>&1)"
t_eq "the qemu hook entry (routed interfaces) links to /usr/bin/net-hook" /usr/bin/net-hook "$(readlink "$qentry" 2>&1)"
t_ok "net-hook-virt in /usr/libexec/net-hook" test -x /usr/libexec/net-hook/net-hook-virt
t_match "the config is a conffile" '^ /etc/net-hook/net-hook\.toml [0-9a-f]{32}$' \
    "$(dpkg-query -W -f='${Conffiles}\n' net-hook)"
t_eq "the config is root:root 0644" "root:root 644" "$(stat -c '%U:%G %a' "$conf")"
t_match "the shipped config configures nothing" 'valid, 0 network' "$(net-hook config check 2>&1)"
missing=""
for f in /usr/share/man/man1/net-hook.1.gz /usr/share/man/man1/net-hook-reconcile.1.gz \
    /usr/share/man/man1/net-hook-teardown.1.gz /usr/share/man/man1/net-hook-config-check.1.gz \
    /usr/share/man/man1/net-hook-config-export.1.gz \
    /usr/share/bash-completion/completions/net-hook /usr/share/zsh/vendor-completions/_net-hook \
    /usr/share/fish/vendor_completions.d/net-hook.fish /usr/share/doc/net-hook/copyright \
    /usr/share/doc/net-hook/README.md.gz /usr/share/doc/net-hook/README.Debian.gz "$unit" "$fwunit" \
    /usr/share/man/man1/net-hook-firewalld-reload.1.gz; do
    [[ -e $f ]] || missing+="$f "
done
ls /usr/share/doc/net-hook/changelog*.gz >/dev/null 2>&1 || missing+="changelog "
t_check "man pages, completions, docs and the units are installed" "$missing"
t_eq "one man page per command and subcommand (routed and routed xml added)" 15 "$(ls /usr/share/man/man1/net-hook*.1.gz | wc -l)"

# systemd is not PID 1 in the VM: verify the unit statically.
out=$(systemd-analyze verify "$unit" 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "systemd-analyze verify net-hook-reconcile.service" 0 "$rc"
t_check "systemd-analyze verify: no complaints about the unit" "$(grep -i 'net-hook' <<<"$out")"
t_ok "enabled: wanted by libvirtd.service" test -L /etc/systemd/system/libvirtd.service.wants/net-hook-reconcile.service
t_ok "enabled: wanted by nftables.service" test -L /etc/systemd/system/nftables.service.wants/net-hook-reconcile.service
out=$(systemd-analyze verify "$fwunit" 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "systemd-analyze verify net-hook-firewalld-reload.service" 0 "$rc"
t_check "systemd-analyze verify: no complaints about the firewalld unit" "$(grep -i 'net-hook' <<<"$out")"
t_ok "enabled: the firewalld listener is wanted by firewalld.service" \
    test -L /etc/systemd/system/firewalld.service.wants/net-hook-firewalld-reload.service

# Configure 1_provider: edit the one file, as an admin would.
cat >>"$conf" <<'EOF'

[networks.1_provider]
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22"]

[networks.1_provider.unnat]
destinations = ["10.12.8.0/22"]
EOF
t_ok "config check on the edited config" net-hook config check
vm_restart_libvirtd --apparmor
vm_virsh net-define "$templates/1_provider.xml" >/dev/null || vm_bail "net-define 1_provider failed"
t_ok "net-start 1_provider" vm_virsh net-start 1_provider
vm_check_gateway "packaged hook, after net-start"
t_eq "the NAT exemption is in place" 1 "$(vm_exemption_rules)"
t_match "outcome recorded by the hook" 'result = "ok"' "$(cat /run/net-hook/networks/1_provider.toml 2>&1)"

# ------------------------------------------------ 4. the reconcile unit, by hand
execstart=$(sed -n 's/^ExecStart=//p' "$unit")
t_eq "the unit runs net-hook reconcile" "/usr/bin/net-hook reconcile" "$execstart"
ip link del virbr1.104
rulenum=$(iptables -w -t nat -L POSTROUTING -n --line-numbers | awk '/net-hook:1_provider/ { print $1; exit }')
[[ -n $rulenum ]] && iptables -w -t nat -D POSTROUTING "$rulenum"
t_ok "VLAN deleted by hand" vm_link_absent virbr1.104
t_eq "exemption deleted by hand" 0 "$(vm_exemption_rules)"
out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $execstart 2>&1)
rc=$?
printf '%s\n' "$out" | _t_diag
t_eq "the unit's ExecStart exits 0" 0 "$rc"
vm_check_gateway "after the unit's ExecStart"
t_eq "the unit's ExecStart restored the exemption" 1 "$(vm_exemption_rules)"

# ------------------------------------------------ 5. upgrade N -> N+1
ifindex=$(cat /sys/class/net/virbr1.104/ifindex)
sum=$(sha256sum "$conf")
pkg_run "upgrade: dpkg -i $v2" out dpkg -i "$deb2"
t_eq "upgrade: installed" "ii $v2" "$(pkg_status)"
t_eq "upgrade: the gateway was not touched (same ifindex)" "$ifindex" "$(cat /sys/class/net/virbr1.104/ifindex 2>&1)"
vm_check_gateway "after the upgrade"
t_eq "upgrade: the exemption is still there, once" 1 "$(vm_exemption_rules)"
t_eq "upgrade: the edited config is untouched" "$sum" "$(sha256sum "$conf" 2>&1)"
t_check "upgrade: no .dpkg-* files next to the config" "$(ls /etc/net-hook | grep -v '^net-hook\.toml$')"
t_eq "upgrade: the hook entry is unchanged" /usr/bin/net-hook "$(readlink "$entry" 2>&1)"
t_ok "upgrade: net-destroy" vm_virsh net-destroy 1_provider
t_ok "upgrade: net-start" vm_virsh net-start 1_provider
vm_check_gateway "the upgraded hook, after net-start"

denials=$(vm_apparmor_denials | tail -n +"$((denials_before + 1))")
t_check "no AppArmor denials while libvirtd ran the packaged hook" "$denials"
t_match "libvirtd is still confined (enforce)" '^libvirtd \(enforce\)$' "$(vm_apparmor_label "$(vm_libvirtd_pid)")"

# ------------------------------------------------ 6. purge
pkg_run "dpkg --purge" out dpkg --purge net-hook
t_eq "purge: not installed" "" "$(pkg_status | sed 's/^un.*//')"
t_ok "purge: no hook entry" test ! -e "$entry" -a ! -L "$entry"
t_ok "purge: no qemu hook entry" test ! -e "$qentry" -a ! -L "$qentry"
t_check "purge: no interface marked net-hook:*" "$(ip -d link show | grep 'alias net-hook:')"
t_ok "purge: virbr1.104 is gone" vm_link_absent virbr1.104
t_check "purge: no net-hook iptables rules" "$(iptables -w -t nat -S 2>/dev/null | grep net-hook; ip6tables -w -t nat -S 2>/dev/null | grep net-hook)"
t_check "purge: no net-hook nftables tables" "$(nft list tables 2>/dev/null | grep net_hook)"
t_ok "purge: /etc/net-hook is gone" test ! -e /etc/net-hook
t_ok "purge: /run/net-hook is gone" test ! -e /run/net-hook
t_ok "purge: the units are gone" test ! -e "$unit" -a ! -e "$fwunit"
t_check "purge: no enablement symlinks left" "$(find /etc/systemd/system -name 'net-hook*' 2>/dev/null)"
t_ok "purge: /usr/bin/net-hook and /usr/libexec/net-hook are gone" test ! -e /usr/bin/net-hook -a ! -e /usr/libexec/net-hook
t_ok "purge: libvirt's network is still up" vm_link_exists virbr1

vm_summary
