"""`docker exec` instances: created, started (attached or detached), inspected, resized.

An exec is a record first (POST /containers/{id}/exec) and a process only on
start, as in Docker; the record keeps the exit code for `exec inspect`, which
is how the CLI and SDK learn an exec's result.

Each step is a container event as Docker words it (`exec_create: CMD ARGS`,
`exec_start: CMD ARGS`, `exec_die` with the exit code), so `docker events` and
clients that wait on them see execs. Like Docker, an exec that could not be
started has no `exec_die`: its start request failed instead.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.cgroups.manager import CgroupManager
from engine.containers.model import Container
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound
from engine.runtime.exec import ExecProcess, spawn_exec
from engine.runtime.shim_client import ExecFailed
from engine.runtime.spec import ExecSpec


class ContainerEvents(Protocol):
    """ContainerManager.event: publishes one event about `c` with its name, image, labels."""

    def __call__(self, c: Container, action: str, **extra: str) -> None: ...


@dataclass
class Exec:
    id: str
    container: Container
    spec: ExecSpec
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    process: ExecProcess | None = None
    console_size: tuple[int, int] = (0, 0)
    done: threading.Event = field(default_factory=threading.Event)

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.spec.tty,
                "entrypoint": self.spec.args[0],
                "arguments": self.spec.args[1:],
                "privileged": self.spec.privileged,
                "user": self.spec.user,
            },
            "OpenStdin": self.spec.open_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": False,
            "ContainerID": self.container.id,
            "DetachKeys": "",
            "Pid": self.pid,
        }

    def command(self) -> str:
        """What Docker's exec events name: the entrypoint, a space, the arguments."""
        return f"{self.spec.args[0]} {' '.join(self.spec.args[1:])}"


class ExecStore:
    def __init__(self, cgroups: CgroupManager, event: ContainerEvents) -> None:
        self.cgroups = cgroups
        self._event = event
        self._lock = threading.Lock()
        self._execs: dict[str, Exec] = {}

    def create(self, c: Container, body: dict[str, Any]) -> Exec:
        c.state.status.check_exec(c.name)
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list):
            raise InvalidParameter("no exec command specified")
        spec = ExecSpec(
            args=[str(a) for a in cmd],
            env=[str(e) for e in body.get("Env") or []],
            cwd=str(body.get("WorkingDir") or ""),
            user=str(body.get("User") or ""),
            tty=bool(body.get("Tty")),
            open_stdin=bool(body.get("AttachStdin")),
            privileged=bool(body.get("Privileged")),
        )
        ex = Exec(
            secrets.token_hex(32),
            c,
            spec,
            bool(body.get("AttachStdin")),
            bool(body.get("AttachStdout", True)),
            bool(body.get("AttachStderr", True)),
        )
        ex.console_size = console_size(body.get("ConsoleSize"))
        with self._lock:
            self._execs[ex.id] = ex
        self._event(c, f"exec_create: {ex.command()}", execID=ex.id)
        return ex

    def get(self, eid: str) -> Exec:
        with self._lock:
            ex = self._execs.get(eid)
        if ex is None:
            raise NotFound(f"No such exec instance: {eid}")
        return ex

    def resize(self, ex: Exec, height: int, width: int) -> None:
        """Remember the size: a resize may arrive before the process exists."""
        ex.console_size = (height, width)
        if ex.process is not None and ex.running:
            ex.process.resize(height, width)

    def check_startable(self, ex: Exec) -> None:
        if ex.running or ex.exit_code is not None:
            raise Conflict(f"Error: Exec command {ex.id} has already run")
        ex.container.state.status.check_exec(ex.container.name)

    def start(self, ex: Exec, detached: bool = False) -> ExecProcess:
        self.check_startable(ex)
        c = ex.container
        self._event(c, f"exec_start: {ex.command()}", execID=ex.id)
        proc = spawn_exec(
            c.state.pid, c.spec, self.cgroups.procs_files(c.id), ex.spec, detached=detached
        )
        ex.process, ex.pid, ex.running = proc, proc.pid, True
        if ex.spec.tty and all(ex.console_size):
            proc.resize(*ex.console_size)
        threading.Thread(target=self._reap, args=(ex, proc), daemon=True).start()
        return proc

    def record_failure(self, ex: Exec, exc: EngineError) -> None:
        """A command that never ran still gets an exit code, as `docker exec` reports it."""
        ex.exit_code = exc.exit_code if isinstance(exc, ExecFailed) else 126
        ex.running = False
        ex.done.set()

    def _reap(self, ex: Exec, proc: ExecProcess) -> None:
        ex.exit_code = proc.wait()
        ex.running = False
        self._event(ex.container, "exec_die", execID=ex.id, exitCode=str(ex.exit_code))
        ex.done.set()

    def forget_container(self, cid: str) -> None:
        with self._lock:
            for eid in [e for e, ex in self._execs.items() if ex.container.id == cid]:
                del self._execs[eid]


def console_size(raw: Any) -> tuple[int, int]:
    """`[height, width]` from an exec body that api/schema.check_exec already validated."""
    return (int(raw[0]), int(raw[1])) if raw else (0, 0)
