"""One thread that notices every container exit, without a thread per container.

Each running container's shim hands the daemon a socket that reaches EOF when
the container's init ends; a selector watches all of them, so 1,000 running
containers cost one thread. The exit itself is handled off this thread,
because handling takes the container's lock and may restart it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("engine.monitor")


class ExitMonitor:
    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self.on_exit = on_exit
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, socket.socket]] = []
        self._stopped = False
        self.thread = threading.Thread(target=self._run, name="exit-monitor", daemon=True)
        self.thread.start()

    def watch(self, cid: str, sock: socket.socket) -> None:
        with self._lock:
            self._pending.append((cid, sock))
        os.write(self._wake_w, b"x")

    def stop(self) -> None:
        self._stopped = True
        os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while not self._stopped:
            for key, _ in self.selector.select():
                if key.data is None:
                    self._take_new()
                else:
                    self._check(key.data, key.fileobj)  # type: ignore[arg-type]

    def _take_new(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            new, self._pending = self._pending, []
        for cid, sock in new:
            self.selector.register(sock, selectors.EVENT_READ, cid)

    def _check(self, cid: str, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if data:
            return  # the shim may send notices; only EOF means the container ended
        self.selector.unregister(sock)
        sock.close()
        threading.Thread(
            target=self._handle, args=(cid,), name=f"exit-{cid[:12]}", daemon=True
        ).start()

    def _handle(self, cid: str) -> None:
        try:
            self.on_exit(cid)
        except Exception:
            log.exception("handling the exit of container %s failed", cid[:12])
