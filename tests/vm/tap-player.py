#!/usr/bin/env python3
"""Play a VM behind a tap, as QEMU would attach to it, for the routed scenarios.

    tap-player.py play --tap TAP --mac MAC --ip ADDR --gateway GW
                       --server ADDR [--proto icmp|udp] [--port N]
                       [--timeout S] [--vnet-hdr] [--multi-queue]
    tap-player.py echo-server --port N [--ready FILE] [--timeout S]

play: open the existing tap TAP with TUNSETIFF (IFF_TAP|IFF_NO_PI, as libvirt
does for <target dev=TAP managed='no'/>), then, as a guest with the Ethernet
address MAC and the IPv4 address ADDR whose default gateway is GW:
  1. ARP for GW until the host answers (through the tap: proxy ARP, or the
     gateway address being local to the host);
  2. send an ICMP echo request (--proto icmp, the default) or a UDP datagram
     (--proto udp, to --port, answered by `echo-server`) to the server
     address, framed to the gateway's Ethernet address, once a second;
  3. wait for the reply to come back through the tap: right addresses, ports
     or identifier, payload, and valid checksums.
All the while it answers ARP requests for ADDR (the host ARPs for the guest
unless a permanent neighbour entry exists) and ignores every other frame.
Prints what it saw, one line each, and a last line "tap-player: PASS ..." or
"tap-player: FAIL ..."; exits 0 only if the reply arrived, 1 if it did not
(timeout), 2 on a usage or setup error (no such tap, tap busy, ...).

echo-server: bind UDP port N on all addresses (create FILE once bound) and send
every datagram back to its sender, until --timeout seconds pass without one.

Only the Python 3 standard library; IPv4 only.
"""
import argparse
import fcntl
import ipaddress
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFF_VNET_HDR = 0x4000
# struct virtio_net_hdr, the header the tap prepends with IFF_VNET_HDR (the
# default TUNSETVNETHDRSZ). All zero: no offloads asked for, none enabled.
VNET_HDR_LEN = 10

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
IPPROTO_ICMP = 1
IPPROTO_UDP = 17
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
BROADCAST = b"\xff" * 6


def log(msg):
    print("tap-player: " + msg, flush=True)


def mac_bytes(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError("not a MAC address: %r" % text)
    b = bytes(int(p, 16) for p in parts)
    if b[0] & 1:
        raise ValueError("a multicast MAC cannot be a guest's: %s" % text)
    return b


def mac_text(b):
    return ":".join("%02x" % x for x in b)


def inet_checksum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ------------------------------------------------------------------ building

def ethernet(dst, src, ethertype, payload):
    frame = dst + src + struct.pack("!H", ethertype) + payload
    # The minimum frame (without FCS) is 60 bytes: pad short ones.
    return frame + b"\0" * max(0, 60 - len(frame))


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa)


def ipv4(src, dst, proto, payload, ident):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000,  # DF
                      64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:]
    return hdr + payload


def icmp_echo(ident, seq, data):
    msg = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq) + data
    return msg[:2] + struct.pack("!H", inet_checksum(msg)) + msg[4:]


def udp(src, dst, sport, dport, data):
    length = 8 + len(data)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, length)
    csum = inet_checksum(pseudo + seg) or 0xFFFF  # 0 means "no checksum" in UDP
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


# ------------------------------------------------------------------ parsing

def parse_ipv4(pkt):
    """(src, dst, proto, ttl, payload) of a valid IPv4 packet; raises ValueError."""
    if len(pkt) < 20:
        raise ValueError("short IPv4 header")
    ver_ihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst = struct.unpack(
        "!BBHHHBBH4s4s", pkt[:20])
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or total < ihl or len(pkt) < total:
        raise ValueError("malformed IPv4 header")
    if inet_checksum(pkt[:ihl]) != 0:
        raise ValueError("bad IPv4 header checksum")
    if frag & 0x3FFF:  # more fragments, or an offset: not ours to reassemble
        raise ValueError("IPv4 fragment")
    return src, dst, proto, ttl, pkt[ihl:total]


class Player:
    def __init__(self, args):
        self.tap = args.tap
        self.mac = mac_bytes(args.mac)
        self.ip = ipaddress.IPv4Address(args.ip).packed
        self.gateway = ipaddress.IPv4Address(args.gateway).packed
        self.server = ipaddress.IPv4Address(args.server).packed
        self.proto = args.proto
        self.port = args.port
        self.timeout = args.timeout
        self.vnet_hdr = args.vnet_hdr
        self.gw_mac = None
        self.ident = os.getpid() & 0xFFFF
        self.ip_ident = 1
        self.sport = 40000 + os.getpid() % 20000
        self.token = b"net-hook tap-player %d %d" % (os.getpid(), int(time.time()))
        self.seq = 0
        self.sent_seqs = set()
        self.t0 = time.monotonic()
        self.ignored = 0
        self.fd = self.open_tap(args.multi_queue)

    def since(self):
        return "%.2fs" % (time.monotonic() - self.t0)

    def open_tap(self, multi_queue):
        flags = IFF_TAP | IFF_NO_PI
        if self.vnet_hdr:
            flags |= IFF_VNET_HDR
        if multi_queue:
            flags |= IFF_MULTI_QUEUE
        name = self.tap.encode()
        if not 0 < len(name) < 16:
            raise SetupError("bad interface name %r" % self.tap)
        if not os.path.exists("/sys/class/net/" + self.tap):
            raise SetupError("no interface %s (the tap must exist: managed='no' mode)" % self.tap)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name, flags))
        except OSError as e:
            os.close(fd)
            hint = {16: " (busy: another process, e.g. QEMU, holds this single-queue tap)",
                    22: " (not a tap, or its multi-queue flag differs: try --multi-queue)",
                    1: " (not permitted: root, or the tap's owner, needed)"}.get(e.errno, "")
            raise SetupError("TUNSETIFF %s: %s%s" % (self.tap, e.strerror, hint))
        log("attached to %s (IFF_TAP|IFF_NO_PI%s%s) as %s %s" % (
            self.tap, "|IFF_VNET_HDR" if self.vnet_hdr else "",
            "|IFF_MULTI_QUEUE" if multi_queue else "",
            mac_text(self.mac), socket.inet_ntoa(self.ip)))
        return fd

    def send(self, frame):
        if self.vnet_hdr:
            frame = b"\0" * VNET_HDR_LEN + frame
        os.write(self.fd, frame)

    def recv(self, until):
        """The next frame, or None at the monotonic deadline `until`."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            try:
                frame = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if self.vnet_hdr:
                frame = frame[VNET_HDR_LEN:]
            if len(frame) >= 14:
                return frame

    # -------------------------------------------------------------- frames in

    def handle(self, frame):
        """Deal with one received frame; True if it is the reply we wait for."""
        dst, src = frame[0:6], frame[6:12]
        (ethertype,) = struct.unpack("!H", frame[12:14])
        body = frame[14:]
        if dst != self.mac and dst != BROADCAST:
            self.ignored += 1
            return False
        if ethertype == ETH_P_ARP:
            self.handle_arp(src, body)
            return False
        if ethertype == ETH_P_IP and dst == self.mac:
            return self.handle_ipv4(src, body)
        self.ignored += 1
        return False

    def handle_arp(self, eth_src, body):
        if len(body) < 28:
            return
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack(
            "!HHBBH6s4s6s4s", body[:28])
        if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
            return
        if op == ARP_REQUEST and tpa == self.ip:
            self.send(ethernet(sha, self.mac, ETH_P_ARP,
                               arp(ARP_REPLY, self.mac, self.ip, sha, spa)))
            log("%s: answered the host's ARP request (who-has %s tell %s, from %s)" % (
                self.since(), socket.inet_ntoa(tpa), socket.inet_ntoa(spa), mac_text(sha)))
        elif op == ARP_REPLY and spa == self.gateway and tha == self.mac and tpa == self.ip:
            if self.gw_mac is None:
                log("%s: ARP reply: %s is-at %s (frame from %s)" % (
                    self.since(), socket.inet_ntoa(spa), mac_text(sha), mac_text(eth_src)))
            self.gw_mac = sha

    def handle_ipv4(self, eth_src, body):
        try:
            src, dst, proto, ttl, payload = parse_ipv4(body)
        except ValueError as e:
            log("%s: dropped an IPv4 frame from %s: %s" % (self.since(), mac_text(eth_src), e))
            return False
        if dst != self.ip:
            self.ignored += 1
            return False
        where = "from %s (Ethernet %s), TTL %d" % (socket.inet_ntoa(src), mac_text(eth_src), ttl)
        if proto == IPPROTO_ICMP and self.proto == "icmp":
            if len(payload) < 8 or inet_checksum(payload) != 0:
                log("%s: dropped an ICMP message %s: short or bad checksum" % (self.since(), where))
                return False
            typ, code, _c, ident, seq = struct.unpack("!BBHHH", payload[:8])
            if typ == 3:
                log("%s: ICMP destination unreachable (code %d) %s" % (self.since(), code, where))
                return False
            if (typ == ICMP_ECHO_REPLY and src == self.server and ident == self.ident and
                    seq in self.sent_seqs and payload[8:] == self.token):
                log("%s: ICMP echo reply %s, id %d seq %d, payload intact" % (
                    self.since(), where, ident, seq))
                return True
        elif proto == IPPROTO_UDP and self.proto == "udp":
            if len(payload) < 8:
                return False
            sport, dport, length, csum = struct.unpack("!HHHH", payload[:8])
            if length < 8 or length > len(payload):
                log("%s: dropped a malformed UDP datagram %s" % (self.since(), where))
                return False
            seg = payload[:length]
            pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, length)
            if csum != 0 and inet_checksum(pseudo + seg) != 0:
                log("%s: dropped a UDP datagram with a bad checksum %s" % (self.since(), where))
                return False
            if src == self.server and sport == self.port and dport == self.sport and seg[8:] == self.token:
                log("%s: UDP reply %s, port %d -> %d, payload intact" % (
                    self.since(), where, sport, dport))
                return True
        elif proto == IPPROTO_ICMP and len(payload) >= 8 and payload[0] == 3:
            log("%s: ICMP destination unreachable (code %d) %s" % (self.since(), payload[1], where))
            return False
        self.ignored += 1
        return False

    # -------------------------------------------------------------- frames out

    def send_arp_request(self):
        self.send(ethernet(BROADCAST, self.mac, ETH_P_ARP,
                           arp(ARP_REQUEST, self.mac, self.ip, b"\0" * 6, self.gateway)))

    def send_probe(self):
        self.seq += 1
        if self.proto == "icmp":
            payload, proto = icmp_echo(self.ident, self.seq, self.token), IPPROTO_ICMP
            self.sent_seqs.add(self.seq)
            what = "ICMP echo request id %d seq %d" % (self.ident, self.seq)
        else:
            payload = udp(self.ip, self.server, self.sport, self.port, self.token)
            proto = IPPROTO_UDP
            what = "UDP datagram port %d -> %d" % (self.sport, self.port)
        pkt = ipv4(self.ip, self.server, proto, payload, self.ip_ident)
        self.ip_ident = (self.ip_ident + 1) & 0xFFFF
        self.send(ethernet(self.gw_mac, self.mac, ETH_P_IP, pkt))
        log("%s: sent %s to %s via the gateway %s (%s)" % (
            self.since(), what, socket.inet_ntoa(self.server),
            socket.inet_ntoa(self.gateway), mac_text(self.gw_mac)))

    def run(self):
        deadline = self.t0 + self.timeout
        next_send = 0.0
        arp_tries = 0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_send:
                if self.gw_mac is None:
                    arp_tries += 1
                    self.send_arp_request()
                    if arp_tries == 1:
                        log("%s: ARP who-has %s tell %s" % (
                            self.since(), socket.inet_ntoa(self.gateway), socket.inet_ntoa(self.ip)))
                else:
                    self.send_probe()
                next_send = now + 1.0
            frame = self.recv(min(next_send, deadline))
            if frame is None:
                continue
            had_gw = self.gw_mac is not None
            if self.handle(frame):
                log("PASS: the reply from %s came back through %s after %s" % (
                    socket.inet_ntoa(self.server), self.tap, self.since()))
                return 0
            if not had_gw and self.gw_mac is not None:
                next_send = 0.0  # the gateway is known now: send the probe at once
        if self.gw_mac is None:
            log("FAIL: no ARP reply for the gateway %s within %ss (%d requests)" % (
                socket.inet_ntoa(self.gateway), self.timeout, arp_tries))
        else:
            log("FAIL: no reply from %s within %ss (%d sent, %d other frames ignored)" % (
                socket.inet_ntoa(self.server), self.timeout, self.seq, self.ignored))
        return 1


class SetupError(Exception):
    pass


def echo_server(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", args.port))
    if args.ready:
        open(args.ready, "w").close()
    s.settimeout(args.timeout)
    n = 0
    try:
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
            n += 1
            print("echo-server: echoed %d bytes to %s:%d" % (len(data), peer[0], peer[1]), flush=True)
    except socket.timeout:
        print("echo-server: %d datagrams echoed; idle for %ss, exiting" % (n, args.timeout), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("play", help="play the VM behind an existing tap")
    p.add_argument("--tap", required=True)
    p.add_argument("--mac", required=True, help="the guest's MAC, e.g. 52:54:00:1e:10:0a")
    p.add_argument("--ip", required=True, help="the guest's IPv4 address")
    p.add_argument("--gateway", required=True, help="the guest's default gateway")
    p.add_argument("--server", required=True, help="the address to reach through the host")
    p.add_argument("--proto", choices=("icmp", "udp"), default="icmp")
    p.add_argument("--port", type=int, default=7, help="the server's UDP port (--proto udp)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole exchange")
    p.add_argument("--vnet-hdr", action="store_true", help="attach with IFF_VNET_HDR, as for virtio")
    p.add_argument("--multi-queue", action="store_true", help="attach with IFF_MULTI_QUEUE")
    e = sub.add_parser("echo-server", help="a UDP echo server (run it in the server's namespace)")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--ready", help="a file to create once the socket is bound")
    e.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    if args.cmd == "echo-server":
        return echo_server(args)
    try:
        if not 0 < args.port < 65536:
            raise SetupError("bad port %d" % args.port)
        player = Player(args)
    except (SetupError, ValueError) as err:
        log("error: %s" % err)
        return 2
    except OSError as err:
        log("error: %s" % err)
        return 2
    try:
        return player.run()
    finally:
        os.close(player.fd)


if __name__ == "__main__":
    sys.exit(main())
