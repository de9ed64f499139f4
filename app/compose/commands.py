"""`dockyard compose ...`: its argparse tree and the dispatch to the verbs."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from app.compose import build, lifecycle, project, up
from app.compose.errors import ComposeError
from app.compose.model import Project
from app.compose.output import Printer
from app.engine_client import EngineClient


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("compose", help="define and run multi-container applications")
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        dest="files",
        metavar="FILE",
        help="compose file (repeatable; later files override)",
    )
    p.add_argument("-p", "--project-name", help="project name (default: directory name)")
    p.add_argument(
        "--project-directory",
        metavar="DIR",
        help="directory that relative paths and .env are resolved against",
    )
    verbs = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    v = verbs.add_parser("up", help="create and start the services' containers")
    v.add_argument("-d", "--detach", action="store_true", help="run in the background")
    v.add_argument("--remove-orphans", action="store_true")
    v.add_argument("--build", action="store_true", help="build images before starting")
    v.add_argument("services", nargs="*", metavar="SERVICE")

    v = verbs.add_parser("build", help="build the services' images")
    v.add_argument("--no-cache", action="store_true", help="do not use the step cache")
    v.add_argument("--pull", action="store_true", help="always pull newer base images")
    v.add_argument("services", nargs="*", metavar="SERVICE")

    v = verbs.add_parser("down", help="stop and remove containers and networks")
    v.add_argument(
        "-v",
        "--volumes",
        action="store_true",
        help="also remove named volumes and anonymous volumes",
    )
    v.add_argument("--remove-orphans", action="store_true")

    v = verbs.add_parser("ps", help="list the project's containers")
    v.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    v.add_argument("-q", "--quiet", action="store_true", help="only ids")
    v.add_argument("services", nargs="*", metavar="SERVICE")

    v = verbs.add_parser("logs", help="show the services' output")
    v.add_argument("-f", "--follow", action="store_true")
    v.add_argument("-n", "--tail", default="all", help="lines from the end of each log")
    v.add_argument("-t", "--timestamps", action="store_true")
    v.add_argument("--no-color", action="store_true")
    v.add_argument("services", nargs="*", metavar="SERVICE")

    for verb, text in (
        ("start", "start existing containers"),
        ("stop", "stop containers"),
        ("restart", "restart containers"),
        ("pull", "pull the services' images"),
    ):
        v = verbs.add_parser(verb, help=text)
        v.add_argument("services", nargs="*", metavar="SERVICE")

    verbs.add_parser("config", help="print the normalized, interpolated compose file")
    p.set_defaults(run=run)


# Verbs that work from the project label alone when there is no compose file.
WITHOUT_FILE = {"down", "ps", "logs", "stop", "restart"}


def run(args: argparse.Namespace, client_host: str | None) -> int:
    opts = project.Options(args.files, args.project_name, args.project_directory)
    out = Printer(colour=False if getattr(args, "no_color", False) else None)
    proj = _load(opts, args.verb)
    if args.verb == "config":
        assert proj is not None  # config needs a file; _load raised otherwise
        out.out.write(yaml.safe_dump(proj.to_dict(), sort_keys=False, default_flow_style=False))
        return 0
    name = proj.name if proj else project.name_only(opts)
    assert name is not None
    client = EngineClient(client_host)
    services: list[str] = list(getattr(args, "services", []) or [])
    if args.verb == "up":
        assert proj is not None
        return up.up(
            client, proj, services, out, args.detach, args.remove_orphans, rebuild=args.build
        )
    if args.verb == "build":
        assert proj is not None
        return build.build(client, proj, services, out, args.no_cache, args.pull)
    if args.verb == "down":
        return lifecycle.down(client, name, proj, out, args.volumes, args.remove_orphans)
    if args.verb == "ps":
        return lifecycle.ps(client, name, services, args.all, args.quiet, out)
    if args.verb == "logs":
        return lifecycle.show_logs(
            client, name, proj, services, out, args.follow, str(args.tail), args.timestamps
        )
    if args.verb == "stop":
        return lifecycle.stop(client, name, proj, services, out)
    if args.verb == "restart":
        return lifecycle.restart(client, name, proj, services, out)
    assert proj is not None
    if args.verb == "start":
        return lifecycle.start(client, proj, services, out)
    return lifecycle.pull(client, proj, services, out)


def _load(opts: project.Options, verb: str) -> Project | None:
    """The project; verbs in WITHOUT_FILE fall back to -p NAME when there is no file."""
    try:
        return project.load(opts)
    except ComposeError as e:
        no_file = str(e).startswith("no configuration file provided")
        if no_file and verb in WITHOUT_FILE and project.name_only(opts):
            return None
        raise
