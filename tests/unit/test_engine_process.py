"""The engine-process helper's own plumbing: HTTP over a unix socket, and start-up failure
reporting. A real unix-socket HTTP server stands in for the daemon."""

from __future__ import annotations

import http.server
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, EngineStartError, api_call, mounts_under


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"OK" if self.path == "/_ping" else b'{"message": "No such thing"}'
        self.send_response(200 if self.path == "/_ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_server() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dy-ut-") as d:
        path = Path(d) / "s.sock"
        server = _UnixHTTPServer(str(path), _Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield path
        finally:
            server.shutdown()
            server.server_close()


def test_api_call_over_unix_socket(unix_server: Path) -> None:
    assert api_call(unix_server, "GET", "/_ping") == (200, "OK")
    assert api_call(unix_server, "GET", "/nope") == (404, {"message": "No such thing"})


def test_engine_that_exits_reports_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    eng = EngineProcess()
    monkeypatch.setattr(
        eng, "argv", lambda: [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    )
    try:
        with pytest.raises(EngineStartError, match=r"exited with 3:\n.*boom"):
            eng.start(timeout=10)
    finally:
        eng.close()
    assert not eng.dir.exists()


def test_socket_path_stays_short() -> None:
    eng = EngineProcess()
    try:
        assert len(str(eng.socket)) < 100  # sun_path is 108 bytes on Linux, 104 on macOS
        assert eng.cgroup_parent.startswith("dockyard-it-")
        assert eng.env["DOCKER_HOST"] == f"unix://{eng.socket}"
    finally:
        eng.close()


def test_no_mounts_under_a_fresh_dir(tmp_path: Path) -> None:
    assert mounts_under(tmp_path) == []
