#!/usr/bin/env bash
# Probe what a network hook may do under Debian's libvirtd AppArmor profile
# (enforce mode), for a hook that is a regular file in network.d/ and for one
# that is a symlink to /usr/bin. Facts found are written down in tests/vm/NOTES.md;
# the checks below pin them, so a changed profile or kernel shows up here.
#
#   tests/vm/run tests/vm/scenarios/probe-confinement.sh
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

res=$NET_HOOK_VM_RESULTS
vm_note "guest uptime at scenario start: $(vm_uptime)s"

# --- the kernel can do 802.1Q (the build machines' kernel cannot).
t_ok "modprobe 8021q" modprobe 8021q
t_ok "bridge nhbr9 created" ip link add nhbr9 type bridge
t_ok "vlan nhbr9.5 on a bridge" ip link add link nhbr9 name nhbr9.5 type vlan id 5
t_match "nhbr9.5 is 802.1Q id 5" 'vlan protocol 802\.1Q id 5' "$(ip -d link show nhbr9.5)"
ip link del nhbr9

# --- the probe: acts only on "started begin", writes key=value lines.
probe=$(mktemp)
cat >"$probe" <<'EOF'
#!/usr/bin/python3
# net-hook VM probe: what may this hook process do?
import os, socket, sys

if sys.argv[2:4] != ["started", "begin"]:
    sys.exit(0)
tag = os.path.basename(sys.argv[0])
out = []

def attempt(key, fn):
    try:
        fn()
        out.append(f"{key}=ok")
    except OSError as e:
        out.append(f"{key}=error {e.errno} {os.strerror(e.errno) if e.errno else e}")

def label():
    with open("/proc/self/attr/current") as f:
        out.append("label=" + f.read().strip("\0\n"))

def netlink(kind):
    socket.socket(socket.AF_NETLINK, kind, 0).close()  # 0 = NETLINK_ROUTE

def read_etc():
    with open("/etc/net-hook/probe.conf") as f:
        f.read()

def write_run():
    os.makedirs("/run/net-hook", exist_ok=True)
    with open(f"/run/net-hook/{tag}", "w") as f:
        f.write("written\n")

def dev_log():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("/dev/log")
    s.send(f"<13>nh-probe: hello from {tag}".encode())
    s.close()

attempt("read_label", label)
attempt("netlink_dgram", lambda: netlink(socket.SOCK_DGRAM))
attempt("netlink_raw", lambda: netlink(socket.SOCK_RAW))
attempt("read_etc_net_hook", read_etc)
attempt("write_run_net_hook", write_run)
attempt("dev_log", dev_log)

text = "\n".join(out) + "\n"
try:
    os.makedirs("/run/hooktest", exist_ok=True)
    with open(f"/run/hooktest/{tag}", "w") as f:
        f.write(text)
except OSError:
    with open(f"/var/tmp/hooktest-{tag}", "w") as f:
        f.write(text)
EOF
mkdir -p /etc/net-hook
echo 'probe' >/etc/net-hook/probe.conf
vm_install_hook "$probe" 10-probe-file
install -m 0755 "$probe" /usr/bin/nh-probe
ln -s /usr/bin/nh-probe /etc/libvirt/hooks/network.d/50-probe-link
rm -f "$probe"

# A syslog socket to connect to (no journald in the VM); busybox runs unconfined.
rm -f /dev/log
busybox syslogd -n -O /run/nh-syslog.log &
syslogd_pid=$!
vm_wait 10 test -S /dev/log || vm_bail "busybox syslogd did not create /dev/log"

# run_probe DIR: start and stop 1_provider, move the probe results to DIR.
run_probe() {
    local dir=$1
    rm -rf /run/hooktest /var/tmp/hooktest-* /run/net-hook
    t_ok "$dir: net-create 1_provider" vm_virsh net-create "$NET_HOOK_REPO/xml-templates/1_provider.xml"
    t_ok "$dir: net-destroy 1_provider" vm_virsh net-destroy 1_provider
    mkdir -p "$res/$dir"
    cp /run/hooktest/* /var/tmp/hooktest-* "$res/$dir/" 2>/dev/null || true
    local f
    for f in "$res/$dir"/*; do
        [[ -e $f ]] || continue
        vm_note "$dir/${f##*/}:"
        sed 's/^/#   /' "$f"
    done
}

# probe_value DIR TAG KEY
probe_value() {
    local f
    for f in "$res/$1/$2" "$res/$1/hooktest-$2"; do
        [[ -f $f ]] && { sed -n "s/^$3=//p" "$f"; return 0; }
    done
    echo "(no result file)"
}

# --- phase 1: libvirtd confined (enforce).
# Whether "unix" rules are enforced depends on the kernel's and the parser's
# feature sets (the parser compiles against a pinned set on Debian).
vm_note "kernel AppArmor features: $(find /sys/kernel/security/apparmor/features -mindepth 1 -maxdepth 1 -printf '%f ')"
vm_note "parser's pinned feature set mentions unix: $(grep -c unix /usr/share/apparmor-features/features 2>/dev/null || echo 0)"
t0=$(vm_uptime)
vm_start_libvirtd --apparmor
vm_note "boot + libvirtd (confined) ready at guest uptime $(vm_uptime)s (libvirtd start from ${t0}s)"
dmesg_before=$(dmesg | wc -l)
run_probe apparmor
dmesg | tail -n +"$((dmesg_before + 1))" | grep 'apparmor=' >"$res/apparmor/denials.log" || true
vm_note "AppArmor messages during phase 1:"
sed 's/^/#   /' "$res/apparmor/denials.log"
vm_note "syslog received:"
sed 's/^/#   /' /run/nh-syslog.log 2>/dev/null || true

# Observed facts, pinned (see NOTES.md).
t_eq "file hook runs in libvirtd's profile" "libvirtd (enforce)" "$(probe_value apparmor 10-probe-file label)"
t_match "file hook: netlink dgram denied" '^error 13 ' "$(probe_value apparmor 10-probe-file netlink_dgram)"
t_eq "file hook: netlink raw allowed" ok "$(probe_value apparmor 10-probe-file netlink_raw)"
t_eq "file hook: read /etc/net-hook" ok "$(probe_value apparmor 10-probe-file read_etc_net_hook)"
t_eq "file hook: write /run/net-hook" ok "$(probe_value apparmor 10-probe-file write_run_net_hook)"
t_eq "file hook: connect+send /dev/log" ok "$(probe_value apparmor 10-probe-file dev_log)"
t_match "kernel logged the netlink dgram denial" \
    'apparmor="DENIED" operation="create" profile="libvirtd".*family="netlink" sock_type="dgram"' \
    "$(cat "$res/apparmor/denials.log")"
t_eq "symlinked /usr/bin hook is unconfined" unconfined "$(probe_value apparmor 50-probe-link label)"
t_eq "symlink hook: netlink dgram allowed" ok "$(probe_value apparmor 50-probe-link netlink_dgram)"

# --- phase 2: the same with libvirtd unconfined, as a control.
# shellcheck disable=SC2119 # no --apparmor: unconfined
vm_restart_libvirtd
run_probe unconfined
t_eq "control: file hook unconfined" unconfined "$(probe_value unconfined 10-probe-file label)"
t_eq "control: file hook netlink dgram allowed" ok "$(probe_value unconfined 10-probe-file netlink_dgram)"

vm_stop_libvirtd
kill "$syslogd_pid" 2>/dev/null || true
vm_summary
