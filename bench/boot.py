#!/usr/bin/env python3
"""Machine cold start: from the qemu backend's start to the first `docker ps` answer through
the forwarded socket, 5 runs (median), broken down by host stage and by the guest's own
stage lines (seconds since the guest kernel started). The machine is created and booted
once first (that boot also makes the data disk's filesystem and saves the boot state), so
each measured run is a cold start of an existing, stopped machine (no QEMU process), as
`dockyard machine start` is for a user: it loads the saved boot state (machine/bootstate.py).
The same run also times boots from power-on (`--fresh-runs`, with saving off), the path
of a machine whose state cannot be used, as the peer figure.

Usage: .venv/bin/python bench/boot.py [--runs 5] [--fresh-runs 2] [--image DIR] [--accel auto]
Writes bench/results/boot.json (the accelerator used is recorded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import sigterm_as_interrupt, table, write_result

from machine import filenames, stages
from machine.backend import MachineSpec
from machine.qemu_backend import DEFAULT_IMAGE, QemuBackend

TARGETS_S = {"tcg": 3.5, "kvm": 1.5, "hvf": 1.5, "whpx": 1.5}


def docker_ps(sock: Path, config: Path) -> None:
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(config))
    env.pop("DOCKER_CONTEXT", None)
    subprocess.run(["docker", "ps"], env=env, check=True, capture_output=True, timeout=120)


def one_run(backend: QemuBackend, config: Path, fresh: bool = False) -> dict[str, Any]:
    backend.spec.saved_boot = not fresh
    t0 = time.monotonic()
    done = backend.start()
    docker_ps(backend.socket_path(), config)
    total = time.monotonic() - t0
    guest = {
        e.stage: e.uptime
        for e in stages.parse_serial(backend.path(filenames.SERIAL_LOG).read_text())
        if not e.failed
    }
    run = {
        "total_s": round(total, 3),
        "stages_s": {s.name: round(s.duration or 0.0, 3) for s in done},
        "guest_uptime_s": guest,
        "accel": backend.status().accel,
    }
    backend.stop(timeout=60)
    return run


def median_of(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    names = list(runs[0][key])
    return {n: round(statistics.median(r[key].get(n, 0.0) for r in runs), 3) for n in names}


def print_tables(result: dict[str, Any], runs: int, fresh: int) -> None:
    saved, booted = result["median_stages_s"], result.get("fresh_median_stages_s", {})
    names = list(saved) + [n for n in booted if n not in saved]
    rows = [[n, cell(saved.get(n)), cell(booted.get(n))] for n in names]
    rows.append(
        [
            "total (to first docker ps)",
            cell(result["median_total_s"]),
            cell(result.get("fresh_median_total_s")),
        ]
    )
    print(
        f"accelerator: {result['accel']}; target {result['target_s']} s; medians of "
        f"{runs} starts from the saved boot and {fresh} from power-on"
    )
    print(table(["host stage", "saved boot s", "power-on s"], rows))
    for label, key in (
        ("saved boot", "median_guest_uptime_s"),
        ("power-on", "fresh_median_guest_uptime_s"),
    ):
        guest = result.get(key, {})
        print(
            table(
                [f"guest stage ({label})", "uptime s"], [[k, f"{v:.2f}"] for k, v in guest.items()]
            )
        )


def cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def main() -> int:
    sigterm_as_interrupt()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh-runs", type=int, default=2)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--accel", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dy-boot-") as tmp:
        spec = MachineSpec(
            name="bench",
            directory=Path(tmp) / "m",
            memory_mb=1024,
            disk_gb=4,
            image_dir=args.image,
            accel=args.accel,
        )
        backend = QemuBackend(spec)
        config = Path(tmp) / "docker-config"
        try:
            first = one_run(backend, config)  # also formats the data disk
            runs = [one_run(backend, config) for _ in range(args.runs)]
            fresh = [one_run(backend, config, fresh=True) for _ in range(args.fresh_runs)]
        finally:
            backend.stop(timeout=30)
    accel = runs[0]["accel"]
    result = {
        "accel": accel,
        "runs": runs,
        "first_boot_s": first["total_s"],
        "median_total_s": round(statistics.median(r["total_s"] for r in runs), 3),
        "median_stages_s": median_of(runs, "stages_s"),
        "median_guest_uptime_s": median_of(runs, "guest_uptime_s"),
        "target_s": TARGETS_S.get(accel),
        "fresh_runs": fresh,
    }
    if fresh:
        result["fresh_median_total_s"] = round(statistics.median(r["total_s"] for r in fresh), 3)
        result["fresh_median_stages_s"] = median_of(fresh, "stages_s")
        result["fresh_median_guest_uptime_s"] = median_of(fresh, "guest_uptime_s")
    path = write_result("boot", result)
    print_tables(result, len(runs), len(fresh))
    print(f"first boot (makes the data disk's filesystem): {first['total_s']:.2f} s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
