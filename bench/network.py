#!/usr/bin/env python3
"""Network throughput and request latency through our engine, against a host loopback
baseline measured in the same run.

Every path ends at the same server software, busybox httpd serving a SIZE MB file and a
one-line file, so the figures differ only by the path:

  host -> host (loopback)       busybox wget on the host     baseline for the busybox rows
  container -> container        busybox wget, same network   veth, bridge, veth
  host -> host (loopback)       stdlib http.client           baseline for the stdlib rows
  host -> container IP          stdlib http.client           the bridge, no proxy
  host -> published port        stdlib http.client           the userland proxy in the shim

busybox rows are timed by the same shell loop on both sides (elapsed from /proc/uptime,
10 ms resolution, so each loop runs long enough for that not to matter); their latency is a
whole `wget` per request (fork, exec, connect, GET), the same on both sides. stdlib rows
time each request in Python: a new connection, GET, read to the end.

Usage: .venv/bin/python bench/network.py [--size-mb 128] [--rounds 12] [--requests 300]
Writes bench/results/network.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    engine_with_busybox,
    sigterm_as_interrupt,
    summarize,
    table,
    write_result,
)

from tests.engine_process import EngineProcess, kill_quietly, wait_for

NETWORK = "bench-net"
# The busybox loop: $1 fetches of $2 with the wget $3, then the start and end uptimes
# (seconds, 10 ms resolution).
LOOP = (
    'read a _ </proc/uptime; i=0; while [ $i -lt "$1" ]; do '
    '$3 -q -O /dev/null "$2" || exit 1; i=$((i+1)); done; '
    'read b _ </proc/uptime; echo "$a $b"'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_files(root: Path, size_mb: int) -> None:
    with (root / "big").open("wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(size_mb):
            f.write(chunk)
    (root / "small").write_text("ok\n")


@contextlib.contextmanager
def host_httpd(size_mb: int) -> Iterator[str]:
    """busybox httpd on a free loopback port; yields its base URL."""
    root = Path(tempfile.mkdtemp(prefix="dy-bench-net-"))
    serve_files(root, size_mb)
    port = free_port()
    proc = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(root)])
    try:
        assert wait_for(lambda: accepts("127.0.0.1", port)), "host httpd did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        kill_quietly(proc.pid)
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


# -- busybox wget loops -------------------------------------------------------------------


def loop_seconds(argv: list[str], rounds: int, url: str) -> float:
    """Run LOOP with `argv` before it: [] on the host, `docker exec cli` in a container."""
    wget = "wget" if argv else "busybox wget"
    res = subprocess.run(
        [*argv, "sh", "-c", LOOP, "loop", str(rounds), url, wget],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"wget loop failed: {res.stdout} {res.stderr}")
    start, end = (float(x) for x in res.stdout.split())
    return max(end - start, 0.01)


def busybox_row(argv: list[str], base: str, args: argparse.Namespace) -> dict[str, Any]:
    loop_seconds(argv, 1, f"{base}/big")  # warm the page cache and the path
    secs = loop_seconds(argv, args.rounds, f"{base}/big")
    lat = loop_seconds(argv, args.requests, f"{base}/small")
    return {
        "mb_per_s": round(args.size_mb * args.rounds / secs, 1),
        "latency_mean_ms": round(lat / args.requests * 1000, 2),
        "transfer_s": round(secs, 2),
    }


# -- stdlib client ------------------------------------------------------------------------


def get(host: str, port: int, path: str, buf: bytearray) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        total, view = 0, memoryview(buf)
        while n := resp.readinto(view):
            total += n
        if resp.status != 200:
            raise RuntimeError(f"GET {host}:{port}{path} -> {resp.status}")
        return total
    finally:
        conn.close()


def stdlib_row(host: str, port: int, args: argparse.Namespace) -> dict[str, Any]:
    buf = bytearray(1 << 20)
    get(host, port, "/big", buf)
    rates = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        n = get(host, port, "/big", buf)
        rates.append(n / (1 << 20) / (time.perf_counter() - t0))
    samples = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        get(host, port, "/small", buf)
        samples.append(time.perf_counter() - t0)
    lat = summarize(samples)
    return {
        "mb_per_s": round(statistics.median(rates), 1),
        "latency_median_ms": lat["median_ms"],
        "latency_p90_ms": lat["p90_ms"],
    }


# -- the containers -----------------------------------------------------------------------


def start_containers(eng: EngineProcess, image: str, size_mb: int) -> tuple[str, int]:
    """Server `srv` (published on a loopback port) and client `cli` on one user network;
    returns the server's container IP and its published host port."""
    eng.docker("network", "create", NETWORK)
    make = (
        f"mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count={size_mb} 2>/dev/null"
        " && echo ok >/www/small && exec httpd -f -p 80 -h /www"
    )
    eng.docker(
        "run", "-d", "--name", "srv", "--network", NETWORK, "-p", "127.0.0.1::80",
        image, "sh", "-c", make,
    )  # fmt: skip
    eng.docker("run", "-d", "--name", "cli", "--network", NETWORK, image, "sleep", "100000")
    ok = ["exec", "cli", "wget", "-q", "-O", "/dev/null", "http://srv/small"]
    if not wait_for(lambda: eng.docker(*ok, check=False).returncode == 0, timeout=120):
        raise RuntimeError(f"the server container did not answer:\n{eng.log_tail()}")
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    ip = eng.docker("inspect", "-f", fmt, "srv").stdout.strip()
    published = eng.docker("port", "srv", "80").stdout.split()[0]
    return ip, int(published.rsplit(":", 1)[1])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with engine_with_busybox() as ours, host_httpd(args.size_mb) as base:
        eng = ours.engine
        ip, port = start_containers(eng, ours.image, args.size_mb)
        host_port = int(base.rsplit(":", 1)[1])
        docker_exec = ["docker", "--host", eng.host, "exec", "cli"]
        rows["host -> host (loopback), busybox wget"] = busybox_row([], base, args)
        rows["container -> container, busybox wget"] = busybox_row(docker_exec, "http://srv", args)
        rows["host -> host (loopback), stdlib"] = stdlib_row("127.0.0.1", host_port, args)
        rows["host -> container IP (bridge), stdlib"] = stdlib_row(ip, 80, args)
        rows["host -> published port (proxy), stdlib"] = stdlib_row("127.0.0.1", port, args)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=128, help="size of the file fetched")
    ap.add_argument("--rounds", type=int, default=12, help="fetches of the big file per path")
    ap.add_argument("--requests", type=int, default=300, help="small requests per path")
    args = ap.parse_args()
    sigterm_as_interrupt()
    rows = measure(args)
    out = []
    for name, r in rows.items():
        lat = r.get("latency_median_ms", r.get("latency_mean_ms"))
        kind = "median" if "latency_median_ms" in r else "mean"
        out.append([name, r["mb_per_s"], f"{lat} ({kind})", r.get("latency_p90_ms", "-")])
    print(table(["path", "MB/s", "request ms", "p90 ms"], out))
    path = write_result("network", {"args": vars(args), "paths": rows})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
