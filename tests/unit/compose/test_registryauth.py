"""The logins a compose build sends: read from the CLI's config as the CLI stores them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from app.registryauth import logins, registry_config_header


def write_config(tmp_path: Path, doc: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_logins_decode_the_cli_auth_field(tmp_path: Path) -> None:
    auth = base64.b64encode(b"tester:pa:ss").decode()
    env = write_config(
        tmp_path,
        {
            "auths": {
                "127.0.0.1:5000": {"auth": auth},
                "tok.example": {"identitytoken": "refresh"},
                "helper-only.example": {},
                "broken.example": {"auth": "%%%"},
            },
            "credsStore": "desktop",
        },
    )
    assert logins(env) == {
        "127.0.0.1:5000": {
            "username": "tester",
            "password": "pa:ss",
            "serveraddress": "127.0.0.1:5000",
        },
        "tok.example": {"identitytoken": "refresh", "serveraddress": "tok.example"},
    }
    header = registry_config_header(env)
    assert header is not None
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    assert decoded == logins(env)


def test_no_config_or_a_bad_one_means_no_header(tmp_path: Path) -> None:
    assert registry_config_header({"DOCKER_CONFIG": str(tmp_path / "none")}) is None
    (tmp_path / "config.json").write_text("{not json")
    assert registry_config_header({"DOCKER_CONFIG": str(tmp_path)}) is None
    assert registry_config_header(write_config(tmp_path, {"auths": []})) is None
