#!/usr/bin/env python3
"""Container start latency: `docker run --rm busybox true` through our engine versus
`podman run --rm busybox true` (runc, explicit ulimits, private storage), N runs each after
warmups, with the default network, with --network none, and on a user network (which adds
the embedded DNS: its listeners and the redirect of 127.0.0.11:53).

Usage: .venv/bin/python bench/container_start.py [--runs 20] [--warmup 2]
Writes bench/results/container_start.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    engine_with_busybox,
    podman_with_busybox,
    sigterm_as_interrupt,
    summarize,
    table,
    timed_run,
    write_result,
)

USER_NET = "bench-start"
VARIANTS = {
    "default network": [],
    "--network none": ["--network", "none"],
    "user network": ["--network", USER_NET],
}


def measure(cmd: list[str], env: dict[str, str], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        timed_run(cmd, env)
    return [timed_run(cmd, env) for _ in range(runs)]


def bench_ours(runs: int, warmup: int) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    with engine_with_busybox() as ours:
        timed_run(["docker", "network", "create", USER_NET], ours.engine.env)
        for name, extra in VARIANTS.items():
            cmd = ["docker", "run", "--rm", *extra, ours.image, "true"]
            try:
                out[name] = {**summarize(measure(cmd, ours.engine.env, runs, warmup)), "cmd": cmd}
            except RuntimeError as e:
                out[name] = {"error": str(e), "cmd": cmd}
    return out


def bench_podman(runs: int, warmup: int) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    with podman_with_busybox() as pm:
        try:
            timed_run([*pm.argv, "network", "create", USER_NET], pm.env)
        except RuntimeError as e:  # the variant then fails with its own error
            print(f"podman network create: {e}", file=sys.stderr)
        for name, extra in VARIANTS.items():
            cmd = [*pm.argv, "run", "--rm", *extra, pm.image, "true"]
            try:
                out[name] = {**summarize(measure(cmd, pm.env, runs, warmup)), "cmd": cmd}
            except RuntimeError as e:
                out[name] = {"error": str(e), "cmd": cmd}
    return out


def ratio(a: dict[str, object], b: dict[str, object]) -> str:
    am, bm = a.get("median_ms"), b.get("median_ms")
    if isinstance(am, float) and isinstance(bm, float) and bm:
        return f"{am / bm:.2f}"
    return "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--skip-ours", action="store_true", help="only measure podman")
    args = ap.parse_args()
    sigterm_as_interrupt()

    ours = {} if args.skip_ours else bench_ours(args.runs, args.warmup)
    podman = {} if args.skip_podman else bench_podman(args.runs, args.warmup)
    rows = []
    for name in VARIANTS:
        o, p = ours.get(name, {}), podman.get(name, {})
        rows.append(
            [
                name,
                o.get("median_ms", "error" if o else "-"),
                o.get("p90_ms", "-"),
                p.get("median_ms", "error" if p else "-"),
                p.get("p90_ms", "-"),
                ratio(o, p),
            ]
        )
    headers = [
        "run --rm busybox true",
        "ours med ms",
        "ours p90",
        "podman med ms",
        "podman p90",
        "ours/podman",
    ]
    print(table(headers, rows))
    for side, res in (("ours", ours), ("podman", podman)):
        for name, r in res.items():
            if "error" in r:
                print(f"{side} {name}: {r['error']}", file=sys.stderr)
    path = write_result(
        "container_start",
        {"runs": args.runs, "warmup": args.warmup, "ours": ours, "podman": podman},
    )
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
