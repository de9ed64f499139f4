"""Run one healthcheck command inside a running container, bounded by its timeout.

The check is an ordinary exec (runtime/exec.py), so it joins the container's
cgroup and namespaces like `docker exec`. Its stdout and stderr are read
together, up to Docker's 4096 bytes; the helper's pidfd says when it has
ended, so a background process that keeps the pipes open cannot stretch a
check. At the timeout the command's whole process group is killed (the exec
is a session leader): a check never outlives its timeout, and a check that
did is a failure, as in Docker. The helper holds the same bound (a second
later) by itself, for a daemon killed while a check runs.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.containers.health import HealthConfig, ProbeResult, go_duration, truncate_output
from engine.errors import EngineError
from engine.runtime.exec import ExecProcess, spawn_exec
from engine.runtime.reaper import kill_session
from engine.runtime.shim_client import ExecFailed
from engine.runtime.spec import ContainerSpec, ExecSpec
from engine.timefmt import now_rfc3339

REAP_WAIT = 5.0  # seconds a killed check may take to be gone before a thread reaps it
BACKSTOP_GRACE = 1.0  # seconds the exec helper waits past the timeout before it kills
TIMED_OUT = -1  # Docker's exit code for a check that exceeded its timeout
_READ = 65536


def run(
    init_pid: int,
    spec: ContainerSpec,
    procs: Sequence[Path],
    cfg: HealthConfig,
    running: Callable[[ExecProcess], None] = lambda _proc: None,
) -> ProbeResult:
    """One probe: never raises for a failing command, only reports it.

    `running` is told the process once it exists, so the caller can `cancel` it."""
    start = now_rfc3339()
    deadline = time.monotonic() + cfg.timeout / 1e9
    # The helper's own bound is a backstop for a daemon killed mid-check; ours comes first,
    # so a timed-out check is reported as one, with Docker's message.
    backstop = cfg.timeout / 1e9 + BACKSTOP_GRACE
    ex = ExecSpec(args=list(cfg.args), env=[], cwd="", user="", tty=False, deadline=backstop)
    exceeded = f"Health check exceeded timeout ({go_duration(cfg.timeout)})"
    try:
        proc = spawn_exec(
            init_pid, spec, list(procs), ex, startup_timeout=deadline - time.monotonic()
        )
    except ExecFailed as exc:
        return ProbeResult(start, now_rfc3339(), exc.exit_code, exc.message)
    except TimeoutError:  # not even started in time (a pause froze it as it joined)
        return ProbeResult(start, now_rfc3339(), TIMED_OUT, exceeded)
    except (EngineError, OSError) as exc:
        return ProbeResult(start, now_rfc3339(), TIMED_OUT, f"cannot run the check: {exc}")
    try:
        running(proc)
        output, finished = _collect(proc, deadline)
        if not finished:
            _kill_group(proc)
            return ProbeResult(start, now_rfc3339(), TIMED_OUT, exceeded)
        code = proc.wait()
    finally:
        for fd in (proc.stdout_fd, proc.stderr_fd):
            if fd is not None:
                os.close(fd)
    return ProbeResult(start, now_rfc3339(), code, truncate_output(output))


def _collect(proc: ExecProcess, deadline: float) -> tuple[bytes, bool]:
    """Output until the helper ends (True) or the deadline passes (False)."""
    out = bytearray()
    pidfd = os.pidfd_open(proc.proc.pid)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(pidfd, selectors.EVENT_READ, None)
            for fd in (proc.stdout_fd, proc.stderr_fd):
                if fd is not None:
                    sel.register(fd, selectors.EVENT_READ, fd)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return bytes(out), False
                for key, _ in sel.select(left):
                    if key.data is None:
                        _drain(sel, out)
                        return bytes(out), True
                    _read_into(sel, key.data, out)
    finally:
        os.close(pidfd)


def _read_into(sel: selectors.BaseSelector, fd: int, out: bytearray) -> None:
    chunk = os.read(fd, _READ)
    if not chunk:
        sel.unregister(fd)
    elif len(out) < 2 * _READ:  # enough to truncate from; the rest is read and dropped
        out += chunk


def _drain(sel: selectors.BaseSelector, out: bytearray) -> None:
    """What the command wrote before it ended, without waiting on anything it left behind."""
    for key, _ in sel.select(0):
        if key.data is not None:
            _read_into(sel, key.data, out)


def cancel(proc: ExecProcess) -> None:
    """Kill the command and everything in its process group (the run then ends at once).

    The helper has not exited (it waits for the command), so the command's pid
    is still the command's: no other process can have been given it."""
    if proc.poll() is None:
        kill_session(proc.pid)


def _kill_group(proc: ExecProcess) -> None:
    """Cancel, then reap; a check caught by a pause is frozen with its container and
    dies only at the thaw, so its reaping moves to a thread rather than hold a worker."""
    cancel(proc)
    try:
        proc.proc.wait(REAP_WAIT)
    except subprocess.TimeoutExpired:
        threading.Thread(target=proc.wait, name="health-reap", daemon=True).start()
