#!/usr/bin/env python3
"""The desktop app: time from process start to a visible main window, and memory at idle
with N containers listed.

- Start: `dockyard-desktop` (its own main(), through bench/gui_probe.py) on a fresh engine,
  from spawning the process to the main window's first paint; median of --runs, offscreen
  and, when Xvfb is installed, under Xvfb with the xcb platform (what a Linux desktop does).
- Idle: N running containers created through our engine (`docker run -d ... sleep`), the app
  started on it until the containers page lists all N, then --settle seconds of idle (events
  stream open, stats polled for the rows on screen); RSS and PSS of the app's process.

Usage: .venv/bin/python bench/gui.py [--runs 5] [--n 100] [--settle 5]
Writes bench/results/gui.json. Everything started (engine, containers, Xvfb, the app) is
stopped afterwards, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Ours, engine_with_busybox, sigterm_as_interrupt, table, write_result

from tests.engine_process import pss_kib, rss_kib
from tests.xvfb import xvfb

PROBE = Path(__file__).resolve().parent / "gui_probe.py"


def app_env(display: str | None, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_CONFIG_HOME"] = str(config)  # the app's settings: fresh, not the user's
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/dockyard-bench-bus"
    if display:
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def probe(mode: str, host: str, env: dict[str, str], rows: int = 0) -> subprocess.Popen[str]:
    argv = [sys.executable, str(PROBE), mode, str(rows), "--", "-H", host]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)


def read_event(proc: subprocess.Popen[str], name: str) -> float:
    assert proc.stdout is not None
    for line in proc.stdout:
        event, _, stamp = line.strip().partition(" ")
        if event == name:
            return float(stamp)
    raise RuntimeError(f"the app exited ({proc.wait()}) before reporting {name!r}")


def time_to_window(host: str, env: dict[str, str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs + 1):  # the first run warms the page cache; not counted
        t0 = time.monotonic()
        proc = probe("shown", host, env)
        try:
            samples.append(read_event(proc, "shown") - t0)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return samples[1:]


def start_containers(ours: Ours, n: int) -> int:
    def one(i: int) -> bool:
        cmd = ["run", "-d", "--name", f"gui-{i}", "--network", "none", ours.image, "sleep", "1d"]
        return ours.engine.docker(*cmd, check=False, timeout=300).returncode == 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sum(pool.map(one, range(n)))


def idle_memory(host: str, env: dict[str, str], n: int, settle: float) -> dict[str, float]:
    t0 = time.monotonic()
    proc = probe("idle", host, env, n)
    try:
        read_event(proc, "shown")
        listed = read_event(proc, "listed") - t0
        time.sleep(settle)
        rss, pss = rss_kib(proc.pid), pss_kib(proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the app quits on Ctrl-C
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "listed_s": round(listed, 2),
        "rss_mib": round(rss / 1024, 1),
        "pss_mib": round(pss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=100, help="containers listed at idle")
    ap.add_argument("--settle", type=float, default=5.0, help="idle seconds before measuring")
    args = ap.parse_args()
    sigterm_as_interrupt()
    result: dict[str, object] = {"runs": args.runs, "n": args.n}
    rows = []
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(engine_with_busybox())
        host = ours.engine.host
        config = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dy-gui-bench-")))
        display = stack.enter_context(xvfb())
        platforms = {"offscreen": app_env(None, config)}
        if display:
            platforms["xcb (Xvfb)"] = app_env(display, config)
        start: dict[str, object] = {}
        for name, env in platforms.items():
            samples = time_to_window(host, env, args.runs)
            median = statistics.median(samples)
            start[name] = {
                "median_s": round(median, 3),
                "samples_s": [round(s, 3) for s in samples],
            }
            rows.append(
                (
                    f"start to visible window, {name}",
                    f"{median * 1000:.0f} ms",
                    f"median of {args.runs}",
                )
            )
        result["start_to_window"] = start
        started = start_containers(ours, args.n)
        idle = {}
        for name, env in platforms.items():
            idle[name] = idle_memory(host, env, started, args.settle)
            m = idle[name]
            rows.append(
                (
                    f"idle with {started} containers, {name}",
                    f"RSS {m['rss_mib']} MiB, PSS {m['pss_mib']} MiB",
                    f"listed {m['listed_s']} s after start",
                )
            )
        result["idle"] = {"containers": started, **idle}
    print(table(("measure", "value", "note"), rows))
    print(f"wrote {write_result('gui', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
