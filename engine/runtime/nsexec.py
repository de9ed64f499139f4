"""`docker exec`'s helper: enter a running container, fork, and exec the command.

Run by exec.py as a fresh process (`python -S -E`), never forked from the
multithreaded daemon. argv: CONFIG_JSON CONTROL_FD. Messages on the control
socket (SOCK_SEQPACKET, CLOEXEC): "pid:N" (host pid of the command), "pty"
carrying the pty master, "exec:CODE:MESSAGE" on failure; EOF once the command
has exec'd. This process then waits and exits with the command's status; with a
"deadline", it kills the command's process group once that many seconds have
passed, so the bound holds even if the daemon that set it has died.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sys
from typing import Any, NoReturn

# Imported before entering the container: its root has no Python library.
from engine.runtime import init
from engine.runtime.reaper import kill_session, status_code
from engine.runtime.syscalls import LinuxSyscalls
from engine.runtime.user import with_home

# setns order: the mount namespace last, because /proc/PID/... paths and our
# own files stop resolving once we are inside the container's mounts.
NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")
SETUP_FAILED = 126


def enter(cfg: dict[str, Any]) -> None:
    """Cgroup first (so the command is accounted and frozen with the container), then namespaces."""
    for path in cfg["procs"]:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
    pid = cfg["pid"]
    fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    sc = LinuxSyscalls()
    for fd in fds:
        sc.setns(fd, 0)
        os.close(fd)
    # The namespace's root is the container's "/" after its pivot_root; make sure.
    os.fchdir(root)
    os.chroot(".")
    os.close(root)


def command(cfg: dict[str, Any], ctl: socket.socket) -> NoReturn:
    """In the container's PID namespace now: become the user and exec."""
    sc = LinuxSyscalls()
    init.reset_signals()
    os.setsid()
    try:
        user = init.resolve_user(sc, cfg["user"])
        if cfg["tty"]:
            master = init.open_console(user)
            socket.send_fds(ctl, [b"pty"], [master])
            os.close(master)
        env = with_home(list(cfg["env"]), user.home)
        if cfg["tty"] and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        os.chdir(cfg["cwd"] or "/")
        init.become_user(sc, user, cfg["caps"], not cfg["privileged"])
    except Exception as e:  # reported to the daemon, like an exec failure
        message = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) else str(e)
        ctl.send(f"exec:{SETUP_FAILED}:{message}".encode())
        os._exit(SETUP_FAILED)
    os.umask(0o022)
    init.exec_or_report(cfg["args"], env, ctl)


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[0])
    ctl = socket.socket(fileno=int(argv[1]))
    os.set_inheritable(ctl.fileno(), False)
    try:
        enter(cfg)
    except Exception as e:
        ctl.send(f"exec:{SETUP_FAILED}:cannot enter the container: {e}".encode())
        os._exit(SETUP_FAILED)
    child = os.fork()  # only a child really lives in the container's PID namespace
    if child == 0:
        command(cfg, ctl)
    # The daemon may be gone by now (killed mid-start); the command is running all the
    # same, so it is still waited for, and still held to its deadline.
    with contextlib.suppress(OSError):
        ctl.send(f"pid:{child}".encode())
    ctl.close()
    os._exit(status_code(wait(child, float(cfg.get("deadline") or 0))))


def wait(child: int, deadline: float) -> int:
    """The command's wait status; past `deadline` seconds (when > 0) its process group
    (it is a session leader) is killed first."""
    if deadline > 0:
        pidfd = os.pidfd_open(child)
        try:
            if not select.select([pidfd], [], [], deadline)[0]:
                kill_session(child)
        finally:
            os.close(pidfd)
    return os.waitpid(child, 0)[1]


if __name__ == "__main__":
    main(sys.argv[1:])
