#!/usr/bin/python3
"""Baseline for scripts/bench, not part of net-hook: the same job as
hooks/shell-ip-hook.sh (same config file and format), done over netlink with
Debian's python3-pyroute2 instead of running `ip`.

Config /etc/net-hook/vlans.conf, one VLAN a line: NETWORK VID ADDRESS...
"""

import errno
import sys
import xml.etree.ElementTree as ET

CONF = "/etc/net-hook/vlans.conf"


def vlans_of(network):
    vlans = []
    try:
        with open(CONF, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == network:
                    vlans.append((int(parts[1]), parts[2:]))
    except FileNotFoundError:
        pass
    return vlans


def main():
    network, op = sys.argv[1], sys.argv[2]
    if op not in ("started", "stopped"):
        return 0
    vlans = vlans_of(network)
    if not vlans:
        return 0
    bridge = ET.fromstring(sys.stdin.read()).find("./network/bridge").get("name")
    # Imported only here, so that unmanaged networks do not pay for it.
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        if op == "started":
            (br,) = ipr.link_lookup(ifname=bridge)
            for vid, addrs in vlans:
                name = f"{bridge}.{vid}"
                ipr.link("add", ifname=name, kind="vlan", link=br, vlan_id=vid)
                (idx,) = ipr.link_lookup(ifname=name)
                for a in addrs:
                    address, prefixlen = a.split("/")
                    ipr.addr("add", index=idx, address=address, prefixlen=int(prefixlen))
                ipr.link("set", index=idx, state="up")
        else:
            for vid, _ in vlans:
                for idx in ipr.link_lookup(ifname=f"{bridge}.{vid}"):
                    try:
                        ipr.link("del", index=idx)
                    except NetlinkError as e:
                        if e.code != errno.ENODEV:
                            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
