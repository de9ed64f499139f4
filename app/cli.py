"""The `dockyard` command: one argparse tree, a subcommand per area (`compose` now,
`machine` later), each registered by its package's `add_parser`.

Every failure the user can fix prints `error: <what, and what to do>` and exits 1; no
traceback unless DOCKYARD_DEBUG is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from app import machine_cli, qemu_path, support_cli
from app.compose import commands as compose_commands
from app.compose.errors import ComposeError
from app.engine_client import EngineError
from app.firstrun import cli as firstrun_cli
from app.version import version
from machine.errors import MachineError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard", description="Dockyard container manager")
    p.add_argument(
        "-H",
        "--host",
        help="engine address: unix://PATH, tcp://HOST:PORT or ssh://USER@HOST (default: "
        "$DOCKER_HOST, else the docker context of $DOCKER_CONTEXT or the current one, else "
        "unix:///run/dockyard/docker.sock)",
    )
    p.add_argument("--version", action="version", version=f"dockyard {version()}")
    areas = p.add_subparsers(dest="area", metavar="COMMAND", required=True)
    compose_commands.add_parser(areas)
    machine_cli.add_parser(areas)
    firstrun_cli.add_parser(areas)
    support_cli.add_parsers(areas)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    qemu_path.extend_path()  # the app's own QEMU, or Homebrew's, before the PATH given
    try:
        return int(args.run(args, args.host))
    except (ComposeError, EngineError, MachineError) as e:
        if os.environ.get("DOCKYARD_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
