"""The embedded DNS server, made when the first container needs a listener.

engine.network.dns brings its wire format, forwarder and resolv.conf reader: modules
that every engine start would import (seconds, added up, in an emulated guest) although
the server has nothing to do until a container with a network namespace starts or is
recovered. This stand-in takes the server's place in the container manager and makes
the real one, started, on the first `add`; until then there is nothing to remove, update
or stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.network.dns import EmbeddedDns

Resolve = Callable[[str, str], list[str] | None]
Reverse = Callable[[str, str], str | None]


class DnsOnDemand:
    """EmbeddedDns(resolve, reverse=reverse), made and started by the first `add`."""

    def __init__(self, resolve: Resolve, reverse: Reverse | None = None) -> None:
        self._resolve = resolve
        self._reverse = reverse
        self._lock = threading.Lock()
        self._server: EmbeddedDns | None = None
        self._started = False  # start() was called: the server starts once made
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            self._started = True
            server = self._server
        if server is not None:
            server.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            server = self._server
        if server is not None:
            server.stop()

    def add(
        self,
        container_id: str,
        netns_path: Path,
        upstreams: list[tuple[str, int]] | None = None,
        forward: bool = True,
    ) -> None:
        self._made().add(container_id, netns_path, upstreams, forward)

    def set_forwarding(self, container_id: str, forward: bool) -> None:
        if self._server is not None:
            self._server.set_forwarding(container_id, forward)

    def remove(self, container_id: str) -> None:
        if self._server is not None:
            self._server.remove(container_id)

    def containers(self) -> list[str]:
        return [] if self._server is None else self._server.containers()

    def _made(self) -> EmbeddedDns:
        with self._lock:
            if self._stopped:
                raise OSError("the embedded DNS server is stopped: the engine is shutting down")
            if self._server is None:
                # The one import of the server, deferred: see the module docstring.
                from engine.network.dns import EmbeddedDns

                server = EmbeddedDns(self._resolve, reverse=self._reverse)
                if self._started:
                    server.start()  # in the caller's thread: the engine's own netns
                self._server = server
            return self._server
