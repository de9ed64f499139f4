"""A pre-imported shim to fork from: `python -m engine.runtime.template CONTROL_FD`.

Starting a fresh interpreter and importing the shim costs ~100 ms, most of a
`docker run`. The daemon keeps one of these (single-threaded, so forking it is
safe) and sends it "STATE_DIR" plus the launch-report pipe over a socket; it
forks, and the child becomes the shim exactly as `shim.main` would. When the
daemon goes away the socket reaches EOF and the template exits; shims already
forked are detached and live on.
"""

from __future__ import annotations

import gc
import os
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
        pid = os.fork()
        if pid == 0:
            ctl.close()
            os.setsid()
            shim.main([msg.decode(), str(fds[0])])
        os.close(fds[0])
        os.waitpid(pid, 0)  # shim.main forks again and this child exits at once


def main(argv: list[str]) -> None:
    ctl = socket.socket(fileno=int(argv[0]))
    os.set_inheritable(ctl.fileno(), False)
    # Move every imported object out of the collector's reach: a GC pass in a
    # forked shim would otherwise write to (and so copy) all the shared pages.
    gc.freeze()
    serve(ctl)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
