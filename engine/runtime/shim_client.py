"""The daemon's side of a container's shim: launch, recover, attach, release, wait.

The shim is a separate, detached process (see shim.py for its socket
protocol); everything here talks to it through STATE_DIR/shim.sock or reads
the files it leaves (shim.json, exit.json), so a restarted daemon can pick a
running container up again with `ShimHandle.recover`.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine import atomicfile
from engine.cgroups.manager import detect
from engine.cgroups.procs import warm_attach
from engine.errors import EngineError
from engine.runtime.spec import ContainerSpec, ExitStatus, PublishedPort

# The directory holding the `engine` package, put on the shim's sys.path
# because it runs with -S -E (no site, no environment) to start fast.
_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from engine.runtime.{module} import main; main(sys.argv[1:])"
)
LAUNCH_TIMEOUT = 60.0


def python_command(module: str) -> list[str]:
    """A lean interpreter for our helper processes: no site, no env, no user dir."""
    return [sys.executable, "-S", "-E", "-c", _BOOT.format(module=module), _ROOT]


class ExecFailed(EngineError):
    """The command could not be exec'd: 127 not found, 126 not executable."""

    status = 400

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ShimHandle:
    def __init__(self, state_dir: Path, pid: int) -> None:
        self.state_dir = state_dir
        self.pid = pid
        self._early_monitor: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------
    @classmethod
    def launch(cls, spec: ContainerSpec, state_dir: Path) -> ShimHandle:
        """Start the shim; return once the container's init exists, held before exec."""
        made = _make_cgroup(spec)
        warm_attach()  # the shim's cgroup join then need not wait a grace period of its own
        state_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("exit.json", "shim.json", "shim.sock", "ports.json"):
            (state_dir / stale).unlink(missing_ok=True)
        # Runtime state under the exec root: needed only while the machine is up.
        atomicfile.write_json(state_dir / "spec.json", spec.to_json(), mode=0o600, durable=False)
        ready_r, ready_w = os.pipe()
        try:
            if not (USE_TEMPLATE and _TEMPLATE.spawn(state_dir, ready_w)):
                _spawn_fresh(state_dir, ready_w)
            os.close(ready_w)
            ready_w = -1
            line = _read_line_fd(ready_r, LAUNCH_TIMEOUT)
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)
        if line.startswith("ok "):
            handle = cls(state_dir, int(line[3:]))
            handle._early_monitor = handle.monitor()  # see monitor()
            return handle
        reason = line[6:] if line.startswith("error ") else _log_tail(state_dir / "shim.log")
        if made:  # the shim removes what it made, but it may not have got that far
            with contextlib.suppress(EngineError, OSError):
                detect(spec.cgroup_parent).remove(spec.id)
        raise EngineError(f"container {spec.id[:12]} could not be set up: {reason}")

    @classmethod
    def recover(cls, state_dir: Path) -> ShimHandle | None:
        """A handle on a shim that survived a daemon restart, None if it is gone."""
        try:
            info = atomicfile.read_json(state_dir / "shim.json")
            handle = cls(state_dir, int(info["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: treated as gone, so the record shows it ended
        try:
            handle._connect().close()
        except OSError:
            return None
        return handle

    # -- talking to the shim ---------------------------------------------------
    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.state_dir / "shim.sock"))
        except OSError:
            sock.close()
            raise
        return sock

    def _open(self, line: str, timeout: float = 30.0) -> tuple[socket.socket, str]:
        try:
            sock = self._connect()
        except OSError as e:
            raise EngineError(f"container {self.state_dir.name} is not running: {e}") from e
        sock.settimeout(timeout)
        try:
            sock.sendall(line.encode() + b"\n")
            reply = _read_line_sock(sock)
        except OSError as e:
            sock.close()
            raise EngineError(f"shim of {self.state_dir.name} did not answer: {e}") from e
        sock.settimeout(None)
        return sock, reply

    def _request(self, line: str) -> str:
        sock, reply = self._open(line)
        sock.close()
        return reply

    def attach(self, stdin: bool, stdout: bool, stderr: bool) -> socket.socket:
        flags = " ".join("1" if f else "0" for f in (stdin, stdout, stderr))
        sock, reply = self._open(f"attach {flags}")
        if reply != "ok":
            sock.close()
            raise EngineError(f"attach refused: {reply}")
        return sock

    def release(self) -> None:
        reply = self._request("go")
        if reply.startswith("exec "):
            code, _, message = reply[5:].partition(" ")
            raise ExecFailed(message, int(code))
        if reply != "ok":
            raise EngineError(f"could not start the container: {reply}")

    def resize(self, height: int, width: int) -> None:
        self._request(f"resize {int(height)} {int(width)}")

    def signal(self, sig: int) -> None:
        """Through the shim, which is PID 1's parent: the pid cannot be reused under it."""
        try:
            self._request(f"signal {int(sig)}")
        except EngineError:
            if self.exit_status() is None:
                raise

    def monitor(self) -> socket.socket:
        """Readable-at-EOF once the container has exited (already EOF if it has).

        The first call after launch gets a connection made while the shim was
        idle, before the container ran: asking later means waiting while the
        shim is busy with a short-lived container's exit.
        """
        early, self._early_monitor = self._early_monitor, None
        if early is not None:
            return early
        try:
            sock, _reply = self._open("monitor")
            return sock
        except EngineError:
            a, b = socket.socketpair()
            b.close()
            return a

    def ports(self) -> list[PublishedPort]:
        """The published ports as the shim bound them (a free port chosen for 0)."""
        try:
            data = atomicfile.read_json(self.state_dir / "ports.json")
            return [PublishedPort(**p) for p in data]
        except (OSError, ValueError, TypeError):
            return []

    def exit_status(self) -> ExitStatus | None:
        try:
            data = atomicfile.read_json(self.state_dir / "exit.json")
        except (OSError, ValueError):
            return None
        return ExitStatus(**data)

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        status = self.exit_status()
        if status is not None:
            return status
        with self.monitor() as sock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not _readable(sock.fileno(), left):
                    return None
                if not sock.recv(4096):
                    break
        status = self.exit_status()
        if status is None:  # the shim died without recording an exit
            return ExitStatus(exit_code=255, error="the container's shim exited unexpectedly")
        return status


def _make_cgroup(spec: ContainerSpec) -> bool:
    """Make the container's cgroup before the shim does; True if it now exists.

    Only a head start: the shim creates it again (a no-op then) and is the
    one to report any error. It matters because warm_attach holds the kernel's
    cgroup mutex for a grace period, and a cgroup made during that would wait.
    """
    try:
        detect(spec.cgroup_parent).create(spec.id, spec.resources)
    except (EngineError, OSError):
        return False
    return True


def _spawn_fresh(state_dir: Path, ready_w: int) -> None:
    """A new interpreter for the shim: slow to start, but needs no template."""
    with open(state_dir / "shim.log", "ab") as log:
        launcher = subprocess.Popen(
            [*python_command("shim"), str(state_dir), str(ready_w)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ready_w,),
            start_new_session=True,
            cwd="/",
        )
    launcher.wait()  # the launcher forks the real shim and exits at once


class _Template:
    """The daemon's one pre-imported shim template (see template.py), started lazily."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [*python_command("template"), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                cwd="/",
            )
        finally:
            theirs.close()
        self.sock = ours
        return ours

    def spawn(self, state_dir: Path, ready_w: int) -> bool:
        """Ask the template to fork a shim; False if it cannot (caller starts one fresh)."""
        with self.lock:
            for _attempt in range(2):
                sock = self.sock
                if sock is None or self.proc is None or self.proc.poll() is not None:
                    sock = self._start()
                try:
                    socket.send_fds(sock, [str(state_dir).encode()], [ready_w])
                    return True
                except OSError:
                    sock.close()
                    self.sock = None
        return False


USE_TEMPLATE = True
_TEMPLATE = _Template()


def _read_line_fd(fd: int, timeout: float) -> str:
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not _readable(fd, left):
            return "error timed out waiting for the container's shim"
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()


def _readable(fd: int, timeout: float | None) -> bool:
    """poll, not select: a daemon with 1,000 containers holds fds above select's 1024."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))


def _read_line_sock(sock: socket.socket) -> str:
    """Byte by byte: what follows the reply line belongs to the caller's stream."""
    buf = b""
    while not buf.endswith(b"\n"):
        ch = sock.recv(1)
        if not ch:
            break
        buf += ch
    return buf.decode(errors="replace").strip()


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "the shim exited without a reason"
    return " | ".join(text[-5:]) or "the shim exited without a reason"


__all__ = ["ExecFailed", "ShimHandle", "python_command"]
