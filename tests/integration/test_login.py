"""`docker login` against the engine: POST /auth checks the credentials with the registry.

The real CLI logs in to a real htpasswd-protected docker-registry through our
engine, stores the credentials itself, and a pull of a private image then
works; a wrong password is refused with the registry's status and nothing is
stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, api_call
from tests.registry import LocalRegistry, push_oci_layout

pytestmark = pytest.mark.integration


def login(eng: EngineProcess, host: str, password: str) -> tuple[int, str, str]:
    res = eng.docker(
        "login", "-u", "tester", "--password-stdin", host, input=password + "\n", check=False
    )
    return res.returncode, res.stdout, res.stderr


def stored_auths(eng: EngineProcess) -> dict[str, object]:
    path = eng.config_dir / "config.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("auths", {}))


def test_docker_login_then_pull_a_private_image(
    shared_engine: EngineProcess, test_images: Path, auth_registry: LocalRegistry
) -> None:
    eng = shared_engine
    push_oci_layout(test_images / "busybox", auth_registry, "private/box:1")
    ref = f"{auth_registry.host}/private/box:1"
    config = eng.config_dir / "config.json"
    try:
        # (not through the CLI: on a 401 it prompts for a login, as it does with dockerd)
        status, body = api_call(eng.socket, "POST", f"/images/create?fromImage={ref}")
        assert "docker login" in str(body), (status, body)

        code, out, err = login(eng, auth_registry.host, "wrong-pass")
        assert code != 0
        assert "failed with status: 401 Unauthorized" in err
        assert auth_registry.host not in stored_auths(eng)

        code, out, err = login(eng, auth_registry.host, "s3cret-pass")
        assert code == 0, err
        assert "Login Succeeded" in out
        assert auth_registry.host in stored_auths(eng)
        assert not list(eng.root.rglob("config.json")), "the engine stores no credentials"

        eng.docker("pull", ref)
        assert eng.docker("run", "--rm", ref, "echo", "private").stdout == "private\n"
        eng.docker("logout", auth_registry.host)
        assert auth_registry.host not in stored_auths(eng)
    finally:
        config.unlink(missing_ok=True)
        eng.docker("rmi", "-f", ref, check=False)


def test_auth_bad_input_is_refused_clearly(
    shared_engine: EngineProcess, auth_registry: LocalRegistry
) -> None:
    sock = shared_engine.socket
    status, body = api_call(sock, "POST", "/auth", {"username": 5, "password": "x"})
    assert status == 400 and "must be strings: username" in body["message"]
    status, body = api_call(sock, "POST", "/auth", {"serveraddress": auth_registry.host})
    assert status == 400 and "needs a username and password" in body["message"]
    status, body = api_call(sock, "POST", "/auth", ["tester"])
    assert status == 400 and "JSON object" in body["message"]
    bad_server = {"username": "u", "password": "p", "serveraddress": "bad host"}
    status, body = api_call(sock, "POST", "/auth", bad_server)
    assert status == 400 and "invalid serveraddress" in body["message"]
    ok = {"username": "tester", "password": "s3cret-pass", "serveraddress": auth_registry.host}
    assert api_call(sock, "POST", "/auth", ok) == (
        200,
        {"Status": "Login Succeeded", "IdentityToken": ""},
    )
    wrong = dict(ok, password="nope")
    status, body = api_call(sock, "POST", "/auth", wrong)
    assert status == 401 and "401 Unauthorized" in body["message"]
