#!/usr/bin/env python3
"""`make screenshots`: one PNG per page of the desktop app, for docs/screenshots/.

Taken under Xvfb with the real xcb platform (what a Linux desktop runs), against a real
engine holding what a person's engine holds: a compose stack, a few containers in every
state, tagged images, volumes and networks. The engine is a native *machine* in a temporary
DOCKYARD_HOME, started with `dockyard machine start --backend native`, so the same engine
fills the lists and gives the Machine page a real start (stages, log, graphs, ports).

Everything started here (registry, Xvfb, the machine and its containers) is stopped by PID
or removed by `dockyard machine rm` on the way out, even on failure or Ctrl-C. Needs root
(the engine) and Xvfb (scripts/install_deps.sh installs both Xvfb and Qt's xcb libraries).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine_process import CGROUP_FS, free_bridge_name, free_port, remove_cgroup_tree  # noqa: E402
from tests.registry import push_oci_layout, run_registry  # noqa: E402
from tests.xvfb import xvfb  # noqa: E402

OUT = REPO / "docs" / "screenshots"
IMAGES = REPO / ".cache" / "test-images"
STACK = REPO / "tests" / "fixtures" / "stack" / "compose.yaml"
# A worker that logs a line a second, some in colour and some on stderr, and burns a little
# CPU so the graphs have something to draw.
WORKER = r"""
i=0
while true; do
  i=$((i+1)); n=0; while [ $n -lt 3000 ]; do n=$((n+1)); done
  echo "$(date -u +%H:%M:%S) INFO  job $i: fetched 42 rows from db:5432"
  t=$(date -u +%H:%M:%S)
  [ $((i % 3)) -eq 0 ] && printf '\033[33m%s WARN  job %s: retrying upstream\033[0m\n' "$t" $i
  [ $((i % 5)) -eq 0 ] && echo "$(date -u +%H:%M:%S) ERROR job $i: upstream timed out after 2s" >&2
  echo "$(date -u +%H:%M:%S) INFO  job $i: done in 0.${i}s"
  sleep 1
done
"""


def run(argv: list[str], env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


class Machine:
    """A native machine in a temp DOCKYARD_HOME, driven as a user drives it (the CLI)."""

    def __init__(self, base: Path) -> None:
        self.home = base / "home"
        self.sock = self.home / "default" / "docker.sock"
        self.bridge = free_bridge_name()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")},
            "DOCKYARD_HOME": str(self.home),
            "DOCKER_CONFIG": str(base / "docker-config"),
            "PYTHONPATH": str(REPO),
        }
        self.cgroup_parent = f"dockyard-shots-{os.getpid()}"
        self.engine_args = [
            f"--engine-arg=--bridge={self.bridge}",
            f"--engine-arg=--cgroup-parent={self.cgroup_parent}",
            f"--engine-arg=--exec-root={base / 'run'}",
        ]

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def dockyard(self, *args: str, check: bool = True) -> str:
        return run([sys.executable, "-m", "app.cli", *args], self.env, check)

    def docker(self, *args: str, check: bool = True) -> str:
        return run(["docker", "-H", self.host, *args], self.env, check)

    def start(self) -> None:
        self.dockyard("machine", "start", "--backend", "native", *self.engine_args)

    def remove(self) -> None:
        """Containers first with -f (a stop would wait out each one's timeout), then rm."""
        ids = self.docker("ps", "-aq", check=False).split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        self.dockyard("machine", "rm", check=False)
        for top in CGROUP_FS.glob(f"*/{self.cgroup_parent}"):
            remove_cgroup_tree(top)  # the engine leaves its (now empty) parent behind


def populate(m: Machine, registry: str) -> None:
    """What a working engine holds: images, a compose stack, containers in every state,
    volumes and networks."""
    m.docker("pull", f"{registry}/busybox")
    for tag in ("busybox:latest", "acme/api:1.4", "acme/worker:2.0"):
        m.docker("tag", f"{registry}/busybox", tag)
    m.docker("rmi", f"{registry}/busybox")  # the pull dialog's shot pulls multilayer afresh
    env = {**m.env, "STACK_IMAGE": "busybox", "WEB_PORT": str(free_port())}
    compose = [sys.executable, "-m", "app.cli", "-H", m.host, "compose", "-f", str(STACK)]
    run([*compose, "-p", "shop", "up", "-d"], env)
    m.docker("volume", "create", "pgdata")
    m.docker("volume", "create", "build-cache")
    m.docker("network", "create", "backend")
    m.docker("network", "create", "--internal", "vault")
    worker = ["--name", "worker", "--network", "backend", "acme/worker:2.0", "sh", "-c", WORKER]
    m.docker("run", "-d", *worker)
    m.docker(
        "run", "-d", "--name", "api", "-p", f"127.0.0.1:{free_port()}:80",
        "-v", "pgdata:/data", "acme/api:1.4", "httpd", "-f", "-p", "80",
    )  # fmt: skip
    m.docker("run", "--name", "migrate", "busybox", "sh", "-c", "exit 3", check=False)
    m.docker("create", "--name", "scratch", "-v", "build-cache:/cache", "busybox", "true")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the engine needs root: run make screenshots as root")
    if not (IMAGES / "busybox" / "index.json").is_file():
        run(
            [sys.executable, "scripts/build_test_images.py", "--out", str(IMAGES)], dict(os.environ)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dy-shots-")))
        registry = stack.enter_context(run_registry(base / "registry"))
        for name in ("busybox", "multilayer"):
            push_oci_layout(IMAGES / name, registry, f"{name}:latest")
        machine = Machine(base)
        stack.callback(machine.remove)
        machine.start()
        populate(machine, registry.host)
        display = stack.enter_context(xvfb())
        if display is None:
            raise SystemExit(
                "Xvfb is missing or did not start: run scripts/install_deps.sh (make deps)"
            )
        env = {
            **machine.env,
            "DISPLAY": display,
            "QT_QPA_PLATFORM": "xcb",
            "XDG_CONFIG_HOME": str(base / "xdg"),
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/dockyard-shots-bus",
        }
        shooter = [sys.executable, str(REPO / "scripts" / "shoot_pages.py")]
        shooter += ["--host", machine.host, "--out", str(args.out)]
        shooter += ["--pull", f"{registry.host}/multilayer"]
        done = subprocess.run(shooter, env=env, cwd=REPO, timeout=600)
        if done.returncode != 0:
            return done.returncode
    for png in sorted(args.out.glob("*.png")):
        print(png.relative_to(REPO) if png.is_relative_to(REPO) else png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
