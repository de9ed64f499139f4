"""A pre-imported shim to fork from: `python -m engine.runtime.template CONTROL_FD`.

Starting a fresh interpreter and importing the shim costs ~100 ms, most of a
`docker run`. The daemon keeps one of these (single-threaded, so forking it is
safe) and sends it "STATE_DIR" plus the launch-report pipe over a socket; it
forks, and the child becomes the shim exactly as `shim.main` would. When the
daemon goes away the socket reaches EOF and the template exits; shims already
forked are detached and live on.

One fork, not a double fork: the template ignores SIGCHLD, so the kernel reaps
each shim itself when it ends, and a shim whose template has gone is adopted
by init like any orphan. The shim puts SIGCHLD back at once (it waits for its
container's init).
"""

from __future__ import annotations

import gc
import json  # noqa: F401  (the shim reads its spec.json)
import os
import signal
import socket
import sys

# Everything a shim and a container init need, paid for once here.
import engine.cgroups.manager
import engine.runtime.init  # noqa: F401
from engine.runtime import shim


def serve(ctl: socket.socket) -> None:
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 1)
        if not msg:
            return
        if not fds:
            continue
        try:
            pid = os.fork()
        except OSError as e:  # e.g. the pids limit: tell the waiting daemon why
            os.write(fds[0], f"error cannot fork a shim: {e.strerror}\n".encode())
            pid = -1
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            ctl.close()
            os.setsid()
            shim.run(msg.decode(), fds[0])
        os.close(fds[0])


def main(argv: list[str]) -> None:
    ctl = socket.socket(fileno=int(argv[0]))
    os.set_inheritable(ctl.fileno(), False)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # shims are reaped by the kernel
    # Move every imported object out of the collector's reach: a GC pass in a
    # forked shim would otherwise write to (and so copy) all the shared pages.
    gc.freeze()
    serve(ctl)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
