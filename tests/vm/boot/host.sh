# shellcheck shell=bash
# Host side of the boot tier, sourced by tests/vm/boot/run and scripts/boot-race:
#
#   boot_prepare RESULTS IMAGE [DEB2]   share + qcow2 overlay over IMAGE
#   boot_once RESULTS STEP [TIMEOUT]    one whole boot running STEP
#
# A boot: the Debian kernel and its initramfs booted directly by QEMU (TCG:
# no KVM here) with the disk's root on virtio, systemd as PID 1. The guest's
# nh-boot-check.service runs tier/guest.sh STEP from the 9p share RESULTS/share
# and powers off; its output is RESULTS/share/out/STEP.log, its status
# STEP.rc. The overlay keeps the cached image untouched, and carries the
# disk's state from one boot to the next.

boot_die() { printf 'tests/vm/boot: %s\n' "$*" >&2; exit 2; }

boot_prepare() {
    local results=$1 image=$2 deb2=${3:-} here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
    command -v qemu-system-x86_64 >/dev/null || boot_die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"
    command -v qemu-img >/dev/null || boot_die "qemu-img not found: apt-get install qemu-utils"
    BOOT_KERNEL=$(boot_kernel) || boot_die "no kernel /boot/vmlinuz-*-amd64"
    BOOT_INITRD=/boot/initrd.img-${BOOT_KERNEL##*/vmlinuz-}
    [[ -r $BOOT_INITRD ]] || boot_die "no initramfs $BOOT_INITRD (update-initramfs -c -k ${BOOT_KERNEL##*/vmlinuz-})"
    mkdir -p "$results/share/tier/tests/vm" "$results/share/out" "$results/share/debs/2"
    install -m 0644 "$here/guest.sh" "$here/../lib.sh" "$results/share/tier/"
    # lib.sh finds it under NET_HOOK_REPO (the tier/ dir in the guest).
    install -m 0644 "$here/../udp-probe.py" "$results/share/tier/tests/vm/"
    [[ -z $deb2 ]] || cp "$deb2" "$results/share/debs/2/"
    qemu-img create -q -f qcow2 -F raw -b "$image" "$results/disk.qcow2" || boot_die "qemu-img create failed"
}

# boot_once RESULTS STEP [TIMEOUT]: 0 if the guest ran STEP and powered off
# (STEP's own status is in STEP.rc); 1 with the console's tail otherwise.
boot_once() {
    local results=$1 step=$2 limit=${3:-600} t0 rc=0
    echo "$step" >"$results/share/step"
    rm -f "$results/share/out/$step.rc"
    t0=$(date +%s)
    # -smp 2, 1536M: what TCG boots in reasonable time here; the console
    # goes to a file (the checks report through the share, not the console).
    # --foreground: QEMU stays in the caller's process group, so a deadline
    # around the whole tier (scripts/test-all) ends it too.
    timeout --foreground -k 10 "$limit" qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 1536 \
        -kernel "$BOOT_KERNEL" -initrd "$BOOT_INITRD" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 net.ifnames=0" \
        -drive "file=$results/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -virtfs "local,path=$results/share,mount_tag=nh,security_model=none" \
        -nic none -display none -monitor none -serial "file:$results/console-$step.log" \
        -no-reboot </dev/null >"$results/qemu-$step.log" 2>&1 || rc=$?
    BOOT_WALL=$(($(date +%s) - t0))
    if [[ $rc -ne 0 || ! -s $results/share/out/$step.rc ]]; then
        if [[ $rc -eq 124 ]]; then
            echo "# boot $step: timed out after ${limit}s"
        else
            echo "# boot $step: QEMU exit $rc, no result from the guest"
        fi
        tail -n 30 "$results/console-$step.log" | sed 's/^/#   /'
        return 1
    fi
    return 0
}
