"""The engine client against a real unix-socket HTTP server: JSON calls, Docker-style
errors, chunked JSON-line streams and the multiplexed log framing."""

from __future__ import annotations

import http.server
import json
import socketserver
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine_client import (
    Conflict,
    EngineClient,
    EngineError,
    NotFound,
    Unreachable,
    demux,
    resolve_host,
    split_tag,
)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, chunked: bool = False) -> None:
        self.send_response(status)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/v1.47/containers/json"):
            self._send(200, json.dumps([{"Id": "abc", "Path": self.path}]).encode())
        elif self.path.startswith("/v1.47/containers/x/logs"):
            frames = struct.pack(">BxxxI", 1, 6) + b"out 1\n" + struct.pack(">BxxxI", 2, 4)
            self._send(200, frames + b"err\n", chunked=True)
        else:
            self._send(404, b'{"message": "No such container: nope"}')

    def do_POST(self) -> None:
        if self.path.startswith("/v1.47/images/create?fromImage=bad"):
            self._send(200, b'{"status": "a"}\n{"error": "manifest unknown"}\n', chunked=True)
        elif self.path.startswith("/v1.47/images/create"):
            self._send(200, b'{"status": "a"}\n{"status": "b"}\n', chunked=True)
        else:
            self._send(409, b'{"message": "name in use"}')


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        request, _ = super().get_request()
        return request, ("local", 0)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[EngineClient]:
    sock = tmp_path / "e.sock"
    server = _Server(str(sock), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield EngineClient(f"unix://{sock}")
    finally:
        server.shutdown()
        server.server_close()


def test_json_call_and_filters(client: EngineClient) -> None:
    got = client.containers(["a=b"])
    assert got[0]["Id"] == "abc"
    assert "filters=" in got[0]["Path"] and "all=1" in got[0]["Path"]


def test_errors_are_typed_with_the_engine_message(client: EngineClient) -> None:
    with pytest.raises(NotFound, match="No such container: nope"):
        client.inspect_container("nope")
    with pytest.raises(Conflict, match="name in use"):
        client.post("/containers/create")


def test_streams(client: EngineClient) -> None:
    assert [m["status"] for m in client.pull("busybox")] == ["a", "b"]
    assert list(client.logs("x")) == [(1, b"out 1\n"), (2, b"err\n")]


def test_an_error_inside_a_pull_stream_raises(client: EngineClient) -> None:
    with pytest.raises(EngineError, match="manifest unknown"):
        list(client.pull("bad"))


def test_unreachable_engine_says_where(tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match=f"cannot connect to the engine at unix://{tmp_path}"):
        EngineClient(f"unix://{tmp_path}/none.sock").get("/_ping")


def test_host_resolution() -> None:
    assert resolve_host("unix:///a", {"DOCKER_HOST": "unix:///b"}) == "unix:///a"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///b"}) == "unix:///b"
    assert resolve_host(None, {}) == "unix:///run/dockyard/docker.sock"


def test_demux_across_chunk_boundaries() -> None:
    data = struct.pack(">BxxxI", 1, 3) + b"abc" + struct.pack(">BxxxI", 2, 2) + b"de"
    chunks = iter([data[:4], data[4:10], data[10:]])
    assert list(demux(chunks)) == [(1, b"abc"), (2, b"de")]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36")),
        ("127.0.0.1:5000/busybox", ("127.0.0.1:5000/busybox", "latest")),
        ("127.0.0.1:5000/busybox:x", ("127.0.0.1:5000/busybox", "x")),
        ("busybox@sha256:ab", ("busybox", "sha256:ab")),
    ],
)
def test_split_tag(image: str, expected: tuple[str, str]) -> None:
    assert split_tag(image) == expected
