"""Registry credentials and the WWW-Authenticate dance.

Credentials come from the client (X-Registry-Auth, sent by `docker pull` after
`docker login`) or from `~/.docker/config.json`. A registry answers an
unauthenticated request with 401 and a challenge: `Basic` means "send the
password with every request"; `Bearer realm=...` means "trade it (or nothing,
for public images) for a short-lived token at the realm". Tokens are cached per
scope so parallel layer downloads do not each fetch one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError, InvalidParameter

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DEFAULT_TOKEN_LIFETIME = 60.0


class Unauthorized(EngineError):
    """The registry refused our credentials (or wants some we do not have)."""

    status = 401


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # OAuth2 refresh token from `docker login`
    registry_token: str = ""  # a bearer token to send as-is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer" or "basic"
    params: dict[str, str]


# ---- where credentials come from -------------------------------------------------


def credentials_from_dict(doc: dict[str, Any]) -> Credentials:
    """The X-Registry-Auth JSON (`username`, `password`, `identitytoken`, `registrytoken`)."""

    def text(*keys: str) -> str:
        for k in keys:
            v = doc.get(k)
            if isinstance(v, str) and v:
                return v
        return ""

    return Credentials(
        username=text("username", "Username"),
        password=text("password", "Password"),
        identity_token=text("identitytoken", "IdentityToken"),
        registry_token=text("registrytoken", "RegistryToken"),
    )


def decode_registry_auth(header: str) -> dict[str, Any] | None:
    """Decode the X-Registry-Auth header: base64url (padding optional) of a JSON object."""
    header = header.strip()
    if not header:
        return None
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Auth header: not base64url JSON") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid X-Registry-Auth header: not a JSON object")
    bad = sorted(k for k, v in doc.items() if v is not None and not isinstance(v, str))
    if bad:
        raise InvalidParameter(f"X-Registry-Auth fields must be strings: {', '.join(bad)}")
    return doc or None


def normalize_server(address: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http://host:5000/` -> `host:5000`."""
    address = address.strip()
    if "://" in address:
        address = urllib.parse.urlsplit(address).netloc
    host = address.split("/", 1)[0].lower()
    return "docker.io" if host in DOCKER_HUB_KEYS else host


def config_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json (HOME read at call time)."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _entry_credentials(entry: dict[str, Any], server: str) -> Credentials:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameter(
                f"invalid docker config {config_path()}: auth for {server} is not base64"
            ) from None
        if not sep:
            raise InvalidParameter(
                f"invalid docker config {config_path()}: auth for {server} is not user:password"
            )
        return Credentials(user, password, str(entry.get("identitytoken") or ""))
    return credentials_from_dict(entry)


def load_config_credentials(domain: str, path: Path | None = None) -> Credentials | None:
    """Credentials stored by `docker login` for `domain`, or None.

    Credential helpers (credsStore) are not consulted: the engine runs in a
    minimal guest where those binaries do not exist.
    """
    path = path or config_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise InvalidParameter(f"cannot read docker config {path}: {e}") from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = normalize_server(domain)
    for key, entry in auths.items():
        if isinstance(entry, dict) and normalize_server(key) == wanted:
            creds = _entry_credentials(entry, key)
            return None if creds.empty else creds
    return None


# ---- the challenge ---------------------------------------------------------------

_PARAM_RE = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse `Bearer realm="...",service="...",scope="..."` (possibly several schemes)."""
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][\w-]*)\s*", rest)
        if not m:
            break
        scheme, rest = m.group(1).lower(), rest[m.end() :]
        params: dict[str, str] = {}
        while True:
            pm = _PARAM_RE.match(rest)
            # A bare word followed by a space (not "=") starts the next scheme.
            if not pm:
                break
            quoted, plain = pm.group(2), pm.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain or ""
            params[pm.group(1).lower()] = value
            rest = rest[pm.end() :]
        challenges.append(Challenge(scheme, params))
        rest = rest.lstrip(" ,")
    return challenges


# ---- tokens ----------------------------------------------------------------------

TokenFetch = Callable[[str, dict[str, str], bytes | None], tuple[int, bytes]]


def urllib_fetch(url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
    """GET (or POST when `body`) `url`; returns (status, body) without raising on 4xx."""
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise EngineError(f"cannot reach the registry token service {url}: {reason}") from None


def basic_header(creds: Credentials) -> str:
    pair = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))
        for key in ("details", "message", "error"):
            if isinstance(doc.get(key), str):
                return str(doc[key])
    return body.decode(errors="replace").strip()[:200]


class Authenticator:
    """Answers challenges for one registry; thread-safe, caches tokens per scope."""

    def __init__(self, credentials: Credentials | None, fetch: TokenFetch = urllib_fetch) -> None:
        self.credentials = credentials or Credentials()
        self._fetch = fetch
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._basic = False

    def header_for(self, scope: str) -> str | None:
        """A cached Authorization header for `scope`, if one is known and fresh."""
        with self._lock:
            if self._basic:
                return basic_header(self.credentials)
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        return None

    def answer(self, www_authenticate: str, scope: str) -> str:
        """The Authorization header that answers this challenge for `scope`."""
        for ch in parse_challenges(www_authenticate):
            if ch.scheme == "bearer":
                return self._bearer(ch, scope)
            if ch.scheme == "basic":
                if not (self.credentials.username or self.credentials.password):
                    raise Unauthorized(
                        "unauthorized: authentication required (log in with `docker login`)"
                    )
                with self._lock:
                    self._basic = True
                return basic_header(self.credentials)
        raise Unauthorized(
            f"unauthorized: unsupported authentication challenge {www_authenticate!r}"
        )

    def _bearer(self, ch: Challenge, scope: str) -> str:
        if self.credentials.registry_token:
            return "Bearer " + self.credentials.registry_token
        realm = ch.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise Unauthorized(f"unauthorized: bearer challenge has no usable realm ({realm!r})")
        token, lifetime = self._request_token(realm, ch.params.get("service", ""), scope)
        header = "Bearer " + token
        with self._lock:
            self._tokens[scope] = (header, time.monotonic() + max(lifetime - 5.0, 1.0))
        return header

    def _request_token(self, realm: str, service: str, scope: str) -> tuple[str, float]:
        creds = self.credentials
        query = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        if creds.identity_token:
            form = dict(query, grant_type="refresh_token", client_id="dockyard")
            form["refresh_token"] = creds.identity_token
            body: bytes | None = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            url = realm
        else:
            body, headers = None, {}
            if creds.username or creds.password:
                headers["Authorization"] = basic_header(creds)
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        status, raw = self._fetch(url, headers, body)
        if status in (401, 403):
            raise Unauthorized(
                f"unauthorized: {_error_text(raw) or 'incorrect username or password'}"
            )
        if status != 200:
            raise EngineError(
                f"token request to {realm} failed with HTTP {status}: {_error_text(raw)}"
            )
        return _parse_token(raw, realm)


def _parse_token(raw: bytes, realm: str) -> tuple[str, float]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise EngineError(f"token service {realm} answered with non-JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise EngineError(f"token service {realm} answered without a token")
    expires = doc.get("expires_in")
    lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else 0.0
    return token, max(lifetime, DEFAULT_TOKEN_LIFETIME)
