#!/usr/bin/env python3
"""TCP port forwarding into the machine, the two ways: SSH direct-tcpip (a host listener of
the port forwarder, machine/portlisten.py) against QEMU's user-network `hostfwd_add`.

One machine is booted; a tiny guest server (python3 in the guest, no container needed)
listens on 10.0.2.15. For each way: connect latency (connect, send one byte, read the
one-byte answer; median of --connects) and throughput (read --megabytes the guest sends;
median of 3). The port forwarder keeps the faster TCP way; its choice is in portlisten.py.

Usage: .venv/bin/python bench/forward.py [--image DIR] [--connects 30] [--megabytes 64]
Writes bench/results/forward.json.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import sigterm_as_interrupt, summarize, table, write_result

from machine import filenames, forward, qmp, ssh
from machine.backend import MachineSpec
from machine.portlisten import GUEST_IP, TcpForward
from machine.portplan import Forward
from machine.qemu_backend import DEFAULT_IMAGE, QemuBackend, free_port

GUEST_PORT = 7777
# 'L': answer one byte (latency); 'T<n>': send n MiB of zeros (throughput).
GUEST_SERVER = """
import socket, threading
def serve(c):
    with c:
        cmd = c.recv(16)
        if cmd[:1] == b"L":
            c.sendall(b"x")
        else:
            block = bytes(1 << 20)
            for _ in range(int(cmd[1:])):
                c.sendall(block)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.2.15", 7777))
s.listen(64)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


def connect_latency(port: int) -> float:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(b"L")
        assert c.recv(1) == b"x"
    return time.monotonic() - t0


def throughput(port: int, megabytes: int) -> float:
    t0 = time.monotonic()
    got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
        c.sendall(b"T%d" % megabytes)
        while data := c.recv(1 << 20):
            got += len(data)
    assert got == megabytes << 20, got
    return megabytes / (time.monotonic() - t0)


def measure(port: int, connects: int, megabytes: int) -> dict[str, Any]:
    for _ in range(3):  # warm up (first channel, first slirp socket)
        connect_latency(port)
    lat = [connect_latency(port) for _ in range(connects)]
    mbs = [throughput(port, megabytes) for _ in range(3)]
    return {"connect": summarize(lat), "mb_per_s": round(statistics.median(mbs), 1)}


def main() -> int:
    sigterm_as_interrupt()
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--connects", type=int, default=30)
    parser.add_argument("--megabytes", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dy-fwd-") as tmp:
        spec = MachineSpec(
            "bench", Path(tmp) / "m", memory_mb=1024, disk_gb=4, image_dir=args.image
        )
        backend = QemuBackend(spec)
        try:
            backend.start()
            result = run(backend, args.connects, args.megabytes)
            path = write_result("forward", result)  # before the stop: it may be slow
        finally:
            backend.stop(timeout=30)
    rows = [
        [way, r["connect"]["median_ms"], r["connect"]["p90_ms"], r["mb_per_s"]]
        for way, r in result["ways"].items()
    ]
    print(table(["way", "connect median ms", "p90 ms", "MB/s"], rows))
    print(f"wrote {path}")
    return 0


def run(backend: QemuBackend, connects: int, megabytes: int) -> dict[str, Any]:
    port = int(backend.path(filenames.SSH_PORT).read_text())
    tunnel = forward.Tunnel(lambda: ssh.connect(backend.dir, port, time.monotonic() + 60))
    client = ssh.connect(backend.dir, port, time.monotonic() + 60)
    try:
        chan = client.get_transport().open_session()  # type: ignore[union-attr]
        chan.exec_command(f"python3 -c '{GUEST_SERVER}'")
        time.sleep(3)  # the guest's interpreter starts (TCG)
        ssh_port, qemu_port = free_port(), free_port()
        fwd = Forward("bench", "bench", "tcp", "127.0.0.1", ssh_port, GUEST_IP, GUEST_PORT)
        listener = TcpForward(fwd, tunnel.transport)
        rule = f"tcp:127.0.0.1:{qemu_port}-{GUEST_IP}:{GUEST_PORT}"
        out = qmp.hmp(backend.path(filenames.QMP_SOCK), f"hostfwd_add net0 {rule}")
        assert not out.strip(), out
        try:
            ways = {
                "ssh direct-tcpip": measure(ssh_port, connects, megabytes),
                "qemu hostfwd": measure(qemu_port, connects, megabytes),
            }
        finally:
            listener.close()
    finally:
        client.close()
        tunnel.close()
    return {"accel": backend.status().accel, "megabytes": megabytes, "ways": ways}


if __name__ == "__main__":
    raise SystemExit(main())
