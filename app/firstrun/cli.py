"""`dockyard check`: the first-run checks in a terminal, one line each with its fix.

Exits 1 when a check fails (the machine cannot run), 0 when all pass or only warn.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.firstrun import checks
from machine import config, paths

MARKS = {
    checks.Status.OK: "ok",
    checks.Status.WARN: "WARN",
    checks.Status.FAIL: "FAIL",
    checks.Status.SKIPPED: "-",
}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("check", help="check this host before creating a machine")
    p.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        help="a loopback TCP port that must be free (repeatable)",
    )
    p.add_argument(
        "--need-disk",
        default=f"{checks.MIN_FREE_BYTES >> 30}GiB",
        help="free space the data directory needs (default: %(default)s)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, _client_host: str | None) -> int:
    need = config.parse_size(args.need_disk, "g", "--need-disk")
    data_dir = Path(paths.data_dir(paths.Host.current()))
    results = checks.run_all(data_dir, args.port, need)
    for line in render(results):
        print(line)
    return 1 if any(r.blocking for r in results) else 0


def render(results: list[checks.CheckResult]) -> list[str]:
    lines = []
    for r in results:
        lines.append(f"{MARKS[r.status]:<5} {r.name:<12} {r.message}")
        if r.hint and r.status in (checks.Status.WARN, checks.Status.FAIL):
            lines.append(f"{'':<5} {'':<12} fix: {r.hint}")
    return lines
