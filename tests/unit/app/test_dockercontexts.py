"""Docker contexts read from a temp DOCKER_CONFIG, and the engine choice in the docker
CLI's order: -H, DOCKER_HOST, DOCKER_CONTEXT, config.json's currentContext, the default."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app import dockercontexts
from app.dockercontexts import Context, ContextError
from app.engine_client import DEFAULT_HOST, EngineError, resolve_host
from machine import dockercontext


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A DOCKER_CONFIG with contexts `remote` (ssh), `build` (tcp) and one without a docker
    endpoint; `remote` is the config's current context."""
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    dockercontext.write("ssh://me@box", "the box over SSH", name="remote", env=env)
    dockercontext.write("tcp://10.0.0.5:2375", "", name="build", env=env)
    no_docker = dockercontext.meta_dir("k8s-only", env)
    no_docker.mkdir(parents=True)
    (no_docker / "meta.json").write_text(json.dumps({"Name": "k8s-only", "Endpoints": {}}))
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    return env


def test_contexts_are_listed_with_default_first_and_the_current_marked(
    env: dict[str, str],
) -> None:
    assert dockercontexts.list_contexts(env) == [
        Context("default", "The Dockyard machine (or DOCKER_HOST)", "", False),
        Context("build", "", "tcp://10.0.0.5:2375", False),
        Context("k8s-only", "", "", False),
        Context("remote", "the box over SSH", "ssh://me@box", True),
    ]


def test_an_unreadable_entry_is_skipped_and_a_missing_store_lists_default(
    env: dict[str, str], tmp_path: Path
) -> None:
    broken = Path(env["DOCKER_CONFIG"]) / "contexts" / "meta" / hashlib.sha256(b"x").hexdigest()
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    assert [c.name for c in dockercontexts.list_contexts(env)][-1] == "remote"
    empty = {"DOCKER_CONFIG": str(tmp_path / "none")}
    assert dockercontexts.list_contexts(empty) == [
        Context("default", "The Dockyard machine (or DOCKER_HOST)", "", True)
    ]


def test_docker_context_beats_the_config_and_default_is_the_fallback(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert dockercontexts.current_name(env) == "remote"
    assert dockercontexts.current_name({**env, "DOCKER_CONTEXT": "build"}) == "build"
    assert dockercontexts.current_name({"DOCKER_CONFIG": str(tmp_path / "none")}) == "default"


def test_endpoints_and_the_errors_for_unusable_contexts(env: dict[str, str]) -> None:
    assert dockercontexts.endpoint("remote", env) == "ssh://me@box"
    with pytest.raises(ContextError, match='"k8s-only" has no docker endpoint'):
        dockercontexts.endpoint("k8s-only", env)
    with pytest.raises(ContextError, match=r'"nope" does not exist.*docker context ls'):
        dockercontexts.endpoint("nope", env)


def test_the_host_follows_the_docker_cli_order(env: dict[str, str], tmp_path: Path) -> None:
    both = {**env, "DOCKER_HOST": "unix:///from-env", "DOCKER_CONTEXT": "build"}
    assert resolve_host("unix:///flag", both) == "unix:///flag"  # -H first
    assert resolve_host(None, both) == "unix:///from-env"  # DOCKER_HOST beats DOCKER_CONTEXT
    assert resolve_host(None, {**env, "DOCKER_CONTEXT": "build"}) == "tcp://10.0.0.5:2375"
    assert resolve_host(None, env) == "ssh://me@box"  # currentContext
    assert resolve_host(None, {**env, "DOCKER_CONTEXT": "default"}) == DEFAULT_HOST
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path / "none")}) == DEFAULT_HOST


def test_a_missing_current_context_is_an_error_not_a_silent_default(env: dict[str, str]) -> None:
    with pytest.raises(EngineError, match='docker context "gone" does not exist'):
        resolve_host(None, {**env, "DOCKER_CONTEXT": "gone"})
