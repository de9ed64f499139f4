"""`docker run --init`: a tiny PID 1 that forwards signals and reaps zombies.

The container's first process is already a (forked) Python, so it becomes the
reaper in place instead of exec'ing one: no binary is needed in the image.
Like tini, it exits with the command's status, or 128+signal if it was killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from typing import NoReturn

# Everything a user may send with `docker kill -s`, minus what cannot be caught.
FORWARDED = [
    s
    for s in signal.Signals
    if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTSTP)
    and s not in (signal.SIGTTIN, signal.SIGTTOU, signal.SIGSEGV, signal.SIGBUS)
    and s not in (signal.SIGFPE, signal.SIGILL)
]


def kill_session(leader: int) -> None:
    """SIGKILL a command and everything in its process group (it leads its own session),
    and the command itself if it is killed before its setsid; gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(leader, signal.SIGKILL)


def status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def run_reaper(start_child: Callable[[], NoReturn], chan: socket.socket) -> NoReturn:
    """Fork the command, then forward signals to it and reap everything until it ends."""
    child = os.fork()
    if child == 0:
        start_child()
    # Only the command may hold the exec-report channel, so its exec gives EOF.
    chan.close()

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(status_code(status))
