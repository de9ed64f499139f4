"""`docker exec`: start a process inside a running container.

The daemon is multithreaded, so it never forks itself: a fresh helper
process (nsexec.py) joins the container's cgroup and namespaces, forks the
command into the PID namespace and reports back over a socket.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.runtime.init import container_caps
from engine.runtime.shim_client import ExecFailed, python_command
from engine.runtime.spec import ContainerSpec, ExecSpec
from engine.runtime.user import merge_env

STARTUP_TIMEOUT = 30.0


@dataclass
class ExecProcess:
    pid: int
    proc: subprocess.Popen[bytes]
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    pty_fd: int | None = None
    _closed: list[int] = field(default_factory=list)

    def resize(self, height: int, width: int) -> None:
        if self.pty_fd is not None:
            size = struct.pack("HHHH", height, width, 0, 0)
            fcntl.ioctl(self.pty_fd, termios.TIOCSWINSZ, size)

    def wait(self) -> int:
        return self.proc.wait()

    def poll(self) -> int | None:
        return self.proc.poll()


def exec_config(init_pid: int, spec: ContainerSpec, procs: list[Path], ex: ExecSpec) -> str:
    """Everything the helper needs, resolved here so the helper stays tiny."""
    privileged = spec.privileged or ex.privileged
    return json.dumps(
        {
            "pid": init_pid,
            "procs": [str(p) for p in procs],
            "args": ex.args,
            "env": merge_env(spec.env, ex.env),
            "cwd": ex.cwd or spec.cwd,
            "user": ex.user or spec.user,
            "tty": ex.tty,
            "privileged": privileged,
            "caps": container_caps(spec, privileged),
            "deadline": ex.deadline,
        }
    )


def spawn_exec(
    init_pid: int,
    spec: ContainerSpec,
    cgroup_procs_paths: list[Path],
    ex: ExecSpec,
    detached: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> ExecProcess:
    """Start `ex` in the container; raises ExecFailed (126/127) if it cannot run.

    A detached exec writes to /dev/null, not to pipes the daemon reads: it must
    outlive the daemon, and a write to a pipe nobody reads would kill it.
    """
    if not ex.args:
        raise ExecFailed("no command given to exec", 126)
    config = exec_config(init_pid, spec, cgroup_procs_paths, ex)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mine: dict[str, int | None] = {"stdin": None, "stdout": None, "stderr": None}
    child_fds: list[int] = []
    stdio: list[int | None] = [subprocess.DEVNULL] * 3
    if not ex.tty and not detached:
        if ex.open_stdin:
            r, w = os.pipe()
            mine["stdin"], stdio[0] = w, r
            child_fds.append(r)
        for i, name in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            mine[name], stdio[i] = r, w
            child_fds.append(w)
    try:
        proc = subprocess.Popen(
            [*python_command("nsexec"), config, str(theirs.fileno())],
            stdin=stdio[0],
            stdout=stdio[1],
            stderr=stdio[2],
            pass_fds=(theirs.fileno(),),
            cwd="/",
        )
    finally:
        theirs.close()
        for fd in child_fds:
            os.close(fd)
    try:
        pid, pty_fd = _handshake(ours, proc, startup_timeout)
    except BaseException:
        for end in mine.values():
            if end is not None:
                os.close(end)
        raise
    finally:
        ours.close()
    return ExecProcess(pid, proc, mine["stdin"], mine["stdout"], mine["stderr"], pty_fd)


def _handshake(
    ours: socket.socket, proc: subprocess.Popen[bytes], timeout: float
) -> tuple[int, int | None]:
    pid, pty = 0, None
    deadline = time.monotonic() + timeout
    while True:
        ours.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ours, 65536, 1)
        except TimeoutError:
            _abandon(proc)
            if pty is not None:
                os.close(pty)
            raise
        if not msg:
            break
        if msg.startswith(b"pid:"):
            pid = int(msg[4:])
        elif msg == b"pty" and fds:
            pty = fds[0]
        elif msg.startswith(b"exec:"):
            code, _, text = msg[5:].decode(errors="replace").partition(":")
            proc.wait()
            if pty is not None:
                os.close(pty)
            raise ExecFailed(text, int(code))
    if not pid:
        status = proc.wait()
        raise ExecFailed(f"exec helper exited with {status} before starting the command", 126)
    return pid, pty


def _abandon(proc: subprocess.Popen[bytes]) -> None:
    """Kill a helper that did not start its command in time, and reap it on a thread.

    A pause that caught it joining the container's cgroup froze it there, before
    it forked: it dies, the command never having run, at the thaw, which may be
    much later than this caller can wait."""
    proc.kill()
    threading.Thread(target=proc.wait, name="exec-reap", daemon=True).start()
