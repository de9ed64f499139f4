"""A throwaway HTTP server on 127.0.0.1, served from a background thread, for tests that need a
real peer (registry fronts, token realms) without the noise of its request log."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the access log off the test output."""

    def log_message(self, *args: Any) -> None:
        pass


class BackgroundHTTPServer:
    """Base for test servers: `serve(Handler)` binds a free port and starts serving; `close()`
    (or leaving a `with` block) stops the thread and frees the port."""

    httpd: ThreadingHTTPServer
    host: str
    thread: threading.Thread

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
