"""engine/api/httpproto.py keeps http.server's request rules: keep-alive by version and
Connection header, 100-continue, header lookup without case, folded headers, and refusals
of what is not HTTP. Driven over a real socketpair, one handler per connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.api.httpproto import HttpRequestHandler


class Echo(HttpRequestHandler):
    """Answers each request with its method, path and X-Name header."""

    def do_GET(self) -> None:
        body = f"{self.command} {self.path} {self.headers.get('x-name', '-')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@contextmanager
def connection() -> Iterator[socket.socket]:
    ours, theirs = socket.socketpair()
    server: Any = object()

    def serve() -> None:
        try:
            Echo(theirs, ("unix", 0), server)
        finally:
            theirs.close()  # as the server's shutdown_request would

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ours.settimeout(10)
    try:
        yield ours
    finally:
        ours.close()
        thread.join(10)


def replies(sock: socket.socket, data: bytes) -> bytes:
    """Everything the handler writes until it closes the connection."""
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_http11_keeps_the_connection_for_a_second_request() -> None:
    with connection() as sock:
        out = replies(
            sock,
            b"GET /a HTTP/1.1\r\nX-Name: one\r\n\r\nGET /b HTTP/1.1\r\nx-name: two\r\n\r\n",
        )
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert out.endswith(b"GET /b two")
    assert b"GET /a one" in out


def test_connection_close_and_http10_end_after_one_reply() -> None:
    for request in (
        b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    ):
        with connection() as sock:
            out = replies(sock, request)
        assert out.count(b" 200 OK\r\n") == 1, request


def test_expect_100_continue_is_answered_before_the_reply() -> None:
    with connection() as sock:
        out = replies(
            sock, b"POST /p HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


def test_a_folded_header_continues_the_one_before() -> None:
    with connection() as sock:
        out = replies(sock, b"GET / HTTP/1.1\r\nX-Name: a\r\n b\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"GET / a b")


def test_a_network_path_is_a_plain_path() -> None:
    with connection() as sock:
        out = replies(sock, b"GET //x/y HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"GET /x/y -")


def test_what_is_not_http_is_refused_with_its_status() -> None:
    cases = {
        b"GET / HTTP/x.y\r\n\r\n": b" 400 ",
        b"GET / HTTP/2.0\r\n\r\n": b" 505 ",
        b"GET / extra HTTP/1.1\r\n\r\n": b" 400 ",
        b"BREW /pot HTTP/1.1\r\n\r\n": b" 501 ",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n": b" 414 ",
        b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n": b" 431 ",
    }
    for request, status in cases.items():
        with connection() as sock:
            out = replies(sock, request)
        assert out.split(b"\r\n", 1)[0].find(status) > 0, (request[:40], out[:80])
