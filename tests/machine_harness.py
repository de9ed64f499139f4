"""Drive `dockyard machine` and the real docker CLI the way a user does, and clean up.

Why a module of its own: the acceptance scenario (start, then through the `dockyard`
docker context: ps, pull from the local registry, run --rm, run -d + logs -f, exec -it,
stop/start keeping the pulled image) is the same for every backend; only the start
options and the registry address the engine sees differ (127.0.0.1 natively, 10.0.2.2
from a guest on QEMU user networking).

Each harness lives in an EngineProcess temp dir with DOCKYARD_HOME inside it, so the
EngineProcess cleanup (recorded container pids, shims, cgroups, mounts, links, firewall
rules, the dir) covers whatever a failed test leaves of a native engine, without ever
touching anything this run did not start.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.engine_process import EngineProcess, cmdline, kill_quietly, proc_cmdlines, wait_for
from tests.ptyio import pty_session

REPO = Path(__file__).resolve().parents[1]
NAME = "default"


class MachineHarness:
    def __init__(self) -> None:
        self.eng = EngineProcess()  # never started: its paths and cleanup are what we use
        self.home = self.eng.dir / "home"
        self.dir = self.home / NAME
        self.eng.root = self.dir / "root"
        self.eng.exec_root = self.dir / "run"
        self.eng.socket = self.dir / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        """The user's shell: no DOCKER_HOST, the `dockyard` context, a private config."""
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        env.update(
            DOCKYARD_HOME=str(self.home),
            DOCKER_CONFIG=str(self.eng.config_dir),
            DOCKER_CONTEXT="dockyard",
            PYTHONPATH=str(REPO),
        )
        return env

    def native_engine_args(self) -> list[str]:
        """Per-test bridge, cgroup parent and exec root, so engines never collide."""
        return [
            f"--engine-arg=--bridge={self.eng.bridge}",
            f"--engine-arg=--cgroup-parent={self.eng.cgroup_parent}",
            f"--engine-arg=--exec-root={self.eng.exec_root}",
        ]

    def dockyard(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "app.cli", "machine", *args]
        res = subprocess.run(
            cmd,
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"dockyard machine {' '.join(args)} exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}\nlog:\n{self.log_tail()}"
            )
        return res

    def docker(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {res.returncode}\nstdout: {res.stdout}\n"
                f"stderr: {res.stderr}\nlog:\n{self.log_tail()}"
            )
        return res

    def log_tail(self) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "app.cli", "machine", "logs"],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return "\n".join(res.stdout.splitlines()[-40:])

    def processes(self) -> list[int]:
        """Processes whose command line names this harness's directory (engine, shims,
        QEMU with its disk and sockets in the machine dir)."""
        mark = str(self.eng.dir)
        return [pid for pid, cmd in proc_cmdlines() if mark in cmd and pid != os.getpid()]

    def close(self) -> None:
        """Remove the machine as a user would, then sweep what a failure left."""
        with contextlib.suppress(Exception):
            self.dockyard("rm", check=False, timeout=120)
        for pid in self.processes():
            if str(self.eng.dir) in cmdline(pid):
                kill_quietly(pid)
        self.eng.close()


@contextlib.contextmanager
def machine_harness() -> Iterator[MachineHarness]:
    h = MachineHarness()
    try:
        yield h
    finally:
        h.close()


def acceptance(h: MachineHarness, start_args: list[str], registry: str) -> None:
    """The issue's acceptance 1 through `dockyard machine` and the docker context;
    `registry` is the local registry as the engine reaches it."""
    out = h.dockyard("start", *start_args).stdout
    assert "engine done" in out, out
    assert "is running" in out
    assert h.docker("ps").stdout.startswith("CONTAINER ID")
    image = f"{registry}/busybox"
    h.docker("pull", image)
    h.docker("tag", image, "busybox")
    assert h.docker("run", "--rm", "busybox", "echo", "hi").stdout == "hi\n"

    h.docker(
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    )
    assert wait_for(lambda: "tick 2" in h.docker("logs", "ticker").stdout, timeout=60)
    follow = subprocess.Popen(
        ["docker", "logs", "-f", "ticker"], env=h.env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert follow.stdout is not None
        seen = [follow.stdout.readline() for _ in range(6)]
        assert all(line.startswith("tick") for line in seen), seen
    finally:
        follow.kill()
        follow.wait()

    code, tty_out = pty_session(
        h.env, ["docker", "exec", "-it", "ticker", "sh"], b"tty; echo marker-$((6*7)); exit 7\n"
    )
    assert b"/dev/pts/" in tty_out and b"marker-42" in tty_out, tty_out
    assert code == 7

    h.dockyard("stop")
    assert "stopped" in h.dockyard("status").stdout
    assert h.docker("ps", check=False).returncode != 0

    out = h.dockyard("start").stdout
    assert "is running" in out
    assert image in h.docker("images", "--format", "{{.Repository}}").stdout
    state = h.docker("inspect", "-f", "{{.State.Status}}", "ticker").stdout.strip()
    assert state == "exited"  # the machine's stop ended it, as a power-off would
    assert h.docker("run", "--rm", "busybox", "echo", "again").stdout == "again\n"
