"""A small Docker Engine API client over the engine's unix socket.

Why our own instead of the docker SDK: the app (compose, later the GUI) needs a handful of
calls plus three kinds of streams (multiplexed logs, JSON-line pull progress, events), and
a client of ~200 lines that we can read is easier to keep correct than a dependency whose
transport stack we would have to configure. It knows HTTP and the Engine API's framing,
nothing about compose.

Which engine, in the docker CLI's order: `-H/--host`, then `DOCKER_HOST`, then the docker
context named by `DOCKER_CONTEXT` or the CLI config's `currentContext`, then the default
socket. Addresses are `unix://PATH`, `tcp://HOST:PORT` and `ssh://[USER@]HOST[:PORT]`
(app/sshdial.py: `docker system dial-stdio` on the remote, as the CLI does).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urlencode

from app import dockercontexts

DEFAULT_HOST = "unix:///run/dockyard/docker.sock"
API_PREFIX = "/v1.47"


class EngineError(Exception):
    """The engine answered with an error status; `message` is its Docker-style text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotFound(EngineError):
    pass


class Conflict(EngineError):
    pass


UNREACHABLE_HINT = "is it running? Use -H, DOCKER_HOST or a docker context to choose another"


class Unreachable(EngineError):
    """No engine answers at the address: the message says which address and what to do."""

    def __init__(self, host: str, why: str, hint: str = UNREACHABLE_HINT) -> None:
        super().__init__(0, f"cannot connect to the engine at {host} ({why}); {hint}")


def resolve_host(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """-H wins, then DOCKER_HOST, then DOCKER_CONTEXT or the config's currentContext (a
    context that does not exist is an EngineError, as in the CLI), then the default socket."""
    environ = os.environ if env is None else env
    if explicit or environ.get("DOCKER_HOST"):
        return explicit or environ["DOCKER_HOST"]
    name = dockercontexts.current_name(environ)
    if name == dockercontexts.DEFAULT:
        return DEFAULT_HOST
    try:
        return dockercontexts.endpoint(name, environ)
    except dockercontexts.ContextError as e:
        raise EngineError(0, str(e)) from None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _error_for(status: int, raw: bytes) -> EngineError:
    try:
        message = str(json.loads(raw).get("message", ""))
    except (ValueError, AttributeError):
        message = raw.decode(errors="replace").strip()
    message = message or f"engine answered HTTP {status}"
    kind = {404: NotFound, 409: Conflict}.get(status, EngineError)
    return kind(status, message)


class EngineClient:
    """One connection per call: calls are few and some hold a stream open for a long time."""

    def __init__(self, host: str | None = None, timeout: float = 300.0) -> None:
        self.host = resolve_host(host)
        self.timeout = timeout

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.host.startswith("unix://"):
            return _UnixConnection(self.host[len("unix://") :], timeout)
        if self.host.startswith("tcp://"):
            return http.client.HTTPConnection(self.host[len("tcp://") :], timeout=timeout)
        if self.host.startswith("ssh://"):
            from app import sshdial  # paramiko loads only for an SSH engine

            return sshdial.SshConnection(self.host, timeout)
        raise EngineError(
            0,
            f"unsupported engine address {self.host!r}: "
            "use unix://PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]",
        )

    def _open(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
        upload: tuple[IO[bytes], int, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = API_PREFIX + path + ("?" + urlencode(query) if query else "")
        payload: bytes | IO[bytes] | None = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if upload is not None:  # (file, its size, content type): a body sent as it is read
            payload = upload[0]
            headers = {"Content-Type": upload[2], "Content-Length": str(upload[1])}
        headers.update(extra_headers or {})
        conn = self._connection(self.timeout if timeout == -1.0 else timeout)
        try:
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            conn.close()
            raise Unreachable(self.host, e.strerror or str(e)) from None
        except BaseException:
            conn.close()
            raise
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise _error_for(resp.status, raw)
        return conn, resp

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """One JSON call: the decoded reply, or None for an empty one."""
        conn, resp = self._open(method, path, params, body)
        try:
            raw = resp.read()
        finally:
            conn.close()
        return json.loads(raw) if raw.strip() else None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params)

    def post(self, path: str, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        return self.call("POST", path, params, body)

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("DELETE", path, params)

    def stream(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Iterator[bytes]:
        """The reply body as it arrives (chunked encoding undone); no timeout while waiting."""
        conn, resp = self._open(method, path, params, body, timeout=None)
        try:
            while chunk := resp.read1(65536):
                yield chunk
        finally:
            conn.close()

    def build(
        self,
        context: IO[bytes],
        size: int,
        params: Mapping[str, Any],
        registry_config: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """POST /build with a context tar; the progress messages as they come (an `error`
        message is yielded like any other: the caller shows the step's output first).
        `registry_config` is the X-Registry-Config header: logins for pulling FROM images."""
        conn, resp = self._open(
            "POST",
            "/build",
            params,
            timeout=None,
            upload=(context, size, "application/x-tar"),
            extra_headers={"X-Registry-Config": registry_config} if registry_config else None,
        )
        try:
            yield from _json_lines(iter(lambda: resp.read1(65536), b""))
        finally:
            conn.close()

    def open_stream(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The connection and its response once the headers arrived, for a long stream that
        another thread must be able to end: shutting the connection's socket down wakes the
        reader (the GUI cancels its events and logs streams so). The caller closes it."""
        return self._open(method, path, params, body, timeout=None)

    def json_stream(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Iterator[dict[str, Any]]:
        """JSON-lines replies (pull progress, events), one object per line."""
        yield from _json_lines(self.stream(method, path, params, body))

    # -- the few resource calls every client needs ------------------------------------

    def inspect_container(self, ref: str) -> dict[str, Any]:
        return dict(self.get(f"/containers/{quote(ref, safe='')}/json"))

    def containers(self, labels: list[str], all_: bool = True) -> list[dict[str, Any]]:
        """Containers carrying every `key=value` label given."""
        filters = json.dumps({"label": labels})
        return list(self.get("/containers/json", {"all": all_, "filters": filters}))

    def pull(self, image: str) -> Iterator[dict[str, Any]]:
        """Pull progress messages; an `error` message in the stream becomes an EngineError."""
        name, tag = split_tag(image)
        for msg in self.json_stream("POST", "/images/create", {"fromImage": name, "tag": tag}):
            if msg.get("error"):
                raise EngineError(500, str(msg.get("error")))
            yield msg

    def logs(
        self,
        ref: str,
        follow: bool = False,
        tail: str = "all",
        timestamps: bool = False,
        tty: bool = False,
    ) -> Iterator[tuple[int, bytes]]:
        """(stream, bytes) pieces: 1 stdout, 2 stderr; a tty container's log is one stream."""
        params = {
            "stdout": True,
            "stderr": True,
            "follow": follow,
            "tail": tail,
            "timestamps": timestamps,
        }
        chunks = self.stream("GET", f"/containers/{quote(ref, safe='')}/logs", params)
        if tty:
            for chunk in chunks:
                yield 1, chunk
            return
        yield from demux(chunks)


def _json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


def demux(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split Docker's multiplexed stream: 8-byte header (stream, 0, 0, 0, size BE32), data."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            kind, size = struct.unpack(">BxxxI", buf[:8])
            if len(buf) < 8 + size:
                break
            yield kind, buf[8 : 8 + size]
            buf = buf[8 + size :]


def split_tag(image: str) -> tuple[str, str]:
    """("busybox", "latest") from "busybox"; a registry port is not a tag; digests kept."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
