#!/usr/bin/env bash
# One boot's checks, run inside the booted image by nh-boot-check.service
# (systemd is PID 1; libvirtd was started by systemd, not by us):
#
#   guest.sh STEP     STEP is what tests/vm/boot/run put into the share
#
# Steps, in the order the runner boots them (state carries over on the disk):
#   boot1, boot2  scenario 1: the gateway after a plain boot
#   boot3         scenario 1, then 4 (restart nftables), then 3 (restart
#                 libvirtd with the VLAN deleted; the idle exit and socket
#                 activation where libvirtd has --timeout); then defines
#                 2_holder (autostart) holding 10.12.8.1/22 for scenario 7
#   boot4         scenario 7 (the ordering trap), then 8: upgrade to DEB2;
#                 then installs firewalld (offline, from the image's apt
#                 cache), enabled, not started
#   boot5         scenario 8: after the upgrade's reboot, now with firewalld
#                 running; scenario 5 (firewalld reload and restart); then
#                 apt purge
#   boot6         scenario 8: after the purge's reboot, nothing is left
#   race          scenario 2 (scripts/boot-race): observe only, print figures
# The share is /nh: tier/ (this file, lib.sh), debs/, out/ (results).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export NET_HOOK_VM_RESULTS=/nh/out NET_HOOK_REPO=/nh/tier
source /nh/tier/lib.sh
export DEBIAN_FRONTEND=noninteractive

step=${1:?usage: guest.sh STEP}
major=$(cut -d. -f1 /etc/debian_version)
conf=/etc/net-hook/net-hook.toml
state=/var/lib/nh-boot
mkdir -p "$state"

# ---------------------------------------------------------------- helpers

# Seconds of monotonic time (journal's short-monotonic) of the first line
# of `journalctl -b ARGS...` matching ERE; empty if none.
j_ts() {
    local re=$1
    shift
    journalctl -b -q --no-pager -o short-monotonic "$@" 2>/dev/null | grep -m1 -E -- "$re" |
        sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "?"; else printf "%.2f", b - a }'; }

# When net-hook's started run brought the VLAN up (its "bring virbr1.104 up" line).
gw_up_ts() { j_ts 'virbr1\.104 up' NET_HOOK_NETWORK=1_provider NET_HOOK_OP=started; }

net_active() { [[ $(vm_virsh net-info "$1" 2>/dev/null | awk '/^Active:/ { print $2 }') == yes ]]; }

# wait_boot [UNIT...]: boot finished; the state is checked, failed units
# shown. The UNITs may have failed (their failure is checked elsewhere).
wait_boot() {
    local s failed u
    s=$(timeout 300 systemctl is-system-running --wait 2>&1)
    vm_note "boot $step: kernel $(uname -r), Debian $(cat /etc/debian_version), system $s after $(vm_uptime)s"
    if [[ $# -eq 0 ]]; then
        t_eq "$step: boot finished, system running (not degraded)" running "$s"
        [[ $s == running ]] || systemctl --failed --no-legend --plain 2>&1 | _t_diag
    else
        failed=$(systemctl --failed --no-legend --plain 2>/dev/null | awk '{ print $1 }')
        for u in "$@"; do failed=$(grep -vxF "$u" <<<"$failed"); done
        t_match "$step: boot finished (running or degraded)" '^(running|degraded)$' "$s"
        t_check "$step: no failed units other than $*" "$failed"
    fi
}

# The exemption on this release's backend: iptables (libvirt 9, Debian 12)
# or table ip net_hook (libvirt 11 with nftables, Debian 13).
exemption_count() {
    if [[ $major -ge 13 ]]; then
        nft list table ip net_hook 2>/dev/null | grep -c 'comment "net-hook:1_provider"'
    else
        vm_exemption_rules
    fi
}
exemption_once() { [[ $(exemption_count) == 1 ]]; }

denials() { journalctl -b -k -q --no-pager 2>/dev/null | grep 'apparmor="DENIED"'; }

# Scenario 1's checks after a boot with no manual step.
check_gateway_boot() {
    local pid lv ready gw
    vm_wait 180 net_active 1_provider
    t_ok "$step: 1_provider was autostarted" net_active 1_provider
    vm_check_gateway "$step"
    t_eq "$step: the exemption is in place, once" 1 "$(exemption_count)"
    t_check "$step: the journal has net-hook's started line for 1_provider" \
        "$(journalctl -b -q --no-pager NET_HOOK_NETWORK=1_provider NET_HOOK_OP=started | grep -q . || echo 'no NET_HOOK_OP=started entry for 1_provider')"
    journalctl -b -q --no-pager -t net-hook -o short-monotonic 2>&1 | head -n 5 | _t_diag
    t_ok "$step: net-hook status exits 0" net-hook status
    t_eq "$step: net-hook-reconcile.service ran at boot and succeeded" "active success" \
        "$(systemctl show -P ActiveState net-hook-reconcile.service) $(systemctl show -P Result net-hook-reconcile.service)"
    pid=$(systemctl show -P MainPID libvirtd.service)
    t_eq "$step: libvirtd (started by systemd) is confined, enforce" 'libvirtd (enforce)' "$(vm_apparmor_label "$pid" 2>&1)"
    t_check "$step: no AppArmor denial" "$(denials)"
    lv=$(j_ts 'Starting libvirtd\.service' _PID=1)
    ready=$(j_ts 'Started libvirtd\.service' _PID=1)
    gw=$(gw_up_ts)
    vm_note "timing $step: libvirtd start at ${lv}s, READY after $(sub "$lv" "$ready")s, gateway up (net-hook: "bring virbr1.104 up") after $(sub "$lv" "$gw")s"
    echo "$step $(sub "$lv" "$gw")" >>/nh/out/timing
}

# libvirtd's idle timeout (--timeout N in its command line), or empty.
idle_timeout() {
    tr '\0' ' ' <"/proc/$(systemctl show -P MainPID libvirtd.service)/cmdline" 2>/dev/null |
        sed -n 's/.*--timeout[ =]\([0-9]*\).*/\1/p'
}
starts_since() { # starts_since CURSOR UNIT: how often systemd started UNIT since CURSOR
    journalctl -q --no-pager --after-cursor="$1" _PID=1 2>/dev/null | grep -c "Starting $2"
}
libvirtd_down() { [[ $(systemctl show -P ActiveState libvirtd.service) != active ]]; }
cursor() { journalctl -q -n 1 --show-cursor --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p'; }

# ---------------------------------------------------------------- steps

s_boot1() { wait_boot; check_gateway_boot; }
s_boot2() { wait_boot; check_gateway_boot; }

s_boot3() {
    local c t0 to
    wait_boot
    check_gateway_boot

    # Scenario 4: nftables' service flushes the whole ruleset on start.
    t_ok "s4: systemctl restart nftables" systemctl restart nftables
    t_ok "s4: the exemption is back, once, within 30 s" vm_wait 30 exemption_once
    [[ $(exemption_count) == 1 ]] || journalctl -b -q --no-pager -u net-hook-reconcile -n 20 | _t_diag
    vm_check_gateway "s4: after the nftables restart"

    # Scenario 3: the daemon restarts; the hook does not run, the unit does.
    # For this boot only (a runtime drop-in, gone at the next boot) libvirtd
    # idles out after 20 s instead of Debian's 120 (LIBVIRTD_ARGS in
    # libvirtd.service): the same idle exit and socket activation, watched
    # in a shorter window.
    mkdir -p /run/systemd/system/libvirtd.service.d
    printf '[Service]\nEnvironment=LIBVIRTD_ARGS="--timeout 20"\n' >/run/systemd/system/libvirtd.service.d/nh-boot-idle.conf
    systemctl daemon-reload
    vm_note "s3: libvirtd as booted runs with $(tr '\0' ' ' <"/proc/$(systemctl show -P MainPID libvirtd.service)/cmdline")"
    ip link del virbr1.104
    t_ok "s3: VLAN deleted by hand" vm_link_absent virbr1.104
    c=$(cursor)
    t0=$(vm_uptime)
    t_ok "s3: systemctl restart libvirtd" systemctl restart libvirtd
    t_ok "s3: virbr1.104 is back within 60 s" vm_wait 60 vm_link_exists virbr1.104
    vm_note "s3: restored $(vm_since "$t0")s after the restart began"
    vm_wait 20 exemption_once
    vm_check_gateway "s3: after systemctl restart libvirtd"
    t_eq "s3: the exemption is there, once" 1 "$(exemption_count)"
    t_eq "s3: net-hook-reconcile ran once for the restart" 1 "$(starts_since "$c" net-hook-reconcile.service)"

    to=$(idle_timeout)
    vm_note "s3: libvirtd as restarted runs with $(tr '\0' ' ' <"/proc/$(systemctl show -P MainPID libvirtd.service)/cmdline")"
    if [[ -n $to ]]; then
        # libvirtd exits when idle and is socket-activated again: nothing may
        # bring it back by itself (a reconcile that activates it would loop).
        vm_note "s3: libvirtd runs with --timeout $to"
        c=$(cursor)
        t0=$(vm_uptime)
        if vm_wait $((to + 60)) libvirtd_down; then
            vm_note "s3: idle exit $(vm_since "$t0")s after the last client"
            [[ $major -ne 12 ]] || t_ok "s3: libvirtd exits when idle (Debian 12)" true
            t_ok "s3: a client socket-activates it again" vm_virsh net-list
            t_eq "s3: libvirtd is active again" active "$(systemctl show -P ActiveState libvirtd.service)"
            vm_check_gateway "s3: after the socket activation"
            t_ok "s3: and exits when idle again" vm_wait $((to + 60)) libvirtd_down
            # Watch the quiet period: nothing starts it again.
            sleep 20
            t_eq "s3: libvirtd stays down without clients" inactive "$(systemctl show -P ActiveState libvirtd.service)"
        else
            # Seen with libvirt 11.3 (Debian 13), cause not investigated.
            vm_note "s3: libvirtd $(libvirtd --version | awk '{print $NF}') did not exit in $((to + 60)) s of idling with 1_provider active"
            [[ $major -ne 12 ]] || t_ok "s3: libvirtd exits when idle (Debian 12)" false
        fi
        t_ok "s3: over the window libvirtd was started at most once (by our client)" \
            test "$(starts_since "$c" libvirtd.service)" -le 1
        t_ok "s3: over the window net-hook-reconcile started at most once" \
            test "$(starts_since "$c" net-hook-reconcile.service)" -le 1
        t_ok "s3: net-hook wrote at most 10 journal lines over it" \
            test "$(journalctl -q --no-pager --after-cursor="$c" -t net-hook | wc -l)" -le 10
        vm_note "s3: window of $(vm_since "$t0")s: libvirtd starts $(starts_since "$c" libvirtd.service), reconcile starts $(starts_since "$c" net-hook-reconcile.service), net-hook lines $(journalctl -q --no-pager --after-cursor="$c" -t net-hook | wc -l), journal lines $(journalctl -q --no-pager --after-cursor="$c" | wc -l)"
        vm_check_gateway "s3: after the idle window"
    else
        vm_note "s3: libvirtd has no --timeout here ($(tr '\0' ' ' <"/proc/$(systemctl show -P MainPID libvirtd.service)/cmdline")): no idle exit to observe"
        [[ $major -ne 12 ]] || t_ok "s3: libvirtd runs with --timeout (Debian 12's default)" false
    fi

    # Scenario 7's trap for the next boot: another autostarted network whose
    # bridge holds the gateway's address.
    cat >/root/2_holder.xml <<'EOF'
<network>
  <name>2_holder</name>
  <bridge name='virbr9' stp='on' delay='0'/>
  <ip address='10.12.8.1' prefix='22'/>
</network>
EOF
    t_ok "s7 setup: net-define 2_holder (10.12.8.1/22 on virbr9)" vm_virsh net-define /root/2_holder.xml
    t_ok "s7 setup: net-autostart 2_holder" vm_virsh net-autostart 2_holder
}

s_boot4() {
    local out holder v2 deb2 ifindex order
    # With the holder first, the boot's reconcile fails on the conflict.
    wait_boot net-hook-reconcile.service
    vm_wait 180 net_active 1_provider
    vm_wait 30 net_active 2_holder
    vm_virsh net-list --all 2>&1 | _t_diag
    ip -br addr 2>&1 | _t_diag
    t_ok "s7: 1_provider still starts" net_active 1_provider
    # libvirt autostarts in no fixed order: whichever network comes first
    # gets 10.12.8.0/22, libvirt's route check then refuses the other.
    if net_active 2_holder; then
        order="2_holder first"
    else
        order="1_provider first"
        t_match "s7: 2_holder could not start: libvirt says virbr1.104 uses its subnet" \
            'Network is already in use by interface virbr1\.104' "$(journalctl -b -q --no-pager -u libvirtd 2>&1)"
        vm_check_gateway "s7: 1_provider first at boot"
        # The trap itself (the holder up first) by hand, as the other
        # autostart order would have it.
        vm_virsh net-destroy 1_provider >/dev/null 2>&1
        t_ok "s7 (holder first, by hand): net-start 2_holder" vm_virsh net-start 2_holder
        t_ok "s7 (holder first, by hand): net-start 1_provider" vm_virsh net-start 1_provider
    fi
    vm_note "s7: autostart order at this boot: $order"
    echo "$step $order" >>/nh/out/autostart-order
    t_ok "s7: 2_holder holds 10.12.8.1/22 on virbr9" sh -c 'ip -br addr show dev virbr9 | grep -q "10\.12\.8\.1/22"'
    t_check "s7: virbr1.104 got no conflicting address" "$(ip -br addr show dev virbr1.104 2>&1 | grep '10\.12\.8\.1/')"
    out=$(net-hook check 1_provider 2>&1)
    printf '%s\n' "$out" | _t_diag
    t_match "s7: net-hook check 1_provider names the holder" 'virbr9|2_holder' "$out"
    vm_note "s7: net-hook-reconcile.service at this boot: $(systemctl show -P Result net-hook-reconcile.service)"
    t_check "s7: no AppArmor denial" "$(denials)"

    # Renumber the holder, then reconcile completes the gateway.
    vm_virsh net-dumpxml --inactive 2_holder | sed "s/10\.12\.8\.1/10.12.200.1/; s/prefix='22'/prefix='24'/" >/root/2_holder-new.xml
    vm_virsh net-destroy 2_holder >/dev/null 2>&1
    t_ok "s7: 2_holder renumbered to 10.12.200.1/24" vm_virsh net-define /root/2_holder-new.xml
    t_ok "s7: net-start 2_holder" vm_virsh net-start 2_holder
    out=$(net-hook reconcile 2>&1)
    t_eq "s7: net-hook reconcile exits 0" 0 "$?"
    printf '%s\n' "$out" | _t_diag
    vm_check_gateway "s7: after reconcile"
    t_eq "s7: the exemption is in place, once" 1 "$(exemption_count)"
    vm_virsh net-destroy 2_holder >/dev/null 2>&1
    t_ok "s7 cleanup: net-undefine 2_holder" vm_virsh net-undefine 2_holder

    # Scenario 8: upgrade to the rebuilt package, as an admin would.
    deb2=$(ls /nh/debs/2/*.deb)
    v2=$(dpkg-deb -f "$deb2" Version)
    cp "$deb2" /root/
    sha256sum "$conf" >"$state/conf.sha256"
    echo "$v2" >"$state/v2"
    ifindex=$(cat /sys/class/net/virbr1.104/ifindex)
    out=$(cd /root && apt-get install -y "./${deb2##*/}" 2>&1)
    t_eq "s8: apt install ./${deb2##*/} succeeds" 0 "$?"
    printf '%s\n' "$out" | grep -i 'net-hook' | _t_diag
    t_eq "s8: $v2 installed" "ii $v2" "$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' net-hook)"
    t_eq "s8: the upgrade did not touch the gateway (same ifindex)" "$ifindex" "$(cat /sys/class/net/virbr1.104/ifindex 2>&1)"

    # Scenario 5's setup: Debian's firewalld, installed as an admin would
    # (enabled by its package) from the .debs the image carries (the guest
    # has no network); policy-rc.d keeps it from starting now, so it comes
    # up with the next boot.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    out=$(apt-get install -y --no-download --no-install-recommends firewalld 2>&1)
    t_eq "s5 setup: apt-get install firewalld (from the image's cache) succeeds" 0 "$?"
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' firewalld 2>/dev/null) == "ii " ]] || printf '%s\n' "$out" | tail -n 20 | _t_diag
    rm -f /usr/sbin/policy-rc.d
    t_eq "s5 setup: firewalld.service is enabled" enabled "$(systemctl is-enabled firewalld.service 2>&1)"
}

s_boot5() {
    local out
    wait_boot
    t_eq "s8: after the reboot $(cat "$state/v2") is installed" "ii $(cat "$state/v2")" \
        "$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' net-hook)"
    t_ok "s8: the config is untouched" sha256sum -c --quiet "$state/conf.sha256"
    t_check "s8: no .dpkg-* files next to the config" "$(ls /etc/net-hook | grep -v '^net-hook\.toml$')"
    check_gateway_boot
    # Scenario 5 on the same boot: firewalld came up with it.
    fw_checks
    out=$(apt-get purge -y net-hook 2>&1)
    t_eq "s8: apt purge net-hook succeeds" 0 "$?"
    printf '%s\n' "$out" | grep -i 'net-hook' | _t_diag
}

s_boot6() {
    local left f
    wait_boot
    vm_wait 180 net_active 1_provider
    t_ok "s8 purged: 1_provider still starts" net_active 1_provider
    t_match "s8 purged: virbr1 has 10.12.4.1/22" 'inet 10\.12\.4\.1/22 ' "$(ip addr show dev virbr1 2>&1)"
    t_eq "s8 purged: the package is gone" "" "$(dpkg-query -W -f='${db:Status-Abbrev}' net-hook 2>/dev/null | sed 's/^un *$//')"
    left=""
    for f in /usr/bin/net-hook /usr/libexec/net-hook /etc/net-hook /run/net-hook \
        /etc/libvirt/hooks/network.d/50-net-hook /etc/libvirt/hooks/qemu.d/50-net-hook /lib/systemd/system/net-hook-reconcile.service /lib/systemd/system/net-hook-firewalld-reload.service \
        /usr/lib/systemd/system/net-hook-reconcile.service /usr/share/doc/net-hook /usr/share/man/man1/net-hook.1.gz; do
        [[ ! -e $f && ! -L $f ]] || left+="$f "
    done
    t_check "s8 purged: no net-hook files" "$left"
    t_check "s8 purged: no enablement links" "$(find /etc/systemd -name 'net-hook*' 2>/dev/null)"
    t_check "s8 purged: no hook entries for net-hook" "$(ls -l /etc/libvirt/hooks/network.d/ /etc/libvirt/hooks/qemu.d/ 2>/dev/null | grep -i net-hook)"
    t_check "s8 purged: no links marked net-hook:*, no virbr1.104" "$(ip -d link show | grep -E 'alias net-hook:|virbr1\.104')"
    t_check "s8 purged: no net-hook iptables rules" "$(iptables -w -t nat -S 2>/dev/null | grep net-hook; ip6tables -w -t nat -S 2>/dev/null | grep net-hook)"
    t_check "s8 purged: no net-hook nftables tables" "$(nft list tables 2>/dev/null | grep net_hook)"
    t_check "s8 purged: the journal of this boot has no net-hook lines" "$(journalctl -b -q --no-pager -t net-hook 2>/dev/null)"
    t_check "s8 purged: no AppArmor denial" "$(denials)"
}

# Scenario 5 (boot5, firewalld installed at boot4): zone and exemption
# across firewalld's reload and restart, with real packets.
zone_is() { [[ $(firewall-cmd --get-zone-of-interface=virbr1.104 2>/dev/null) == "$1" ]]; }
zone_of() { [[ $(firewall-cmd --get-zone-of-interface="$1" 2>/dev/null) == "$2" ]]; }
fw_checks() {
    local how t0
    vm_wait 180 net_active 1_provider
    t_eq "s5: firewalld is running" running "$(firewall-cmd --state 2>&1)"
    vm_note "firewalld $(firewall-cmd --version 2>&1), backend $(sed -n 's/^FirewallBackend=//p' /etc/firewalld/firewalld.conf)"
    t_ok "s5: 1_provider was autostarted" net_active 1_provider
    vm_check_gateway "s5"
    # libvirt's own integration puts virbr1 there when firewalld runs as it
    # starts the network: only certain where libvirtd.service is ordered
    # after firewalld.service (Debian 12's is, Debian 13's is not).
    if systemctl show -P After libvirtd.service | grep -qw firewalld.service; then
        t_eq "s5: virbr1 is in zone libvirt (libvirt's integration)" libvirt "$(firewall-cmd --get-zone-of-interface=virbr1 2>&1)"
    else
        vm_note "s5: virbr1 is in zone '$(firewall-cmd --get-zone-of-interface=virbr1 2>&1)': libvirtd.service has no After=firewalld.service here, libvirt may start 1_provider before firewalld is up"
    fi
    t_eq "s5: virbr1.104 is in the configured zone (libvirt)" libvirt "$(firewall-cmd --get-zone-of-interface=virbr1.104 2>&1)"
    t_eq "s5: the exemption is in place, once" 1 "$(exemption_count)"
    t_eq "s5: net-hook-firewalld-reload.service runs (started with firewalld)" active \
        "$(systemctl show -P ActiveState net-hook-firewalld-reload.service)"
    vm_udp_peers
    # virbr1 runs STP: a new port forwards only after its learning phase.
    vm_wait 30 sh -c 'for p in c0p s0p; do [ "$(cat /sys/class/net/$p/brport/state)" = 3 ] || exit 1; done' ||
        vm_note "s5: the bridge ports did not reach forwarding in 30 s"
    # With virbr1 in no zone (libvirt started 1_provider before firewalld
    # was up, see above) firewalld puts it in its default zone, which may
    # not forward to the libvirt zone: libvirt's gap, not net-hook's. Seen
    # and noted where libvirtd is not ordered after firewalld; a failure
    # everywhere else.
    if zone_of virbr1 libvirt || systemctl show -P After libvirtd.service | grep -qw firewalld.service; then
        t_eq "s5: a client on virbr1 reaches the server on VLAN 104 with its own address" 10.12.5.20 "$(vm_seen_source)"
    else
        vm_note "s5: before any reload, with virbr1 in no zone: the server sees '$(vm_seen_source)' (10.12.5.20: the client's own address)"
    fi
    for how in "firewall-cmd --reload" "systemctl restart firewalld"; do
        t0=$(vm_uptime)
        t_ok "s5: $how" $how
        # The listener waits 2 s of quiet, then reconciles; firewall-cmd
        # itself takes seconds under TCG, tens of seconds on a loaded host
        # (seen: 80 s from the restart to the reconcile done).
        t_ok "s5 after $how: virbr1.104 is in zone libvirt within 120 s" vm_wait 120 zone_is libvirt
        vm_note "s5 after $how: zone $(firewall-cmd --get-zone-of-interface=virbr1.104 2>&1) after $(vm_since "$t0")s"
        t_ok "s5 after $how: the exemption is back, once, within 120 s" vm_wait 120 exemption_once
        vm_note "s5 after $how: exemption count $(exemption_count) after $(vm_since "$t0")s"
        vm_note "s5 after $how: virbr1 is in zone '$(firewall-cmd --get-zone-of-interface=virbr1 2>&1)'"
        t_eq "s5 after $how: the server sees the client's address" 10.12.5.20 "$(vm_seen_source)"
    done
    # At boot, after the reload, and when the restart (PartOf=) restarted it.
    t_ok "s5: the listener reconciled 1_provider at least 3 times (boot, reload, restart)" \
        test "$(journalctl -b -q --no-pager -u net-hook-firewalld-reload -o cat | grep -c 'reconcile after .*: 1_provider')" -ge 3
    t_match "s5: one of them after firewalld's Reloaded signal" 'reconcile after firewalld reloaded: 1_provider' \
        "$(journalctl -b -q --no-pager -u net-hook-firewalld-reload -o cat)"
    journalctl -b -q --no-pager -u net-hook-firewalld-reload -u net-hook-reconcile -o short-monotonic 2>&1 | tail -n 12 | _t_diag
    t_check "s5: no AppArmor denial" "$(denials)"
}

# Scenario 2: figures only (scripts/boot-race turns them into a table).
s_race() {
    local s lv gw unit present=0 addr=0 up=0 how
    s=$(timeout 300 systemctl is-system-running --wait 2>&1)
    vm_wait 180 net_active 1_provider
    # Give a late unit time to finish (it would fix nothing after that).
    sleep 5
    lv=$(j_ts 'Starting libvirtd\.service' _PID=1)
    if systemctl cat provider-vip-gw.service >/dev/null 2>&1; then
        how=runbook
        unit=$(systemctl show -P Result provider-vip-gw.service)
        gw=$(j_ts 'Finished provider-vip-gw\.service' _PID=1)
        journalctl -b -q --no-pager -u provider-vip-gw.service 2>&1 | tail -n 6 | _t_diag
    else
        how=net-hook
        unit=$(systemctl show -P Result net-hook-reconcile.service)
        gw=$(gw_up_ts)
    fi
    vm_link_exists virbr1.104 && present=1
    ip -br addr show dev virbr1.104 2>/dev/null | grep -q '10\.12\.8\.1/22' && addr=1
    ip link show dev virbr1.104 2>/dev/null | grep -qE '<[^>]*,UP' && up=1
    ip -br addr 2>&1 | _t_diag
    ip link show dev virbr1.104 2>&1 | _t_diag
    echo "RACE how=$how system=$s present=$present addr=$addr up=$up unit=$unit lv_to_gw=$(sub "$lv" "$gw") lv_ready=$(sub "$lv" "$(j_ts 'Started libvirtd\.service' _PID=1)")"
}

case $step in
    boot1 | boot2 | boot3 | boot4 | boot5 | boot6 | race) "s_$step" ;;
    *) vm_bail "unknown step $step" ;;
esac
journalctl -b --no-pager -o short-monotonic >"/nh/out/$step.journal" 2>&1
[[ $step == race ]] && exit 0
vm_summary
