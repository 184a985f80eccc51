#!/usr/bin/env bash
# All or nothing with real firewall tools: the hook's bring-up of a network
# with two VLANs, firewalld zones and an un-NAT exemption is made to fail at
# each firewall step in turn (iptables, then nftables, then firewalld), and
# every time the host must be left exactly as it was, with one line naming
# the failed step. Then a run without faults converges.
#
#   tests/vm/run tests/vm/scenarios/faults.sh DIR-WITH-net-hook-AND-net-hook-virt
#
# iptables and nft are the real programs behind a wrapper that fails (exit
# 4, "injected") on the Nth call that changes net-hook's rules while a fault
# is armed; it passes everything else through, libvirt's own calls and the
# scenario's snapshots included. firewalld is not
# installed in the VM: firewall-cmd is a stand-in that keeps zones in a file
# and can fail the Nth zone change.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bins=${1:?usage: faults.sh DIR}
templates=$NET_HOOK_REPO/xml-templates
rec=/run/net-hook/networks/1_provider.toml
fault=/run/nh-fault
mkdir -p "$fault"

vm_install_binaries --need-virt "$bins"

# wrap PROGRAM MATCH: PROGRAM (in /usr/sbin) fails its Nth call whose
# arguments match the extended regex MATCH, N read from $fault/PROGRAM.
wrap() {
    local prog=$1 match=$2 real
    real=$(readlink -f "/usr/sbin/$prog") || vm_bail "no /usr/sbin/$prog"
    if [[ $real == "/usr/sbin/$prog" ]]; then
        # A plain binary (nft): moved aside, or the wrapper would exec itself.
        mv "$real" "$real.real"
        real=$real.real
    fi
    rm -f "/usr/sbin/$prog"
    cat >"/usr/sbin/$prog" <<EOF
#!/bin/bash
re='$match'
if [[ -s $fault/$prog ]] && [[ "\$*" =~ \$re ]]; then
    n=\$(( \$(cat $fault/$prog.count 2>/dev/null || echo 0) + 1 ))
    echo "\$n" >$fault/$prog.count
    if [[ \$n -eq \$(cat $fault/$prog) ]]; then
        echo "$prog: injected failure (call \$n)" >&2
        exit 4
    fi
fi
# iptables is a multi-call binary: it must see its own name.
exec -a $prog $real "\$@"
EOF
    chmod 0755 "/usr/sbin/$prog"
}

# A firewalld stand-in: --state, --get-zone-of-interface, --change-interface
# and --remove-interface, zones kept in $fault/zones ("IFACE ZONE" lines).
cat >/usr/bin/firewall-cmd <<EOF
#!/bin/bash
z=$fault/zones
touch "\$z"
case "\$*" in
--state) echo running ;;
--get-zone-of-interface=*)
    zone=\$(awk -v i="\${1#*=}" '\$1 == i { print \$2 }' "\$z")
    [[ -n \$zone ]] || { echo "no zone"; exit 2; }
    echo "\$zone" ;;
--zone=*\ --change-interface=* | --zone=*\ --remove-interface=*)
    zone=\${1#--zone=} op=\${2%%=*} iface=\${2#*=}
    if [[ \$op == --change-interface && -s $fault/firewall-cmd ]]; then
        n=\$(( \$(cat $fault/firewall-cmd.count 2>/dev/null || echo 0) + 1 ))
        echo "\$n" >$fault/firewall-cmd.count
        [[ \$n -ne \$(cat $fault/firewall-cmd) ]] || { echo "Error: INJECTED" >&2; exit 4; }
    fi
    grep -v "^\$iface " "\$z" >"\$z.new"
    [[ \$op == --remove-interface ]] || echo "\$iface \$zone" >>"\$z.new"
    mv "\$z.new" "\$z"
    echo success ;;
*) echo "unexpected: \$*" >&2; exit 2 ;;
esac
EOF
chmod 0755 /usr/bin/firewall-cmd

mkdir -p /etc/net-hook
cat >"$VM_CONFIG" <<'EOF'
[networks.1_provider]
strict = true
firewalld_zone = "libvirt"
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22", "fd00:12:8::1/64"]
[[networks.1_provider.vlans]]
id = 105
addresses = ["10.12.12.1/22", "fd00:12:12::1/64"]
[networks.1_provider.unnat]
destinations = ["10.12.8.0/22", "10.12.12.0/22"]
EOF
chmod 0644 "$VM_CONFIG"
t_ok "net-hook install" net-hook install
vm_start_libvirtd --apparmor
denials_before=$(vm_apparmor_denials | wc -l)
vm_virsh net-define "$templates/1_provider.xml" >/dev/null || vm_bail "net-define 1_provider failed"
out=$(vm_virsh net-start 1_provider 2>&1) || vm_bail "net-start 1_provider failed: $out; $(cat "$rec" 2>&1)"
t_ok "the hook brought both VLANs up" vm_link_exists virbr1.105
# Wrapped only now: libvirt runs iptables dozens of times to start a NAT
# network, and a shell wrapper per call is slow under emulation.
wrap iptables 'net-hook:.* -j RETURN'
wrap nft '^-f -$'

stale=(-s 10.12.4.0/22 -d 10.99.0.0/16 -m comment --comment net-hook:1_provider -j RETURN)

# reset: no VLAN, no zone binding, and a stale exemption of an older config
# (which the plan removes).
reset() {
    net-hook teardown 1_provider >/dev/null 2>&1
    ip link del virbr1.104 2>/dev/null
    ip link del virbr1.105 2>/dev/null
    : >"$fault/zones"
    iptables -w -t nat -I POSTROUTING 1 "${stale[@]}"
    rm -f "$fault"/*.count "$fault/iptables" "$fault/nft" "$fault/firewall-cmd"
}

# What "the host as it was" means: links, addresses, nat rules, the nft
# ruleset without counters, and the zones.
snapshot() {
    ip -d -br link show | grep -v '^lo ' | sort
    ip -br addr | sort
    iptables -w -t nat -S
    ip6tables -w -t nat -S 2>&1
    nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+//'
    cat "$fault/zones"
}

started() { vm_virsh net-dumpxml 1_provider | net-hook hook 1_provider started begin - 2>&1; }

runs=0 leftovers=0
# inject TOOL N KIND LABEL: fail TOOL's Nth changing call; the plan's step of
# KIND (its serde name) must be named, and nothing may be left.
inject() {
    local tool=$1 n=$2 kind=$3 label="$4 $2" before out rc after r
    reset
    before=$(snapshot)
    echo "$n" >"$fault/$tool"
    out=$(started)
    rc=$?
    rm -f "$fault/$tool"
    after=$(snapshot)
    runs=$((runs + 1))
    t_eq "$label: strict run exits 1" 1 "$rc"
    t_match "$label: one line naming the failed step and the injected error" \
        '^net-hook: network "1_provider": step [0-9]+ of [0-9]+ failed: .*(injected|INJECTED).*; rolled back the [0-9]+ change\(s\) before it$' "$out"
    t_eq "$label: stderr is that one line" 1 "$(printf '%s\n' "$out" | wc -l)"
    if [[ $before == "$after" ]]; then
        t_ok "$label: the host is exactly as before" true
    else
        leftovers=$((leftovers + 1))
        t_ok "$label: the host is exactly as before" false
        diff <(echo "$before") <(echo "$after") | _t_diag
    fi
    r=$(cat "$rec" 2>&1)
    t_match "$label: the outcome is failed" '^result = "failed"$' "$r"
    t_eq "$label: the outcome names the $kind step" "step = \"$kind\"" \
        "$(awk '/^\[failed_step\]$/ { getline; print }' "$rec")"
}

vm_note "iptables backend (libvirt 9.0's): stale rule removal, then two inserts"
inject iptables 1 ipt_delete "iptables: fail call"
inject iptables 2 ipt_insert "iptables: fail call"
inject iptables 3 ipt_insert "iptables: fail call"
vm_note "firewalld zones (stand-in): two zone changes"
inject firewall-cmd 1 zone_set "firewalld: fail change"
inject firewall-cmd 2 zone_set "firewalld: fail change"

# Fail-soft: the same rollback, but exit 0 so libvirt keeps the network.
sed -i 's/^strict = true/strict = false/' "$VM_CONFIG"
reset
before=$(snapshot)
echo 2 >"$fault/iptables"
out=$(started)
rc=$?
rm -f "$fault/iptables"
t_eq "fail-soft: exits 0" 0 "$rc"
t_match "fail-soft: says so" 'fail-soft: libvirt keeps the network up' "$out"
t_eq "fail-soft: the host is exactly as before" "$before" "$(snapshot)"
sed -i 's/^strict = false/strict = true/' "$VM_CONFIG"

vm_note "nftables backend (firewall_backend in network.conf; libvirt 9.0 ignores it)"
printf 'firewall_backend = "nftables"\n' >/etc/libvirt/network.conf
inject nft 1 nft_add_table "nft: fail transaction"
inject nft 2 nft_set_chain "nft: fail transaction"
rm -f /etc/libvirt/network.conf

vm_note "no faults: the same run converges"
reset
out=$(started)
t_eq "converges: exits 0" 0 "$?"
vm_check_gateway "converged"
t_ok "converged: virbr1.105 exists" vm_link_exists virbr1.105
t_check "converged: the stale exemption is gone" "$(iptables -w -t nat -S POSTROUTING | grep -- '10.99.0.0/16')"
t_eq "converged: both exemptions ahead of libvirt's jump" 2 \
    "$(iptables -w -t nat -S POSTROUTING | sed -n '2,3p' | grep -c 'net-hook:1_provider')"
t_eq "converged: both VLANs in zone libvirt" $'virbr1.104 libvirt\nvirbr1.105 libvirt' "$(sort "$fault/zones")"
t_eq "converged: a second run changes nothing" "" "$(started | grep -v 'nothing to do\|unnat: backend')"
t_ok "converged: status exits 0" net-hook status
t_eq "no AppArmor denials" "$denials_before" "$(vm_apparmor_denials | wc -l)"
vm_note "fault injection: $runs runs, $leftovers with leftovers"
vm_summary
