"""Which source address does a receiver see? For the VM scenarios' un-NAT checks.

recv PORT READY: bind PORT, create the file READY, print the source address
                 of the first datagram (10 s limit) or "timeout".
send HOST PORT:  send a datagram every 0.25 s for 10 s (the first ones may
                 wait for ARP); the caller kills it once the receiver is done.
"""
import socket
import sys
import time

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] == "recv":
    s.bind(("0.0.0.0", int(sys.argv[2])))
    open(sys.argv[3], "w").close()
    s.settimeout(10)
    try:
        print(s.recvfrom(64)[1][0])
    except socket.timeout:
        print("timeout")
else:
    for _ in range(40):
        s.sendto(b"hi", (sys.argv[2], int(sys.argv[3])))
        time.sleep(0.25)
