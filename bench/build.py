#!/usr/bin/env python3
"""Build time: the same multi-step Dockerfile (FROM the busybox test image; ENV, WORKDIR,
COPY, RUN) built cold (--no-cache) and warm (every step from the cache), with the real
docker CLI's classic builder against our engine and with `podman build` (buildah; runc,
explicit ulimits, private storage), N builds each after a first one that fills the cache.

The `copy` case is one COPY of a many-files context (2,000 files, 50 MB): it times how a
COPY layer is written (checksum, tar) rather than RUN containers.

Usage: .venv/bin/python bench/build.py [--runs 5] [--case steps|copy|all]
Writes bench/results/build.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
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

DOCKERFILE = """\
ARG BASE=busybox
FROM $BASE
ENV APP=/app
WORKDIR /app
COPY src/ /app/src/
RUN for i in 1 2 3; do echo "step $i" >> /app/steps.txt; done
COPY config.txt /app/
RUN wc -l /app/src/* > /app/lines.txt && cat /app/config.txt
CMD ["cat", "/app/lines.txt"]
"""
SOURCE_FILES = 50
MANY_DOCKERFILE = """\
ARG BASE=busybox
FROM $BASE
COPY . /ctx/
"""
MANY_FILES = 2000
MANY_BYTES = 50 * 1024 * 1024


def make_context(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "config.txt").write_text("mode=bench\n")
    for i in range(SOURCE_FILES):
        (root / "src" / f"file{i:03}.txt").write_text(f"line {i}\n" * (i + 1))
    return root


def make_many_files_context(root: Path) -> Path:
    """MANY_FILES files of MANY_BYTES in all, 100 to a directory, distinct content."""
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(MANY_DOCKERFILE)
    size = MANY_BYTES // MANY_FILES
    for i in range(MANY_FILES):
        d = root / f"d{i // 100:02}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:04}.bin").write_bytes(os.urandom(64) + bytes(size - 64))
    return root


Builder = Callable[[bool], list[str]]  # no_cache -> argv


def measure(argv_of: Builder, env: dict[str, str], runs: int) -> dict[str, dict[str, object]]:
    """A first build fills the cache (and warms the page cache), then N cold and N warm."""
    timed_run(argv_of(False), env, timeout=600)
    out: dict[str, dict[str, object]] = {}
    for name, no_cache in (("cold (--no-cache)", True), ("warm (all cached)", False)):
        cmd = argv_of(no_cache)
        try:
            samples = [timed_run(cmd, env, timeout=600) for _ in range(runs)]
            out[name] = {**summarize(samples), "cmd": cmd}
        except RuntimeError as e:
            out[name] = {"error": str(e), "cmd": cmd}
    return out


def bench_ours(ctx: Path, runs: int) -> dict[str, dict[str, object]]:
    with engine_with_busybox() as ours:
        env = {**ours.engine.env, "DOCKER_BUILDKIT": "0"}

        def argv(no_cache: bool) -> list[str]:
            extra = ["--no-cache"] if no_cache else []
            base = ["--build-arg", f"BASE={ours.image}"]
            return ["docker", "build", "-q", *extra, *base, "-t", "bench-build", str(ctx)]

        return measure(argv, env, runs)


def bench_podman(ctx: Path, runs: int) -> dict[str, dict[str, object]]:
    with podman_with_busybox() as pm:

        def argv(no_cache: bool) -> list[str]:
            extra = ["--no-cache"] if no_cache else []
            base = ["--build-arg", f"BASE={pm.image}"]
            return [
                *pm.argv,
                "build",
                "-q",
                "--layers",
                *extra,
                *base,
                "-t",
                "bench-build",
                str(ctx),
            ]

        return measure(argv, pm.env, runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--case", choices=("steps", "copy", "all"), default="all")
    args = parser.parse_args()
    sigterm_as_interrupt()
    makers = {"steps": make_context, "copy": make_many_files_context}
    cases = list(makers) if args.case == "all" else [args.case]
    ours: dict[str, dict[str, object]] = {}
    podman: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="dy-bench-build-") as tmp:
        for case in cases:
            ctx = makers[case](Path(tmp) / case)
            ours.update({f"{case} {k}": v for k, v in bench_ours(ctx, args.runs).items()})
            podman.update({f"{case} {k}": v for k, v in bench_podman(ctx, args.runs).items()})
    rows = []
    for name in ours:
        a, b = ours[name], podman.get(name, {})
        ratio = (
            f"{float(str(a['median_ms'])) / float(str(b['median_ms'])):.2f}x"
            if "median_ms" in a and "median_ms" in b
            else "-"
        )
        rows.append([name, a.get("median_ms", "error"), b.get("median_ms", "error"), ratio])
    print(f"docker build, {args.runs} runs each, median ms (ours / podman: lower is better)")
    print(table(["build", "ours", "podman build", "ours/podman"], rows))
    dockerfiles = {"steps": DOCKERFILE, "copy": MANY_DOCKERFILE}
    result = {
        "runs": args.runs,
        "dockerfiles": {c: dockerfiles[c] for c in cases},
        "copy_context": {"files": MANY_FILES, "bytes": MANY_BYTES},
        "ours": ours,
        "podman": podman,
    }
    path = write_result("build", result)
    print(f"wrote {path}")
    failed = any("error" in v for v in [*ours.values(), *podman.values()])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
