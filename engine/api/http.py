"""A small HTTP/1.1 server on a unix socket, shaped for the Docker Engine API.

Docker's API needs three things a plain request/response server lacks:
chunked streaming replies (pull progress, logs -f, events), connection
hijacking (attach and exec start upgrade the socket to a raw stream) and
version-prefixed paths (`/v1.50/containers/json`). engine/api/httpproto.py (http.server's
rules without its imports) gives us HTTP/1.1 parsing and keep-alive; everything else
lives here, so routes only ever see a `Request` and return a `Reply`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from engine.api.httpproto import HttpRequestHandler
from engine.errors import EngineError, InvalidParameter

log = logging.getLogger("engine.api")

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")
MAX_JSON_BODY = 16 * 1024 * 1024  # a create body is a few KiB; more is a mistake or an attack
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def version_tuple(text: str) -> tuple[int, ...]:
    """ "1.9" < "1.24" as versions, which string comparison gets wrong."""
    return tuple(int(part) for part in text.split("."))


class NoSpace(EngineError):
    """The engine's disk is full: nothing the request did was kept, freeing space fixes it."""

    status = 507


def storage_error(exc: BaseException, root: str = "") -> EngineError | None:
    """ENOSPC / EDQUOT, raised directly or as the cause of an engine error, as an error
    that says what to do; None for anything else."""
    seen: BaseException | None = exc
    while seen is not None and not (isinstance(seen, OSError) and seen.errno in _NO_SPACE):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    where = f" under {root}" if root else ""
    detail = exc.message if isinstance(exc, EngineError) else str(seen.strerror or seen)
    return NoSpace(
        f"no space left on device{where} ({detail}). Nothing was stored; free space "
        "(docker image prune, docker container prune, docker volume prune) and retry"
    )


class ChunkedReader:
    """Reads a chunked request body as a plain stream (docker load, build)."""

    def __init__(self, rfile: BinaryIO) -> None:
        self.rfile = rfile
        self.left = 0
        self.done = False

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self.done and (n < 0 or len(out) < n):
            if self.left == 0:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise InvalidParameter("request body ended inside a chunk")
                self.left = _chunk_size(size_line)
                if self.left == 0:
                    self._skip_trailer()
                    break
            want = self.left if n < 0 else min(self.left, n - len(out))
            data = self.rfile.read(want)
            if not data:
                raise InvalidParameter("request body ended inside a chunk")
            out += data
            self.left -= len(data)
            if self.left == 0:
                self.rfile.readline(8)
        return bytes(out)

    def _skip_trailer(self) -> None:
        self.done = True
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass


def _chunk_size(line: bytes) -> int:
    text = line.split(b";")[0].strip()
    try:
        size = int(text, 16)
    except ValueError:
        raise InvalidParameter(
            f"malformed chunked request body: {text[:20]!r} is not a chunk size"
        ) from None
    if size < 0:
        raise InvalidParameter("malformed chunked request body: negative chunk size")
    return size


class LimitedReader:
    """A Content-Length body; a client that sends less than it announced gets a 400."""

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self.rfile = rfile
        self.length = length
        self.left = length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if n < 0 else min(n, self.left)
        data = self.rfile.read(want)  # a buffered read: short only at end of stream
        if len(data) < want:
            raise InvalidParameter(
                f"request body ended after {self.length - self.left + len(data)} of the "
                f"{self.length} bytes its Content-Length announced"
            )
        self.left -= len(data)
        return data


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: ChunkedReader | LimitedReader
    version: str
    params: dict[str, str] = field(default_factory=dict)
    _json: Any = None
    _connection: socket.socket | None = None

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int_arg(self, name: str, default: int = 0, lo: int = -(2**63), hi: int = 2**63 - 1) -> int:
        value = self.arg(name, "")
        if value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise InvalidParameter(
                f"invalid value for {name}: {value!r} is not an integer"
            ) from None
        if not lo <= number <= hi:
            raise InvalidParameter(
                f"invalid value for {name}: {number} is out of range; give {lo} to {hi}"
            )
        return number

    def json_arg(self, name: str) -> Any:
        value = self.arg(name, "")
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise InvalidParameter(f"invalid JSON in query parameter {name}") from None

    def json(self) -> Any:
        if self._json is None:
            raw = self.body.read(MAX_JSON_BODY + 1)
            if len(raw) > MAX_JSON_BODY:
                raise PayloadTooLarge(
                    f"request body is larger than {MAX_JSON_BODY} bytes; "
                    "a JSON request is never that large"
                )
            if not raw.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InvalidParameter(f"malformed JSON request body: {exc}") from None
                except RecursionError:
                    raise InvalidParameter(
                        "malformed JSON request body: nested too deeply"
                    ) from None
        return self._json

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise InvalidParameter("request body must be a JSON object")
        return body


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, bytes, or None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """A chunked reply whose chunks come from an iterator (progress, logs, events)."""

    chunks: Iterable[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HijackReply:
    """Take over the socket: the handler gets it after the upgrade header is sent."""

    run: Callable[[socket.socket, BinaryIO], None]
    multiplexed: bool = True  # Docker frames (no tty) or raw bytes (tty)

    @property
    def content_type(self) -> str:
        kind = "multiplexed" if self.multiplexed else "raw"
        return f"application/vnd.docker.{kind}-stream"


Handler = Callable[[Request], Reply | StreamReply | HijackReply]


class Router:
    def __init__(self, root: str = "") -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.root = root  # the engine's --root, named in disk-full errors
        self._lazy: list[tuple[tuple[str, ...], Callable[[Router], None]]] = []
        self._lazy_lock = threading.Lock()

    def add_lazy(self, prefixes: tuple[str, ...], register: Callable[[Router], None]) -> None:
        """Routes under `prefixes` (whole path segments) that `register` adds on the first
        request under one of them: a resource whose module is slow to import and seldom
        used (the builder, the registry client) then costs nothing at engine start."""
        self._lazy.append((prefixes, register))

    def load_all(self) -> None:
        """Register every lazy resource now (for code that lists the routes)."""
        for prefixes, _ in list(self._lazy):
            self._load_under(prefixes[0])

    def _load_under(self, path: str) -> None:
        with self._lazy_lock:
            for entry in list(self._lazy):
                prefixes, register = entry
                if any(path == p or path.startswith(p + "/") for p in prefixes):
                    register(self)
                    self._lazy.remove(entry)  # only once registered: a failure is retried

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+?)", pattern)  # image names hold slashes
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self.routes.append((method, re.compile(f"^{regex}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        if self._lazy:
            self._load_under(path)
        allowed = False
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                if m == method or (method == "HEAD" and m == "GET"):
                    return handler, {k: unquote(v) for k, v in found.groupdict().items()}
                allowed = True
        if allowed:
            raise MethodNotAllowed(f"method {method} not allowed on {path}")
        return None


class MethodNotAllowed(EngineError):
    status = 405


class PayloadTooLarge(EngineError):
    status = 413


def filter_flag(filters: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean filter value such as `dangling=true`, in either filter JSON shape."""
    values = filters.get(key)
    if not values:
        return default
    first = next(iter(values))
    return str(first).lower() in ("1", "true")


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"


class ApiHandler(HttpRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "Dockyard-Engine"  # the Server header send_response adds

    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s", format % args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    # Every method reaches the router, so an unsupported one is a JSON 405/404, not a 501 page.
    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_TRACE = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers too large, unknown
        method) as Docker-style JSON instead of an HTML page."""
        text = message or self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":  # the request line never parsed: answer in 1.1
            self.request_version = self.protocol_version
        hint = _PROTOCOL_HINTS.get(code, "")
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(code, message)
            self._common_headers()
            body = error_body(f"{text}{hint}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path, version = url.path, API_VERSION
        prefixed = _VERSION_PREFIX.match(path)
        if prefixed:
            version, path = prefixed.group(1), prefixed.group(2)
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            body = self._body_reader()
        except InvalidParameter as exc:
            self.close_connection = True  # the body's end is unknown: the stream is lost
            self._send(Reply(exc.status, {"message": exc.message}))
            return
        req = Request(
            method=self.command,
            path=path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            version=version,
        )
        req._connection = self.connection
        try:
            reply = self._route(req)
        except EngineError as exc:
            exc = storage_error(exc, self.server.router.root) or exc
            reply = Reply(exc.status, {"message": exc.message})
        except OSError as exc:
            full = storage_error(exc, self.server.router.root)
            reply = (
                self._internal(exc)
                if full is None
                else Reply(full.status, {"message": full.message})
            )
        except RecursionError as exc:
            reply = Reply(400, {"message": f"request is nested too deeply: {exc}"})
        except Exception as exc:  # a bug, not bad input: log it, tell the client plainly
            reply = self._internal(exc)
        self._drain(req)
        self._send(reply)

    def _internal(self, exc: Exception) -> Reply:
        log.exception("internal error on %s %s", self.command, self.path)
        return Reply(500, {"message": f"internal error: {exc}; the engine log has the details"})

    def _route(self, req: Request) -> Reply | StreamReply | HijackReply:
        if _VERSION_PREFIX.match(urlsplit(self.path).path):
            check_version(req.version)
        found = self.server.router.match(req.method, req.path)
        if found is None:
            raise NotFoundPage(f"page not found: {req.method} {req.path}")
        handler, req.params = found
        return handler(req)

    def _body_reader(self) -> ChunkedReader | LimitedReader:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return ChunkedReader(self.rfile)  # type: ignore[arg-type]
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():
            raise InvalidParameter(
                f"invalid Content-Length header {raw[:40]!r}: give the body size in bytes"
            )
        return LimitedReader(self.rfile, int(raw))  # type: ignore[arg-type]

    def _drain(self, req: Request) -> None:
        """Consume an unread body so the next keep-alive request parses cleanly."""
        try:
            while req.body.read(1 << 16):
                pass
        except (EngineError, OSError):
            self.close_connection = True

    def _common_headers(self) -> None:
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")

    def _send(self, reply: Reply | StreamReply | HijackReply) -> None:
        if isinstance(reply, HijackReply):
            self._hijack(reply)
        elif isinstance(reply, StreamReply):
            self._stream(reply)
        else:
            self._plain(reply)

    def _plain(self, reply: Reply) -> None:
        if reply.body is None:
            data = b""
        elif isinstance(reply.body, bytes):
            data = reply.body
        else:
            data = json.dumps(reply.body).encode() + b"\n"
        self.send_response(reply.status)
        self._common_headers()
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(data)

    def _stream(self, reply: StreamReply) -> None:
        self.send_response(reply.status)
        self._common_headers()
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()
        chunks: Iterator[bytes] = iter(reply.chunks)
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _hijack(self, reply: HijackReply) -> None:
        upgrade = "upgrade" in self.headers.get("Connection", "").lower()
        if upgrade:
            self.send_response(101, "UPGRADED")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", self.headers.get("Upgrade", "tcp"))
        else:
            self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", reply.content_type)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            reply.run(self.connection, self.rfile)  # type: ignore[arg-type]


class NotFoundPage(EngineError):
    status = 404


_PROTOCOL_HINTS = {
    400: "; the request line or headers are not valid HTTP/1.1",
    414: "; the URL is too long, send large values in the request body",
    431: "; the request headers are too large, send fewer or shorter headers",
    501: "; use GET, HEAD, POST, PUT or DELETE",
}


def check_version(version: str) -> None:
    """The `/vX.Y` prefix: Docker refuses versions it cannot speak, naming the range."""
    asked = version_tuple(version)
    if asked < version_tuple(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version "
            f"is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if asked > version_tuple(API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is "
            f"{API_VERSION}; let the client negotiate (DOCKER_API_VERSION unset) or ask "
            f"for {API_VERSION}"
        )


class ApiServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default of 5 refuses parallel clients (`docker stop $(docker ps -q)`).
    request_queue_size = 128

    def __init__(self, path: str, router: Router) -> None:
        self.router = router
        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        old = os.umask(0o117)  # the socket is born 0660: no window where it is world-writable
        try:
            super().__init__(path, ApiHandler)
        finally:
            os.umask(old)
        os.chmod(path, 0o660)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)
