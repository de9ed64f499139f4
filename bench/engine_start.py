#!/usr/bin/env python3
"""Engine start latency: from exec of `python -m engine serve` to GET /_ping answering 200,
median of N, for an empty root and for a root holding 50 stopped and 5 running containers
(the running ones are recovered from their shims, as after a guest reboot of the engine).

Besides wall time it records the engine's own CPU time (user+sys from /proc at the moment
/_ping answers): on this shared 2-core host the wall time swings with other people's load,
the CPU time much less, and under TCG the wall time is roughly that CPU time scaled.
The peer is `podman info` from cold (a fresh process reading its storage), the closest thing
podman has to "the engine is up and answers".

Usage: .venv/bin/python bench/engine_start.py [--runs 10] [--skip-podman]
Writes bench/results/engine_start.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    engine_with_busybox,
    podman_with_busybox,
    sigterm_as_interrupt,
    summarize,
    table,
    timed_run,
    write_result,
)

from tests.engine_process import EngineProcess, api_call

STOPPED, RUNNING = 50, 5
TICKS = os.sysconf("SC_CLK_TCK")
PYCACHE = REPO / ".cache" / "engine-start-pycache"


def bytecode_env() -> dict[str, str]:
    """The engine's environment with bytecode kept in a private cache.

    The guest image ships precompiled bytecode (vmimage/layout.py compile_tree), so a
    start there never compiles; a host with PYTHONDONTWRITEBYTECODE set would compile
    every module at every start and measure the compiler instead."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_bytecode() -> None:
    """Import what a start imports once, so the bytecode cache holds all of it."""
    subprocess.run(
        [sys.executable, "-c", "import engine.__main__"], cwd=REPO, env=bytecode_env(), check=True
    )


def cpu_seconds(pid: int) -> float:
    """user+sys of a live process, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        status, _ = api_call(sock, "GET", "/_ping", timeout=5)
    except OSError:
        return False
    return status == 200


def one_start(eng: EngineProcess, timeout: float = 60.0) -> tuple[float, float]:
    """Start eng's daemon; (wall seconds to the first 200 from /_ping, its CPU seconds then).

    Polls every 2 ms instead of EngineProcess.start's 50 ms, so the poll adds little."""
    with contextlib.suppress(FileNotFoundError):
        eng.socket.unlink()
    with eng.log_path.open("ab") as log:
        t0 = time.perf_counter()
        eng.proc = subprocess.Popen(
            eng.argv(),
            cwd=REPO,
            env=bytecode_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    while time.perf_counter() - t0 < timeout:
        if eng.proc.poll() is not None:
            raise RuntimeError(f"engine exited {eng.proc.returncode}:\n{eng.log_tail()}")
        if answers(eng.socket):
            wall = time.perf_counter() - t0
            return wall, cpu_seconds(eng.proc.pid)
        time.sleep(0.002)
    raise RuntimeError(f"engine did not answer /_ping in {timeout}s:\n{eng.log_tail()}")


def series(samples: list[tuple[float, float]]) -> dict[str, object]:
    walls = [w for w, _ in samples]
    cpus = sorted(c for _, c in samples)
    return {**summarize(walls), "cpu_median_ms": round(cpus[len(cpus) // 2] * 1000, 1)}


def bench_empty(runs: int) -> dict[str, object]:
    """A fresh root each time: nothing to recover, the default network made from scratch."""
    samples = []
    for _ in range(runs):
        eng = EngineProcess()  # not `with`: entering it would start the daemon itself
        try:
            samples.append(one_start(eng))
        finally:
            eng.close()
    return series(samples)


def bench_populated(runs: int) -> dict[str, object]:
    with engine_with_busybox() as ours:
        eng = ours.engine
        for i in range(STOPPED):
            eng.docker("create", "--name", f"stopped{i}", ours.image, "true")
        for i in range(RUNNING):
            eng.docker("run", "-d", "--name", f"running{i}", ours.image, "sleep", "3600")
        samples = []
        for _ in range(runs):
            eng.stop()  # containers keep running in their shims
            samples.append(one_start(eng))
        running = eng.docker("ps", "-q").stdout.split()
        if len(running) != RUNNING:
            raise RuntimeError(f"{len(running)} containers running after the restarts")
        return series(samples)


def bench_podman(runs: int) -> dict[str, object]:
    with podman_with_busybox() as pm:
        cmd = [*pm.argv, "info"]
        timed_run(cmd, pm.env)  # the first call creates storage; that is not a start
        return {**summarize([timed_run(cmd, pm.env) for _ in range(runs)]), "cmd": cmd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--skip-populated", action="store_true")
    args = ap.parse_args()
    sigterm_as_interrupt()
    warm_bytecode()

    results: dict[str, dict[str, object]] = {"empty root": bench_empty(args.runs)}
    if not args.skip_populated:
        results[f"{STOPPED} stopped + {RUNNING} running"] = bench_populated(args.runs)
    if not args.skip_podman:
        results["podman info (peer)"] = bench_podman(args.runs)
    rows = [
        [name, r.get("median_ms"), r.get("p90_ms"), r.get("cpu_median_ms", "-")]
        for name, r in results.items()
    ]
    print(table(["start to /_ping", "median ms", "p90 ms", "engine cpu ms"], rows))
    path = write_result("engine_start", {"runs": args.runs, "results": results})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
