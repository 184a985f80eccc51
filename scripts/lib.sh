# shellcheck shell=bash
# Helpers for scripts/test-all, scripts/bench and scripts/build-deb:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script defines say MESSAGE (its progress line, on its stdout
# or stderr as it prefers).

# installed PKG: the Debian package PKG is installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_install PKG...: install those of the Debian packages that are missing
# (apt-get update once per run, the first time something is missing). Needs
# root for that: otherwise exits 2 naming them. Returns apt-get's status, so
# a caller can treat a package as optional (apt_install P || ...); under
# set -e a failure stops the caller at the call (where an ERR trap sees it).
apt_install() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    say "installing Debian packages: ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        printf 'scripts/%s: installing %s needs root\n' "${0##*/}" "${missing[*]}" >&2
        exit 2
    fi
    if [[ -z ${apt_updated:-} ]]; then
        apt-get update -qq || return
        apt_updated=1
    fi
    # Hosts without a policy-rc.d would start libvirtd here; the VM tier
    # starts its own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return
}

# ensure_vng: virtme-ng's vng (which tests/vm/run boots the VM with), from
# PyPI when it is not on PATH.
ensure_vng() {
    command -v vng >/dev/null && return 0
    say "installing virtme-ng (PyPI)"
    python3 -m pip install -q virtme-ng
}

# debian_mirror: the Debian archive this machine's apt uses (the first
# "deb" URI of a non-security Debian suite in its sources), for debootstrap.
# NET_HOOK_DEBIAN_MIRROR overrides it. Non-zero if none is found.
debian_mirror() {
    if [[ -n ${NET_HOOK_DEBIAN_MIRROR:-} ]]; then
        echo "$NET_HOOK_DEBIAN_MIRROR"
        return 0
    fi
    local uri
    # deb822 (.sources) stanzas, then one-line (.list) entries: deb [opts] URI SUITE ...
    uri=$({
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
            function flush() { if (types ~ /(^| )deb( |$)/ && suites ~ /bookworm|trixie|stable|testing|sid/ &&
                suites !~ /-security/ && enabled !~ /no/ && uris != "") { split(uris, u, " "); print u[1] }
                types = suites = uris = enabled = "" }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { types = $0; sub(/^Types: */, "", types) }
            /^Suites:/ { suites = $0; sub(/^Suites: */, "", suites) }
            /^URIs:/ { uris = $0; sub(/^URIs: */, "", uris) }
            /^Enabled:/ { enabled = $0 }
            END { flush() }'
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {
            i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) ~ /bookworm|trixie|stable|testing|sid/ && $(i + 1) !~ /-security/) print $i }'
    } | sed -n 1p)
    [[ -n $uri ]] || return 1
    echo "${uri%/}"
}

# boot_kernel: the Debian kernel the VM tiers boot: NET_HOOK_VM_KERNEL, else
# the newest /boot/vmlinuz-*-amd64.
boot_kernel() {
    local k=${NET_HOOK_VM_KERNEL:-}
    [[ -n $k ]] || k=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' 2>/dev/null | sort -V | tail -n 1)
    [[ -n $k && -f $k ]] || return 1
    echo "$k"
}

# release_build: `cargo build --release --locked`, then the hook binary
# (net-hook) linked again as a static PIE. libvirt runs it for every network
# event and the dynamic loader was most of its cost (BENCHMARKS.md);
# net-hook-virt links libvirt and stays dynamic. Cargo applies RUSTFLAGS to
# every binary, so the static link is a `cargo rustc` of that binary alone
# (a later plain `cargo build --release` links it dynamically again).
release_build() {
    cargo build --release --locked "$@"
    cargo rustc --release --locked --bin net-hook "$@" -- -C target-feature=+crt-static
}
