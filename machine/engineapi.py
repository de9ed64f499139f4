"""A minimal Docker Engine API client over a unix socket, standard library only.

Why not app/engine_client.py: machine/ sits below app/ (tests/unit/test_layering.py), and
the port forwarder needs only two calls: a JSON GET and the `/events` stream.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _url(path: str, params: Mapping[str, Any] | None) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def get_json(
    sock: Path, path: str, params: Mapping[str, Any] | None = None, timeout: float = 30.0
) -> Any:
    """GET `path`; the decoded JSON body. OSError when the engine does not answer 2xx."""
    conn = _UnixConnection(sock, timeout)
    try:
        conn.request("GET", _url(path, params), headers={"Host": "docker"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status // 100 != 2:
            raise OSError(f"GET {path}: {resp.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


class EventStream:
    """`GET /events` filtered to containers; iterate for decoded events.

    Opening returns once the engine answered the request, so a caller can subscribe first
    and then list what exists, missing nothing in between. A read timeout (OSError)
    reaches the iterating caller, who uses it as a periodic wake-up."""

    def __init__(self, sock: Path, read_timeout: float | None = None) -> None:
        filters = json.dumps({"type": ["container"]})
        self._conn = _UnixConnection(sock, 10.0)
        self._conn.request("GET", _url("/events", {"filters": filters}), headers={"Host": "docker"})
        self._resp = self._conn.getresponse()
        if self._resp.status != 200:
            self.close()
            raise OSError(f"GET /events: {self._resp.status}")
        if self._conn.sock is not None:
            self._conn.sock.settimeout(read_timeout)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while line := self._resp.readline():
            if line.strip():
                yield json.loads(line)

    def close(self) -> None:
        self._conn.close()
