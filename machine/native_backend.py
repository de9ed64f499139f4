"""The native backend (Linux): the engine runs on the host itself, no VM.

`python -m engine serve` is started as a background process of its own session, with the
machine's socket (`<machine dir>/docker.sock`) and root (`<machine dir>/root`), so the
docker context and every later feature work the same as with a VM backend. Its pid goes
to `<machine dir>/engine.pid` and its output to `engine.log`.

A pidfile can outlive its process (a crash, a reboot) and a pid can be reused, so a pid
counts as ours only while that process is alive, not a zombie, and its command line names
our engine root; anything else is a stale pidfile, removed when seen.

Stop mirrors a VM power-off: the containers are stopped through the API first (a VM's die
with it; here they would outlive the engine, whose shims keep them up), then the engine
gets SIGTERM, and SIGKILL after the timeout. `remove` refuses while anything is still
mounted under the machine directory, because deleting through a bind mount would delete
the host files behind it.

The engine needs root (namespaces, mounts, cgroups), so the backend refuses to start
without it, and refuses on any OS but Linux, each with what to do instead.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from machine import atomic, filenames
from machine.backend import (
    MachineSpec,
    MachineState,
    MachineStatus,
    Progress,
    Stage,
    StageFailed,
    StageStatus,
)
from machine.errors import BackendUnavailable, MachineError
from machine.stages import StageClock

ENGINE_TIMEOUT = 60.0  # the engine answers /_ping in well under a second; recovery may take longer
STOP_CONTAINER_SECONDS = 10
ENGINE_ROOT_PIDFILE = "engine.pid"  # the engine's own, under --root (engine/rootlock.py)
SPAWN_HINT = "the engine could not be started: read `dockyard machine logs`"
ENGINE_HINT = (
    "the engine did not answer /_ping on its socket: read `dockyard machine logs` "
    "(another engine may hold the root, or a bridge name may be taken)"
)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def api(sock: Path, method: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
    """One engine API call over the unix socket: (status, decoded JSON or None)."""
    conn = _UnixHTTP(sock, timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, None


class NativeBackend:
    name = "native"

    def __init__(
        self, spec: MachineSpec, python: str = sys.executable, system: str = sys.platform
    ) -> None:
        self.spec = spec
        self.python = python
        self.system = system
        self.dir = spec.directory

    # -- files ---------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.dir / filenames.ENGINE_ROOT

    @property
    def pidfile(self) -> Path:
        return self.dir / filenames.ENGINE_PID

    @property
    def log_path(self) -> Path:
        return self.dir / filenames.ENGINE_LOG

    def socket_path(self) -> Path:
        return self.dir / filenames.SOCKET

    def argv(self) -> list[str]:
        return [
            *engine_command(self.python),
            "serve",
            "--root",
            str(self.root),
            "--host",
            f"unix://{self.socket_path()}",
            *self.spec.engine_args,
        ]

    # -- lifecycle -----------------------------------------------------------------------
    def check_host(self) -> None:
        """Refuse where the engine cannot run, saying what to use instead."""
        if not self.system.startswith("linux"):
            raise BackendUnavailable(
                f"the native backend runs the engine on the host, which needs Linux "
                f"(this host is {self.system})",
                "use --backend qemu: it runs the engine in a Linux VM",
            )
        if os.geteuid() != 0:
            raise BackendUnavailable(
                "the native engine needs root (namespaces, mounts, cgroups)",
                "run dockyard as root (sudo), or use --backend qemu",
            )

    def create(self) -> None:
        self.check_host()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def start(self, progress: Progress | None = None) -> list[Stage]:
        self.create()
        clock = _Clock(progress)
        pid = self.running_pid()
        if pid is not None and self.ping():
            with clock.stage("engine", ENGINE_HINT) as stage:
                stage.detail = f"already running (pid {pid})"
            return clock.stages
        if pid is not None:
            raise MachineError(
                f"the engine (pid {pid}) is running but does not answer on {self.socket_path()}",
                "engine",
                "stop it with `dockyard machine stop`, then start again",
            )
        try:
            with clock.stage("spawn", SPAWN_HINT) as stage:
                proc = self._spawn()
                stage.detail = f"pid {proc.pid}"
            with clock.stage("engine", ENGINE_HINT):
                self._wait_ready(proc)
        finally:
            self._record(clock.stages)
        return clock.stages

    def _record(self, stages: list[Stage]) -> None:
        """The last start's stages, for `machine status` (filenames.STAGES)."""
        doc = {"backend": self.name, "stages": [s.as_dict() for s in stages]}
        atomic.write_text(self.dir / filenames.STAGES, json.dumps(doc, indent=2))

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.pidfile.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path().unlink()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if not frozen():
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(engine_source()), env.get("PYTHONPATH", "")) if p
            )
        with self.log_path.open("ab") as log:
            log.write(f"--- dockyard: {' '.join(self.argv())}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.argv(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives the CLI; a ^C at the CLI does not reach it
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        return proc

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + ENGINE_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                raise StageFailed(
                    f"the engine exited with status {proc.returncode}",
                    "engine",
                    ENGINE_HINT,
                    self.log_tail(),
                )
            if self.ping():
                return
            time.sleep(0.05)
        self._terminate(proc.pid, 5.0)
        raise StageFailed(
            f"the engine did not answer in {ENGINE_TIMEOUT:.0f}s and was stopped",
            "engine",
            ENGINE_HINT,
            self.log_tail(),
        )

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        if self.ping():
            self._stop_containers()
        self._terminate(pid, timeout)
        self.pidfile.unlink(missing_ok=True)

    def _stop_containers(self) -> None:
        """Stop every running container, as a VM's power-off would end them."""
        sock = self.socket_path()
        with contextlib.suppress(OSError):
            _, items = api(sock, "GET", "/containers/json")
            for item in items or []:
                api(
                    sock,
                    "POST",
                    f"/containers/{item['Id']}/stop?t={STOP_CONTAINER_SECONDS}",
                    timeout=STOP_CONTAINER_SECONDS + 20,
                )

    def _terminate(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._is_ours(pid):
            _reap(pid)
            time.sleep(0.05)
        if self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self._is_ours(pid):
                _reap(pid)
                time.sleep(0.02)
        _reap(pid)

    def status(self) -> MachineStatus:
        pid = self.running_pid()
        if pid is None:
            state = MachineState.STOPPED if self.dir.is_dir() else MachineState.NOT_CREATED
            return MachineStatus(state, self.name, self.socket_path())
        detail = "" if self.ping() else "the engine does not answer on its socket"
        return MachineStatus(MachineState.RUNNING, self.name, self.socket_path(), pid, "", detail)

    def ssh(self, command: Sequence[str] = ()) -> int:
        raise MachineError(
            "the native backend has no guest to log in to: its engine runs on this host",
            "ssh",
            "run the command directly on this host",
        )

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def remove(self) -> None:
        self.stop()
        mounted = mounts_under(self.dir)
        if mounted:
            raise MachineError(
                f"{len(mounted)} mounts remain under {self.dir} (first: {mounted[0]})",
                "remove",
                "unmount them (umount -R) before removing the machine; nothing was deleted",
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- what is running -----------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The engine's pid if it is running; a stale pidfile is removed. An engine whose
        pid never reached our pidfile (the CLI died right after spawning it) is found by
        the pid the engine itself writes under its root, and adopted."""
        pid = _read_pid(self.pidfile)
        if pid and self._is_ours(pid):
            return pid
        self.pidfile.unlink(missing_ok=True)
        pid = _read_pid(self.root / ENGINE_ROOT_PIDFILE)
        if pid and self._is_ours(pid):
            self.pidfile.write_text(f"{pid}\n")
            return pid
        return None

    def _is_ours(self, pid: int) -> bool:
        """Alive, not a zombie, and an engine serving our root (guards pid reuse)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return b"engine" in argv and str(self.root).encode() in argv

    def ping(self) -> bool:
        try:
            status, _ = api(self.socket_path(), "GET", "/_ping", timeout=2.0)
        except OSError:
            return False
        return status == 200


class _Clock(StageClock):
    """Times the native start's two stages and reports them as the VM backends do; its
    stages carry their own hints, and only an OSError becomes the stage's StageFailed."""

    @contextlib.contextmanager
    def stage(self, name: str, hint: str = "") -> Iterator[Stage]:
        current = Stage(name, time.monotonic() - self.t0, hint=hint)
        self.stages.append(current)
        self._report(current)
        try:
            yield current
        except MachineError as e:
            self._finish(current, StageStatus.FAILED, e.message)
            raise
        except OSError as e:
            self._finish(current, StageStatus.FAILED, str(e))
            raise StageFailed(str(e), name, hint) from e
        self._finish(current, StageStatus.DONE, current.detail)


def _read_pid(path: Path) -> int:
    try:
        return max(0, int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 0


def _reap(pid: int) -> None:
    """Collect our child's exit status if it is our child (start and stop in one process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def frozen() -> bool:
    """Running from the packaged app (packaging/pyinstaller), which has no `python`."""
    return bool(getattr(sys, "frozen", False))


def engine_command(python: str) -> list[str]:
    """How to run the engine: `python -m engine`, or in the packaged app its own
    executable's `engine` entry (packaging/pyinstaller/entry.py)."""
    return [sys.executable, "engine"] if frozen() else [python, "-m", "engine"]


def engine_source() -> Path:
    """The directory holding the `engine` package, for the child's PYTHONPATH (found
    without importing it: machine/ never imports engine internals)."""
    spec = importlib.util.find_spec("engine")
    if spec is None or spec.origin is None:
        raise BackendUnavailable(
            "the engine package is not installed next to dockyard",
            "reinstall dockyard (pip install dockyard) so that `python -m engine` works",
        )
    return Path(spec.origin).resolve().parents[1]


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory` (from /proc/self/mountinfo, octal escapes
    decoded), deepest first."""
    top = str(directory.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == top or point.startswith(top + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)
