"""A small distribution-v2 client: manifests and resumable blob downloads.

Built on http.client so the engine needs nothing beyond the standard library.
One connection per request keeps it safe to use from several download threads.
Every byte it hands back is verified: manifests against the digest asked for
(or the one the registry claims), blobs by BlobStore.ingest on commit.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from engine.errors import EngineError, NotFound
from engine.images.auth import Authenticator, Credentials, Unauthorized
from engine.images.blobstore import DigestMismatch, Ingest
from engine.images.manifest import ACCEPT
from engine.images.reference import Reference

CHUNK = 64 * 1024
MAX_MANIFEST = 4 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = 60.0


class RegistryUnreachable(EngineError):
    """DNS, TCP or TLS failed: the registry never answered."""


def is_insecure(endpoint: str, insecure: Sequence[str] = ()) -> bool:
    """Plain HTTP for localhost, 127.0.0.0/8, ::1 and the configured list (as Docker does)."""
    host = urllib.parse.urlsplit("//" + endpoint).hostname or ""
    if endpoint in insecure or host in insecure or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Response:
    status: int
    headers: http.client.HTTPMessage
    body: http.client.HTTPResponse

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


def _registry_error(raw: bytes) -> str:
    """`manifest unknown: manifest unknown`, as Docker words registry errors."""
    try:
        doc = json.loads(raw)
        first = doc["errors"][0]
        code = str(first.get("code", "")).lower().replace("_", " ")
        message = str(first.get("message", ""))
        return f"{code}: {message}" if code and message else code or message
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return raw.decode(errors="replace").strip()[:200]


class RegistryClient:
    """Talks to one registry (`ref.endpoint`) with one set of credentials."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials | None = None,
        *,
        insecure: Sequence[str] = (),
        timeout: float = TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.scheme = "http" if is_insecure(endpoint, insecure) else "https"
        self.auth = Authenticator(credentials)
        self.timeout = timeout
        self._ssl = ssl.create_default_context()

    # ---- public API --------------------------------------------------------------

    def get_manifest(self, ref: Reference, accept: str = ACCEPT) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest `ref` names; verified."""
        target = ref.digest or ref.tag or "latest"
        path = f"/v2/{ref.path}/manifests/{target}"
        with self._request("GET", path, ref.path, {"Accept": accept}) as resp:
            if resp.status in (401, 403) and self.auth.credentials.empty:
                raise Unauthorized(
                    f"pull access denied for {ref.repository}, repository does not exist or "
                    f"may require 'docker login': {_registry_error(resp.body.read())}"
                )
            if resp.status == 404:
                raise NotFound(
                    f"manifest for {ref.familiar} not found: {_registry_error(resp.body.read())}"
                )
            self._raise_for_status(resp, f"fetching manifest for {ref.familiar}")
            data = resp.body.read(MAX_MANIFEST + 1)
        if len(data) > MAX_MANIFEST:
            raise EngineError(f"manifest for {ref.familiar} is larger than {MAX_MANIFEST} bytes")
        media_type = resp.header("Content-Type").split(";")[0].strip()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        for claimed in (ref.digest, resp.header("Docker-Content-Digest")):
            if claimed and claimed.startswith("sha256:") and claimed != actual:
                raise DigestMismatch(
                    f"manifest for {ref.familiar} has digest {actual}, expected {claimed}"
                )
        return data, media_type, actual

    def fetch_blob(
        self,
        repo: str,
        digest: str,
        ingest: Ingest,
        *,
        size: int | None = None,
        on_bytes: Callable[[int, int], None] | None = None,
    ) -> None:
        """Stream blob `digest` of repository path `repo` into `ingest`, resuming at its offset.

        `on_bytes(current, total)` is called after each chunk. The digest is
        checked when the caller's `BlobStore.ingest` block commits.
        """
        if size is not None and ingest.offset > size:
            _discard(ingest, f"is longer than the {size}-byte blob")
        if size is not None and size > 0 and ingest.offset == size:
            return  # already complete; the commit verifies it
        headers = {"Range": f"bytes={ingest.offset}-"} if ingest.offset else {}
        with self._request("GET", f"/v2/{repo}/blobs/{digest}", repo, headers) as resp:
            if resp.status == 416 and ingest.offset:
                _discard(ingest, "was refused by the registry (416)")
            if resp.status == 404:
                detail = _registry_error(resp.body.read())
                raise NotFound(f"blob {digest} not found in {repo}: {detail}")
            self._raise_for_status(resp, f"fetching blob {digest}")
            total = self._prepare_resume(resp, ingest, size)
            self._copy(resp, ingest, total, digest, on_bytes)

    def check_login(self) -> None:
        """GET /v2/ with the credentials, as dockerd's login does; Unauthorized if refused.

        A registry without auth answers 200 to anyone, and that is a success
        too (Docker says "Login Succeeded" there as well).
        """
        url = f"{self.scheme}://{self.endpoint}/v2/"
        with self._request("GET", "/v2/", "", {}) as resp:
            if resp.status in (401, 403):
                raise Unauthorized(
                    f"login attempt to {url} failed with status: {resp.status} {resp.body.reason}"
                )
            self._raise_for_status(resp, "logging in")

    # ---- streaming -----------------------------------------------------------------

    @staticmethod
    def _prepare_resume(resp: _Response, ingest: Ingest, size: int | None) -> int:
        """Reconcile the partial file with the reply; returns the expected total size."""
        if resp.status == 206:
            crange = resp.header("Content-Range")  # bytes START-END/TOTAL
            start = crange.removeprefix("bytes ").split("-", 1)[0]
            if not start.isdigit() or int(start) != ingest.offset:
                raise EngineError(f"registry answered range {crange!r} for offset {ingest.offset}")
        length = resp.header("Content-Length")
        total = ingest.offset + int(length) if length.isdigit() else -1
        if resp.status == 200 and ingest.offset:
            # The server ignored Range and sends everything: skip what we have.
            total = int(length) if length.isdigit() else -1
            _skip(resp, ingest.offset)
        return size if size is not None else total

    @staticmethod
    def _copy(
        resp: _Response,
        ingest: Ingest,
        total: int,
        digest: str,
        on_bytes: Callable[[int, int], None] | None,
    ) -> None:
        while True:
            try:
                chunk = resp.body.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise EngineError(f"download of {digest} interrupted: {e}") from None
            if not chunk:
                break
            if total >= 0 and ingest.offset + len(chunk) > total:
                raise DigestMismatch(f"blob {digest} is larger than the {total} bytes expected")
            ingest.write(chunk)
            if on_bytes:
                on_bytes(ingest.offset, total)
        if total >= 0 and ingest.offset != total:
            raise EngineError(
                f"download of {digest} ended early at {ingest.offset} of {total} bytes"
            )

    # ---- HTTP ----------------------------------------------------------------------

    def _raise_for_status(self, resp: _Response, doing: str) -> None:
        if 200 <= resp.status < 300:
            return
        detail = _registry_error(resp.body.read(64 * 1024))
        if resp.status in (401, 403):
            raise Unauthorized(f"unauthorized: {detail}" if detail else "unauthorized")
        raise EngineError(f"{doing} from {self.endpoint}: HTTP {resp.status}: {detail}")

    @contextmanager
    def _request(
        self, method: str, path: str, repo: str, headers: dict[str, str]
    ) -> Iterator[_Response]:
        """One request with auth (401 -> answer the challenge -> retry once) and redirects."""
        scope = f"repository:{repo}:pull" if repo else ""  # no repository: a login check
        url = f"{self.scheme}://{self.endpoint}{path}"
        auth = self.auth.header_for(scope)
        resp, conn = self._send(method, url, headers, auth)
        try:
            if resp.status == 401:
                challenge = resp.header("WWW-Authenticate")
                resp.body.read()
                conn.close()
                if not challenge:
                    raise Unauthorized("unauthorized: registry sent 401 without a challenge")
                auth = self.auth.answer(challenge, scope)
                resp, conn = self._send(method, url, headers, auth)
            yield resp
        finally:
            conn.close()

    def _send(
        self, method: str, url: str, headers: dict[str, str], auth: str | None
    ) -> tuple[_Response, http.client.HTTPConnection]:
        """Send, following redirects; Authorization goes only to the registry's own host."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            conn = self._connect(parts)
            sent = dict(headers, **({"Authorization": auth} if auth else {}))
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request(method, target, headers=sent)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise RegistryUnreachable(
                    f"cannot reach registry {parts.netloc}: {e or type(e).__name__}"
                ) from None
            resp = _Response(raw.status, raw.headers, raw)
            location = resp.header("Location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp, conn
            raw.read()
            conn.close()
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).netloc != self.endpoint:
                auth = None  # storage backends reject (or would leak) our token
        raise EngineError(f"too many redirects fetching {url}")

    def _connect(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        host = parts.netloc
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout, context=self._ssl)
        if parts.scheme == "http":
            return http.client.HTTPConnection(host, timeout=self.timeout)
        raise EngineError(f"registry redirected to unsupported URL scheme {parts.scheme!r}")


def _skip(resp: _Response, count: int) -> None:
    while count > 0:
        chunk = resp.body.read(min(CHUNK, count))
        if not chunk:
            raise EngineError("registry closed the connection while resending a blob")
        count -= len(chunk)


def _discard(ingest: Ingest, why: str) -> None:
    """Delete a partial download that cannot be resumed, and fail this attempt.

    The ingest's hasher already holds the partial's bytes and cannot be reset,
    so the caller retries with a fresh ingest (pull does, once).
    """
    ingest.path.unlink(missing_ok=True)
    raise DigestMismatch(f"partial download of {ingest.digest} {why}; discarded it")
