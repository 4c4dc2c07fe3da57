"""A DHCP prober, run inside a client network namespace (stdlib only, no kumo import):

    ip netns exec NS python3 bench/dhcp_probe.py --iface eth0 --mac fa:16:3e:.. until-offer --timeout 5
    ip netns exec NS python3 bench/dhcp_probe.py --iface eth0 --mac fa:16:3e:.. watch --interval 0.005

It sends DHCPDISCOVERs (broadcast flag set, so the OFFER comes back broadcast to a plain UDP
socket) for `--mac` and matches OFFERs by transaction id: far finer-grained than a real client
(udhcpc retries once a second at best).

- `until-offer`: prints "ready", then probes every `--interval` until one is answered; prints
  `{"offered": ip, "seconds": since start, "at": wall-clock time}` (`"offered": null` on timeout).
- `watch`: probe continuously; each probe waits `--interval` for its answer. Prints "ready",
  then reads one line on stdin (the signal to stop) and prints
  `{"probes": n, "answered": n, "gaps": [[start, end], ...]}`: the windows (CLOCK_MONOTONIC,
  system-wide, so the caller's clock) in which probes went unanswered.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import threading
import time

SO_BINDTODEVICE = 25


def discover(xid: int, mac: bytes) -> bytes:
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        0,
        xid,
        0,
        0x8000,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        mac + b"\0" * 10,
        b"",
        b"",
    )
    options = b"\x63\x82\x53\x63" + b"\x35\x01\x01" + b"\x37\x03\x01\x03\x79" + b"\xff"
    return header + options


def parse_offer(data: bytes) -> tuple[int, str] | None:
    if len(data) < 240 or data[0] != 2:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    opts = data[240:]
    i = 0
    kind = None
    while i < len(opts) and opts[i] != 255:
        if opts[i] == 0:
            i += 1
            continue
        code, length = opts[i], opts[i + 1]
        if code == 53:
            kind = opts[i + 2]
        i += 2 + length
    if kind != 2:
        return None
    return xid, socket.inet_ntoa(data[16:20])


def open_socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    sock.setblocking(False)
    return sock


def probe(sock: socket.socket, mac: bytes, xid: int, wait: float) -> str | None:
    sock.sendto(discover(xid, mac), ("255.255.255.255", 67))
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                break
            offer = parse_offer(data)
            if offer is not None and offer[0] == xid:
                return offer[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--mac", required=True)
    parser.add_argument("--interval", type=float, default=0.002)
    sub = parser.add_subparsers(dest="mode", required=True)
    until = sub.add_parser("until-offer")
    until.add_argument("--timeout", type=float, default=5.0)
    sub.add_parser("watch")
    args = parser.parse_args()
    mac = bytes.fromhex(args.mac.replace(":", ""))
    sock = open_socket(args.iface)
    xid = int.from_bytes(os.urandom(4), "big")
    if args.mode == "until-offer":
        print("ready", flush=True)
        start = time.monotonic()
        while time.monotonic() - start < args.timeout:
            xid = (xid + 1) & 0xFFFFFFFF
            offered = probe(sock, mac, xid, args.interval)
            if offered:
                row = {"offered": offered, "seconds": time.monotonic() - start, "at": time.time()}
                print(json.dumps(row), flush=True)
                return 0
        print(json.dumps({"offered": None, "seconds": time.monotonic() - start}), flush=True)
        return 1
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    probes = answered = 0
    gaps: list[list[float]] = []
    gap_start: float | None = None
    print("ready", flush=True)
    while not stop.is_set():
        xid = (xid + 1) & 0xFFFFFFFF
        sent = time.monotonic()
        ok = probe(sock, mac, xid, args.interval) is not None
        probes += 1
        if ok:
            answered += 1
            if gap_start is not None:
                gaps.append([gap_start, sent])
                gap_start = None
        elif gap_start is None:
            gap_start = sent
    if gap_start is not None:
        gaps.append([gap_start, time.monotonic()])
    print(json.dumps({"probes": probes, "answered": answered, "gaps": gaps}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
