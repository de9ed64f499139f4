"""HTTP/1.1 request parsing and response heads: the part of http.server the API uses.

http.server's request handler brings http.client, ssl and the email package (about 25
modules) into every engine start, to parse a request line and some headers. Under an
emulated guest CPU that is close to a second of the wait for the first `docker ps`, so
this module does the same job with the same rules and names (`handle_one_request`,
`parse_request`, `send_response`, `send_header`, `end_headers`, `send_error`), and
api/http.py builds on it exactly as it did on BaseHTTPRequestHandler.
"""

from __future__ import annotations

import socketserver
import time
from http import HTTPStatus
from typing import Any

MAX_LINE = 65536  # as http.server: a longer request line is a 414, a longer header a 431
MAX_HEADERS = 100
RESPONSES = {s.value: (s.phrase, s.description) for s in HTTPStatus}


class Headers:
    """Request headers, looked up without regard to case; the first of a repeated name."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, name: str, default: Any = None) -> Any:
        wanted = name.lower()
        for key, value in self._pairs:
            if key.lower() == wanted:
                return value
        return default

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


class _HeaderError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HttpRequestHandler(socketserver.StreamRequestHandler):
    """One connection: requests in turn while keep-alive lasts, each to `do_<METHOD>`."""

    protocol_version = "HTTP/1.1"
    responses = RESPONSES
    default_request_version = "HTTP/0.9"

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if len(self.raw_requestline) > MAX_LINE:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(
                    HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})"
                )
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.log_message("request timed out")
            self.close_connection = True

    def parse_request(self) -> bool:
        """Request line and headers into command, path, request_version and headers;
        False (after an error reply) when they are not HTTP."""
        self.command = ""
        self.request_version = version = self.default_request_version
        self.close_connection = True
        self.headers = Headers([])
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            number = _version_number(version)
            if number is None:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if number >= (2, 0):
                self.send_error(
                    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})"
                )
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({self.requestline!r})")
            return False
        self.command, self.path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if self.command != "GET":
                self.send_error(
                    HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({self.command!r})"
                )
                return False
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # not a network-path reference
        try:
            self.headers = Headers(self._read_headers())
        except _HeaderError as exc:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, exc.message)
            return False
        connection = str(self.headers.get("Connection", "")).lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = str(self.headers.get("Expect", "")).lower()
        if (
            expect == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        return True

    def _read_headers(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise _HeaderError("Line too long")
            if line in (b"\r\n", b"\n", b""):
                return pairs
            if len(pairs) >= MAX_HEADERS:
                raise _HeaderError(f"Too many headers (more than {MAX_HEADERS})")
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and pairs:  # an obsolete folded continuation
                name, value = pairs[-1]
                pairs[-1] = (name, f"{value} {text.strip()}")
                continue
            name, sep, value = text.partition(":")
            if sep and name and name == name.strip():
                pairs.append((name, value.strip()))

    # -- the reply's head ----------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Subclasses answer in their own format; this is a bare status line."""
        if self.request_version == "HTTP/0.9":  # the request line never parsed: answer in 1.1
            self.request_version = self.protocol_version
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_message('"%s" %s', self.requestline, str(int(code)))
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))

    def send_response_only(self, code: int, message: str | None = None) -> None:
        if message is None:
            message = self.responses.get(int(code), ("",))[0]
        if self.request_version != "HTTP/0.9":
            self._head = getattr(self, "_head", [])
            self._head.append(f"{self.protocol_version} {int(code)} {message}\r\n".encode())

    def send_header(self, keyword: str, value: str) -> None:
        if self.request_version != "HTTP/0.9":
            self._head = getattr(self, "_head", [])
            self._head.append(f"{keyword}: {value}\r\n".encode("latin-1", "strict"))
        if keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def end_headers(self) -> None:
        if self.request_version != "HTTP/0.9":
            head = getattr(self, "_head", [])
            head.append(b"\r\n")
            self.wfile.write(b"".join(head))
            self._head = []

    def version_string(self) -> str:
        return "Python"

    def log_message(self, format: str, *args: Any) -> None:
        """Subclasses log where they like; nothing by default."""


def _version_number(version: str) -> tuple[int, int] | None:
    """(1, 1) for "HTTP/1.1"; None when it is not an HTTP version."""
    if not version.startswith("HTTP/"):
        return None
    major, sep, minor = version[5:].partition(".")
    if not sep or "." in minor or not major.isdigit() or not minor.isdigit():
        return None
    if len(major) > 10 or len(minor) > 10:
        return None
    return int(major), int(minor)
