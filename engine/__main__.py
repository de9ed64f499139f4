"""`python -m engine serve --root DIR --host unix:///PATH.sock`: the engine, in the foreground."""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

from engine.daemon import Daemon, Options
from engine.errors import EngineError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Docker Engine API on a unix socket")
    serve.add_argument(
        "--root", required=True, type=Path, help="where images, containers and volumes live"
    )
    serve.add_argument(
        "--host",
        default="unix:///run/dockyard/docker.sock",
        help="unix:///PATH.sock (TCP is refused: nothing listens off the socket)",
    )
    serve.add_argument(
        "--exec-root",
        type=Path,
        default=None,
        help="short path for per-container runtime state (default /run/dockyard/<hash>)",
    )
    serve.add_argument(
        "--cgroup-parent", default="dockyard", help="cgroup under which containers go"
    )
    serve.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        help="registry host:port to reach over plain HTTP (localhost is always allowed)",
    )
    serve.add_argument(
        "--bridge",
        default="dockyard0",
        help="device of the default bridge network (at most 15 characters)",
    )
    serve.add_argument(
        "--bip",
        default="",
        help="the default bridge's address and prefix, e.g. 172.26.0.1/16 "
        "(default: the first free 172.17-31.0.0/16)",
    )
    serve.add_argument(
        "--ip",
        default="127.0.0.1",
        help="host address published ports bind by default (0.0.0.0 opens them to the network)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"--host {host!r}: only unix:///path.sock is supported")
    return host.removeprefix("unix://")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    root = args.root.resolve()
    exec_root = (
        args.exec_root
        or Path("/run/dockyard") / hashlib.sha256(str(root).encode()).hexdigest()[:12]
    )
    opts = Options(
        root=root,
        socket=socket_path(args.host),
        exec_root=exec_root,
        cgroup_parent=args.cgroup_parent,
        insecure_registries=args.insecure_registry,
        bridge=args.bridge,
        bip=args.bip,
        host_ip=args.ip,
    )
    try:
        daemon = Daemon(opts)
        daemon.serve()  # sets up networks first: a clash there is a refusal to start too
    except EngineError as exc:
        logging.getLogger("engine").error("cannot start: %s", exc.message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
