"""Registry credentials, challenge parsing and the bearer-token flow (real HTTP server)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InvalidParameter
from engine.images import auth
from engine.images.auth import Authenticator, Challenge, Credentials, Unauthorized
from tests.httpserve import BackgroundHTTPServer, QuietHandler

# ---- challenge parsing ----------------------------------------------------------


def test_parse_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:library/busybox:pull"'
    )
    assert auth.parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example.com/token",
                "service": "registry.example.com",
                "scope": "repository:library/busybox:pull",
            },
        )
    ]


def test_parse_basic_challenge_and_case() -> None:
    assert auth.parse_challenges('BASIC Realm="basic-realm"') == [
        Challenge("basic", {"realm": "basic-realm"})
    ]


def test_parse_unquoted_escaped_and_multiple_schemes() -> None:
    header = (
        'Bearer realm=https://a/t, error="insufficient_scope", scope="x:\\"y\\"" , Basic realm="r"'
    )
    parsed = auth.parse_challenges(header)
    assert parsed[0].scheme == "bearer"
    assert parsed[0].params == {
        "realm": "https://a/t",
        "error": "insufficient_scope",
        "scope": 'x:"y"',
    }
    assert parsed[1] == Challenge("basic", {"realm": "r"})


def test_parse_empty_challenge() -> None:
    assert auth.parse_challenges("") == []


# ---- credentials ------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    (tmp_path / ".docker").mkdir()
    return tmp_path


def write_config(home: Path, auths: dict[str, Any]) -> None:
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": auths}))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_config_docker_hub_legacy_key(home: Path) -> None:
    write_config(home, {"https://index.docker.io/v1/": {"auth": b64("alice:pa:ss")}})
    assert auth.load_config_credentials("docker.io") == Credentials("alice", "pa:ss")


def test_config_username_password_fields(home: Path) -> None:
    write_config(home, {"registry.example.com:5000": {"username": "bob", "password": "pw"}})
    creds = auth.load_config_credentials("registry.example.com:5000")
    assert creds == Credentials("bob", "pw")
    assert auth.load_config_credentials("other.example.com") is None


def test_config_url_key_for_private_registry(home: Path) -> None:
    write_config(home, {"https://registry.example.com/": {"auth": b64("c:d")}})
    assert auth.load_config_credentials("registry.example.com") == Credentials("c", "d")


def test_config_identity_token(home: Path) -> None:
    write_config(home, {"ghcr.example": {"auth": b64("u:"), "identitytoken": "refresh"}})
    creds = auth.load_config_credentials("ghcr.example")
    assert creds is not None and creds.identity_token == "refresh"


def test_config_missing_or_credstore_only(home: Path) -> None:
    assert auth.load_config_credentials("docker.io") is None
    (home / ".docker" / "config.json").write_text(json.dumps({"credsStore": "desktop"}))
    assert auth.load_config_credentials("docker.io") is None


def test_config_docker_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"x.io": {"auth": b64("a:b")}}}))
    assert auth.load_config_credentials("x.io") == Credentials("a", "b")


def test_config_bad_auth_is_invalid_parameter(home: Path) -> None:
    write_config(home, {"x.io": {"auth": "%%%not-base64"}})
    with pytest.raises(InvalidParameter, match=r"x\.io"):
        auth.load_config_credentials("x.io")
    write_config(home, {"x.io": {"auth": b64("nocolon")}})
    with pytest.raises(InvalidParameter, match="user:password"):
        auth.load_config_credentials("x.io")


def test_config_bad_json(home: Path) -> None:
    (home / ".docker" / "config.json").write_text("{oops")
    with pytest.raises(InvalidParameter, match="cannot read docker config"):
        auth.load_config_credentials("x.io")


def test_decode_registry_auth_header() -> None:
    doc = {"username": "u", "password": "p+/=?", "serveraddress": "x.io", "identitytoken": ""}
    header = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    decoded = auth.decode_registry_auth(header)
    assert decoded == doc
    assert auth.credentials_from_dict(decoded) == Credentials("u", "p+/=?")
    assert auth.decode_registry_auth("") is None
    with pytest.raises(InvalidParameter, match="X-Registry-Auth"):
        auth.decode_registry_auth("!!!")
    with pytest.raises(InvalidParameter, match="X-Registry-Auth"):
        auth.decode_registry_auth(base64.urlsafe_b64encode(b"[1]").decode())


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://localhost:5000/v2/", "localhost:5000"),
        ("Quay.IO", "quay.io"),
    ],
)
def test_normalize_server(address: str, expected: str) -> None:
    assert auth.normalize_server(address) == expected


# ---- the token flow, against a real token server ------------------------------------


class TokenServer(BackgroundHTTPServer):
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], str]] = []
        self.password = "right"
        self.field = "token"
        server = self

        class Handler(QuietHandler):
            def _answer(self, body: str) -> None:
                server.requests.append((self.path, dict(self.headers.items()), body))
                given = self.headers.get("Authorization", "")
                if given and given != auth.basic_header(Credentials("alice", server.password)):
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b'{"details":"incorrect username or password"}')
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                token = f"tok-{len(server.requests)}-{query.get('scope', [''])[0]}"
                payload = json.dumps({server.field: token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer("")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                self._answer(self.rfile.read(n).decode())

        self.serve(Handler)
        self.realm = f"http://{self.host}/token"

    def challenge(self, scope: str = "repository:library/busybox:pull") -> str:
        return f'Bearer realm="{self.realm}",service="registry.test",scope="{scope}"'


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


def test_anonymous_token_is_fetched_and_cached_per_scope(token_server: TokenServer) -> None:
    a = Authenticator(None)
    scope = "repository:library/busybox:pull"
    assert a.header_for(scope) is None
    header = a.answer(token_server.challenge(), scope)
    assert header == f"Bearer tok-1-{scope}"
    path, headers, _ = token_server.requests[0]
    assert "service=registry.test" in path and "Authorization" not in headers
    assert a.header_for(scope) == header
    assert a.header_for("repository:other:pull") is None
    assert len(token_server.requests) == 1


def test_basic_authenticated_token_and_access_token_field(token_server: TokenServer) -> None:
    token_server.field = "access_token"
    a = Authenticator(Credentials("alice", "right"))
    header = a.answer(token_server.challenge(), "repository:x:pull")
    assert header.startswith("Bearer tok-1-")
    _, headers, _ = token_server.requests[0]
    assert headers["Authorization"] == auth.basic_header(Credentials("alice", "right"))


def test_wrong_password_is_unauthorized(token_server: TokenServer) -> None:
    a = Authenticator(Credentials("alice", "wrong"))
    with pytest.raises(Unauthorized, match="unauthorized: incorrect username or password"):
        a.answer(token_server.challenge(), "repository:x:pull")


def test_identity_token_uses_oauth_refresh_grant(token_server: TokenServer) -> None:
    a = Authenticator(Credentials(identity_token="refresh-me"))
    assert a.answer(token_server.challenge(), "repository:x:pull").startswith("Bearer ")
    _, _, body = token_server.requests[0]
    form = urllib.parse.parse_qs(body)
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == ["repository:x:pull"]


def test_registry_token_is_used_directly() -> None:
    a = Authenticator(Credentials(registry_token="given"))
    assert a.answer('Bearer realm="https://nowhere.invalid/t"', "s") == "Bearer given"


def test_basic_challenge() -> None:
    a = Authenticator(Credentials("u", "p"))
    header = a.answer('Basic realm="basic-realm"', "repository:x:pull")
    assert header == "Basic " + base64.b64encode(b"u:p").decode()
    assert a.header_for("repository:any:pull") == header
    with pytest.raises(Unauthorized, match="authentication required"):
        Authenticator(None).answer('Basic realm="r"', "s")


def test_unsupported_challenge() -> None:
    with pytest.raises(Unauthorized, match="unsupported"):
        Authenticator(None).answer('Negotiate realm="x"', "s")
    with pytest.raises(Unauthorized, match="realm"):
        Authenticator(None).answer("Bearer service=x", "s")
