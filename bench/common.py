"""Shared benchmark plumbing: an engine with busybox pulled, a podman configured to compare
against, timing, statistics, tables and result files.

Why here: both benchmarks need the same setup and the same guarantee that everything they
started (engine, containers, registry, podman storage) is gone afterwards, even on Ctrl-C.
Each resource is entered into an ExitStack the caller owns.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.engine_process import EngineProcess, mounts_under  # noqa: E402
from tests.registry import push_oci_layout, run_registry  # noqa: E402

IMAGES = REPO / ".cache" / "test-images"
RESULTS = REPO / "bench" / "results"
PODMAN_BRIDGES = "cni-podman*"  # CNI's bridges, one per network; left behind by CNI
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"

[network]
network_backend = "cni"
network_config_dir = "{networks}"
"""


def sigterm_as_interrupt() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks clean up either way."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def ensure_images() -> Path:
    if not (IMAGES / "busybox" / "index.json").is_file():
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "build_test_images.py"), "--out", str(IMAGES)],
            check=True,
            capture_output=True,
        )
    return IMAGES


# -- our engine -------------------------------------------------------------------------


@dataclass
class Ours:
    engine: EngineProcess
    image: str  # the reference to run


@contextlib.contextmanager
def engine_with_busybox() -> Iterator[Ours]:
    """A fresh engine (temp root) with busybox pulled from a local registry it started."""
    images = ensure_images()
    with contextlib.ExitStack() as stack:
        regdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dy-bench-reg-")))
        reg = stack.enter_context(run_registry(regdir))
        push_oci_layout(images / "busybox", reg, "busybox:latest")
        eng = stack.enter_context(EngineProcess())
        ref = f"{reg.host}/busybox:latest"
        eng.docker("pull", "-q", ref, timeout=300)
        image = "busybox" if eng.docker("tag", ref, "busybox", check=False).returncode == 0 else ref
        yield Ours(eng, image)


# -- podman -----------------------------------------------------------------------------


@dataclass
class Podman:
    argv: list[str]  # podman plus --root/--runroot
    env: dict[str, str]
    image: str


@contextlib.contextmanager
def podman_with_busybox() -> Iterator[Podman]:
    """podman with runc, explicit ulimits (see ARCHITECTURE.md), private temp storage and
    busybox imported from our OCI layout (no registry needed)."""
    images = ensure_images()
    tmp = Path(tempfile.mkdtemp(prefix="dy-bench-podman-"))
    conf = tmp / "containers.conf"
    conf.write_text(PODMAN_CONF.format(networks=tmp / "networks"))  # networks made here stay here
    root, runroot = tmp / "root", tmp / "run"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    argv = ["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay"]
    bridges_before = set(Path("/sys/class/net").glob(PODMAN_BRIDGES))
    try:
        dest = f"containers-storage:[overlay@{root}+{runroot}]localhost/busybox:latest"
        subprocess.run(
            ["skopeo", "copy", "-q", f"oci:{images / 'busybox'}:latest", dest],
            check=True,
            capture_output=True,
            env=env,
        )
        yield Podman(argv, env, "localhost/busybox:latest")
    finally:
        subprocess.run([*argv, "rm", "-af"], env=env, capture_output=True, check=False)
        for mnt in mounts_under(tmp):
            subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        for bridge in set(Path("/sys/class/net").glob(PODMAN_BRIDGES)) - bridges_before:
            subprocess.run(["ip", "link", "del", bridge.name], capture_output=True, check=False)


# -- measuring --------------------------------------------------------------------------


def timed_run(cmd: Sequence[str], env: dict[str, str], timeout: float = 120) -> float:
    """Wall seconds of one command; raises with its output if it fails."""
    t0 = time.perf_counter()
    res = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()}")
    return elapsed


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(p90 * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_facts() -> dict[str, Any]:
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_facts(), **data}, indent=2) + "\n")
    return path
