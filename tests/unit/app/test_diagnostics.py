"""Acceptance 5: a diagnostics bundle holds no private key and no registry password.

Both are planted where a bundle collects from: a private key printed into the engine
log and the serial log, a registry password in the docker config's `auths` (base64, as
`docker login` writes it), in an engine argument of machine.yaml and in the app's log.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from app import redact

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "Hunter2-registry-pw"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PRIVATE_KEY = (
    f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n{KEY_BODY[::-1]}\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def plant(home: Path, docker_config: Path) -> None:
    machine = home / "default"
    machine.mkdir(parents=True)
    (machine / "machine.yaml").write_text(
        f"name: default\nbackend: native\nengine_args:\n- --registry-password={PASSWORD}\n"
    )
    (machine / "engine.log").write_text(f"container output:\n{PRIVATE_KEY}engine: ready\n")
    (machine / "serial.log").write_text(f"boot\n{PRIVATE_KEY}login: \n")
    (machine / "id_ed25519").write_text(PRIVATE_KEY)  # never collected at all
    logs = home / "logs"
    logs.mkdir()
    (logs / "dockyard-desktop.log").write_text(
        f"INFO login to 127.0.0.1:5000 password={PASSWORD}\n"
        f"DEBUG url https://bob:{PASSWORD}@registry.example/v2/\n"
    )
    docker_config.mkdir()
    auth = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {"127.0.0.1:5000": {"auth": auth}}, "currentContext": "x"})
    )


def test_bundle_has_no_private_key_and_no_registry_password(tmp_path: Path) -> None:
    home, docker_config, out = tmp_path / "home", tmp_path / "docker", tmp_path / "d.zip"
    plant(home, docker_config)
    env = dict(
        os.environ, DOCKYARD_HOME=str(home), DOCKER_CONFIG=str(docker_config), PYTHONPATH=str(REPO)
    )
    res = subprocess.run(
        [sys.executable, "-m", "app.cli", "diagnostics", "-o", str(out)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res
    assert "secrets removed" in res.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        blob = b"".join(z.read(n) for n in names)
    assert {
        "machines/default/machine.yaml",
        "machines/default/engine.log",
        "machines/default/serial.log",
        "app-logs/dockyard-desktop.log",
        "docker/config.json",
        "summary.json",
    } <= set(names)
    assert not any("id_ed25519" in n for n in names)
    assert KEY_BODY.encode() not in blob and b"PRIVATE KEY" not in blob
    assert PASSWORD.encode() not in blob
    auth = base64.b64encode(f"bob:{PASSWORD}".encode())
    assert auth not in blob and auth[:12] not in blob
    assert b"127.0.0.1:5000" in blob  # which registry had a login still shows
    assert b"engine: ready" in blob  # the log around the key is kept


def test_redact_rules() -> None:
    assert redact.text("--password=abc def") == "--password=<redacted> def"
    assert redact.text('"token": "xyz"') == '"token": <redacted>'
    assert "abcdefghijkl" not in redact.text("Authorization: Bearer abcdefghijkl")
    assert redact.text("https://u:p4ss@h/") == "https://u:<redacted>@h/"
    assert redact.text("cpus: 2\nmemory_mib: 2048") == "cpus: 2\nmemory_mib: 2048"
    doc = redact.json_doc({"auths": {"r": {"auth": "x"}}, "credsStore": "desktop", "a": [1]})
    assert doc == {"auths": {"r": "<redacted>"}, "credsStore": "desktop", "a": [1]}
