"""`dockyard diagnostics` and `dockyard reset`: the support commands.

`reset` needs `--yes`: it deletes every machine's data (images, containers, volumes in
it) and cannot be undone, so a script or a typo must not trigger it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app import diagnostics, reset
from machine.errors import ConfigError


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diagnostics", help="zip logs, machine config and a host summary (secrets removed)"
    )
    p.add_argument(
        "-o", "--output", help="zip file to write (default: dockyard-diagnostics-<time>.zip)"
    )
    p.set_defaults(run=run_diagnostics)
    p = subparsers.add_parser(
        "reset", help="factory reset: stop and delete every machine and the app's settings"
    )
    p.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    p.set_defaults(run=run_reset)


def run_diagnostics(args: argparse.Namespace, _client_host: str | None) -> int:
    out = Path(args.output or diagnostics.default_name()).resolve()
    members = diagnostics.collect(out)
    print(f"wrote {out} ({len(members)} files, secrets removed)")
    return 0


def run_reset(args: argparse.Namespace, _client_host: str | None) -> int:
    if not args.yes:
        raise ConfigError(
            "reset deletes every machine (its images, containers and volumes) and the app's "
            "settings",
            "run `dockyard reset --yes` to confirm",
        )
    problems = reset.reset()
    if problems:
        raise ConfigError(
            "reset left machines behind: " + "; ".join(problems),
            "fix the problems above, then run `dockyard reset --yes` again",
        )
    print("Dockyard is back to factory defaults")
    return 0
