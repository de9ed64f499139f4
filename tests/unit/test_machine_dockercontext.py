"""The `dockyard` docker context, written as the docker CLI's own store files; when the real
CLI is on PATH, it is asked to read them back."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from machine import dockercontext


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "docker-config")}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on PATH")
    return subprocess.run(
        [docker, *args], env=env, capture_output=True, text=True, check=True, timeout=30
    )


def test_docker_config_is_respected(env: dict[str, str]) -> None:
    assert dockercontext.config_dir(env) == Path(env["DOCKER_CONFIG"])
    assert dockercontext.config_dir({}) == Path.home() / ".docker"


def test_write_creates_the_store_file_the_cli_reads(env: dict[str, str]) -> None:
    path = dockercontext.write("unix:///tmp/m/docker.sock", "Dockyard machine m", env=env)
    digest = hashlib.sha256(b"dockyard").hexdigest()
    assert path == Path(env["DOCKER_CONFIG"]) / "contexts" / "meta" / digest / "meta.json"
    assert json.loads(path.read_text()) == {
        "Name": "dockyard",
        "Metadata": {"Description": "Dockyard machine m"},
        "Endpoints": {"docker": {"Host": "unix:///tmp/m/docker.sock", "SkipTLSVerify": False}},
    }
    (inspected,) = json.loads(cli(env, "context", "inspect", "dockyard").stdout)
    assert inspected["Endpoints"]["docker"]["Host"] == "unix:///tmp/m/docker.sock"


def test_update_keeps_what_others_added(env: dict[str, str]) -> None:
    path = dockercontext.write("unix:///a.sock", "first", env=env)
    doc = json.loads(path.read_text())
    doc["Metadata"]["Extra"] = "kept"
    path.write_text(json.dumps(doc))
    dockercontext.write("unix:///b.sock", "second", env=env)
    doc = json.loads(path.read_text())
    assert doc["Metadata"] == {"Extra": "kept", "Description": "second"}
    assert dockercontext.endpoint(env=env) == "unix:///b.sock"


def test_context_made_by_the_cli_is_updated(env: dict[str, str]) -> None:
    cli(env, "context", "create", "dockyard", "--docker", "host=unix:///old.sock")
    dockercontext.write("unix:///new.sock", "Dockyard", env=env)
    (inspected,) = json.loads(cli(env, "context", "inspect", "dockyard").stdout)
    assert inspected["Endpoints"]["docker"]["Host"] == "unix:///new.sock"


def test_remove_only_when_it_points_at_the_machine(env: dict[str, str]) -> None:
    dockercontext.write("unix:///a.sock", "a", env=env)
    assert not dockercontext.remove(env=env, only_endpoint="unix:///other.sock")
    assert dockercontext.endpoint(env=env) == "unix:///a.sock"
    assert dockercontext.remove(env=env, only_endpoint="unix:///a.sock")
    assert dockercontext.read(env=env) is None
    assert not dockercontext.remove(env=env)


def test_removing_the_current_context_falls_back_to_default(env: dict[str, str]) -> None:
    dockercontext.write("unix:///a.sock", "a", env=env)
    cli(env, "context", "use", "dockyard")
    dockercontext.remove(env=env)
    out = cli(env, "context", "show").stdout.strip()
    assert out == "default"
