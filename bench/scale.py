#!/usr/bin/env python3
"""Scale: start N idle containers (`docker run -d busybox sleep 100000`) on a fresh engine,
then report the engine's RSS, the per-container cost (RSS, and PSS which splits the pages
shims share with their template, of this engine's shims / N)
and `docker ps` latency (median of 5). Everything started is removed afterwards.

Usage: .venv/bin/python bench/scale.py [--n 100] [--jobs 4]
Writes bench/results/scale.json (or scale-N.json with --per-n).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Ours,
    engine_with_busybox,
    sigterm_as_interrupt,
    table,
    timed_run,
    write_result,
)

from tests.engine_process import pss_kib, rss_kib


def start_containers(ours: Ours, n: int, jobs: int) -> tuple[int, float, list[str]]:
    """Start n containers with `jobs` docker clients at once; returns (started, secs, errors)."""
    eng = ours.engine
    errors: list[str] = []

    def one(i: int) -> bool:
        # Named: the generated-name space (23 x 21 names) runs out near 480 containers, and
        # parallel creates may then draw the same free name (engine/containers/names.py).
        cmd = ["run", "-d", "--name", f"scale-{i}", "--network", "none", ours.image]
        res = eng.docker(*cmd, "sleep", "100000", check=False, timeout=300)
        if res.returncode != 0:
            errors.append(res.stderr.strip())
        return res.returncode == 0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        started = sum(pool.map(one, range(n)))
    return started, time.perf_counter() - t0, errors[:5]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=4, help="parallel docker clients")
    ap.add_argument("--per-n", action="store_true", help="write scale-N.json")
    args = ap.parse_args()
    sigterm_as_interrupt()

    with engine_with_busybox() as ours:
        eng = ours.engine
        assert eng.proc is not None
        idle_rss = rss_kib(eng.proc.pid)
        started, secs, errors = start_containers(ours, args.n, args.jobs)
        time.sleep(1)  # let shims settle after their start-up allocations
        engine_rss = rss_kib(eng.proc.pid)
        shims = eng.shim_pids()
        shim_rss = sum(rss_kib(p) for p in shims)
        shim_pss = sum(pss_kib(p) for p in shims)
        ps_times = [timed_run(["docker", "ps"], eng.env) for _ in range(5)]
        listed = len(eng.docker("ps", "-q").stdout.split())
        result = {
            "n": args.n,
            "started": started,
            "running_listed": listed,
            "start_all_s": round(secs, 2),
            "engine_rss_idle_kib": idle_rss,
            "engine_rss_kib": engine_rss,
            "shims": len(shims),
            "shim_rss_total_kib": shim_rss,
            "per_container_kib": round(shim_rss / max(started, 1), 1),
            "shim_pss_total_kib": shim_pss,
            "per_container_pss_kib": round(shim_pss / max(started, 1), 1),
            "docker_ps_median_ms": round(statistics.median(ps_times) * 1000, 1),
            "errors": errors,
        }
    rows = [
        ["containers started / listed", f"{started} / {listed} of {args.n}"],
        ["time to start all", f"{secs:.1f} s ({args.jobs} clients)"],
        ["engine RSS idle -> loaded", f"{idle_rss / 1024:.1f} -> {engine_rss / 1024:.1f} MiB"],
        ["shims, total RSS", f"{len(shims)}, {shim_rss / 1024:.1f} MiB"],
        ["per-container (shim RSS / N)", f"{result['per_container_kib']} KiB"],
        ["per-container (shim PSS / N)", f"{result['per_container_pss_kib']} KiB"],
        ["docker ps (median of 5)", f"{result['docker_ps_median_ms']} ms"],
    ]
    print(table(["scale", "value"], rows))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    path = write_result(f"scale-{args.n}" if args.per_n else "scale", result)
    print(f"written {path}")
    return 0 if started == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
