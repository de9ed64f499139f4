"""Acceptance: the three-service stack (tests/fixtures/stack) brought up by the real Docker
Compose and by `dockyard compose` against our engine.

A GET on the published port must return data that went web -> app -> db by service name
(embedded DNS, a user network, a healthcheck gating depends_on, a named volume, ro binds and
the userland port proxy); `down -v` must leave no container, network or volume in the API and
no link, netns, mount or firewall rule on the host.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, free_port, wait_for
from tests.netleaks import HostState, Owner, assert_no_leaks

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "tests" / "fixtures" / "stack"
COMPOSE = REPO / ".venv" / "bin" / "docker-compose"  # the Go compose, from a pinned wheel
COMPOSE_V1 = Path("/usr/bin/docker-compose")  # Debian 12's Python compose 1.29.2
DOCKYARD = REPO / ".venv" / "bin" / "dockyard"
BUILTIN_NETWORKS = {"bridge", "host", "none"}
PROJECT = "stack"


def http_get(port: int, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def get_when_ready(port: int, path: str = "/", timeout: float = 60.0) -> tuple[int, str]:
    """The first 200 answer (the proxy may accept before httpd in web listens), else the
    last answer or error."""
    last: list[tuple[int, str]] = [(0, "no answer")]

    def ok() -> bool:
        try:
            last[0] = http_get(port, path)
        except OSError as e:
            last[0] = (0, repr(e))
        return last[0][0] == 200

    wait_for(ok, timeout=timeout, interval=0.3)
    return last[0]


@pytest.fixture
def eng(engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield engine


def compose_cmd(tool: str) -> list[str]:
    binary = {"docker-compose": COMPOSE, "docker-compose-v1": COMPOSE_V1}.get(tool)
    if binary is not None:
        if not binary.exists():
            pytest.skip(f"{binary} is not installed (scripts/install_deps.sh installs it)")
        return [str(binary)]
    if not DOCKYARD.exists():
        pytest.skip("the dockyard CLI is not installed in .venv")
    return [str(DOCKYARD), "compose"]


def run_compose(
    eng: EngineProcess, base: list[str], port: int, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**eng.env, "WEB_PORT": str(port), "STACK_IMAGE": "busybox"}
    cmd = [*base, "-f", str(STACK / "compose.yaml"), "-p", PROJECT, *args]
    res = subprocess.run(
        cmd, env=env, cwd=STACK, capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 0, (
        f"{' '.join(cmd)} exited {res.returncode}\nstdout: {res.stdout}\n"
        f"stderr: {res.stderr}\nengine log:\n{eng.log_tail()}"
    )
    return res


def api_names(eng: EngineProcess) -> tuple[list[str], set[str], list[str]]:
    containers = [c["Names"][0] for c in eng.api("GET", "/containers/json?all=1")]
    networks = {n["Name"] for n in eng.api("GET", "/networks")}
    volumes = [v["Name"] for v in eng.api("GET", "/volumes")["Volumes"] or []]
    return containers, networks, volumes


@pytest.mark.parametrize("tool", ["docker-compose", "docker-compose-v1", "dockyard"])
def test_stack_up_get_down(eng: EngineProcess, tool: str) -> None:
    base = compose_cmd(tool)
    owner = Owner(eng)
    before = HostState.take(eng.dir)
    port = free_port()
    try:
        run_compose(eng, base, port, "up", "-d")
        owner.observe()
        status, body = get_when_ready(port)
        assert status == 200, f"GET / -> {status}: {body}\nengine log:\n{eng.log_tail()}"
        lines = body.splitlines()
        assert lines[0] == "db: hello from the kv volume", body
        assert lines[1].startswith("app: ") and lines[2].startswith("web: "), body
        assert lines[1] != lines[2], "app and web answer from different containers"
        # v1 names it stack_db_1, later composes stack-db-1: find it by compose's label.
        db = eng.docker("ps", "-q", "--filter", "label=com.docker.compose.service=db").stdout
        health = eng.docker("inspect", "-f", "{{.State.Health.Status}}", db.strip())
        assert health.stdout.strip() == "healthy"
        owner.observe()
    finally:
        run_compose(eng, base, port, "down", "-v")
    containers, networks, volumes = api_names(eng)
    assert containers == [] and volumes == [], (containers, volumes)
    assert networks == BUILTIN_NETWORKS
    with pytest.raises(OSError):
        http_get(port)
    assert_no_leaks(before, owner)


def test_published_port_listens_on_loopback_only(eng: EngineProcess) -> None:
    """The compose file asks for 127.0.0.1; nothing of the stack listens anywhere else."""
    base = compose_cmd("docker-compose")
    port = free_port()
    try:
        run_compose(eng, base, port, "up", "-d", "web")
        ports = eng.docker("port", f"{PROJECT}-web-1", "80").stdout.split()
        assert ports == [f"127.0.0.1:{port}"]
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = {ln.split()[1] for ln in listening if ln.split()[3] == "0A"}
        assert f"0100007F:{port:04X}" in local
        assert f"00000000:{port:04X}" not in local
    finally:
        run_compose(eng, base, port, "down", "-v")


def test_stack_answers_again_after_an_engine_crash(eng: EngineProcess) -> None:
    """The containers and the published port live in the shims; the names live in the
    engine's DNS, which must answer again in every container once the engine is back."""
    base = compose_cmd("docker-compose")
    owner = Owner(eng)
    before = HostState.take(eng.dir)
    port = free_port()
    try:
        run_compose(eng, base, port, "up", "-d")
        owner.observe()
        assert get_when_ready(port)[0] == 200
        eng.kill9()
        eng.start()
        status, body = get_when_ready(port)
        assert status == 200, f"GET / -> {status}: {body}\nengine log:\n{eng.log_tail()}"
        assert body.startswith("db: hello from the kv volume\n"), body
    finally:
        run_compose(eng, base, port, "down", "-v")
    assert_no_leaks(before, owner)


def test_a_taken_port_fails_up_clearly_and_down_still_cleans_up(eng: EngineProcess) -> None:
    base = compose_cmd("docker-compose")
    owner = Owner(eng)
    before = HostState.take(eng.dir)
    env = {**eng.env, "STACK_IMAGE": "busybox"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["WEB_PORT"] = str(port)
        cmd = [*base, "-f", str(STACK / "compose.yaml"), "-p", PROJECT, "up", "-d"]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        owner.observe()
        assert res.returncode != 0
        assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in res.stderr
        running = eng.docker("ps", "--format", "{{.Names}}").stdout.split()
        assert sorted(running) == [f"{PROJECT}-app-1", f"{PROJECT}-db-1"], running
    run_compose(eng, base, port, "down", "-v")
    containers, networks, volumes = api_names(eng)
    assert containers == [] and volumes == [] and networks == BUILTIN_NETWORKS
    assert_no_leaks(before, owner)
