"""EngineClient over `ssh://` against a real sshd whose sessions' docker CLI reaches a real
engine (tests/ssh_engine.py): calls, a followed log, the events stream, one shared transport
that is replaced when it drops and joined by another past MaxSessions, docker contexts, and
the refusals (unknown host key, a key not authorized, no docker there, nothing listening)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import sshdial
from app.engine_client import EngineClient, EngineError, Unreachable
from app.gui.workers.stream_conn import StreamConnection
from machine import dockercontext, keys
from tests.engine_process import EngineProcess, free_port, wait_for
from tests.ssh_engine import ALIAS, SshEngine, ssh_engine, write_client_home

TICKER = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
]


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> EngineProcess:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    return shared_engine


@pytest.fixture(scope="module")
def remote(eng: EngineProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshEngine]:
    with ssh_engine(eng.host, tmp_path_factory.mktemp("ssh-engine")) as r:
        yield r


def settings(r: SshEngine) -> sshdial.SshSettings:
    return sshdial.user_settings(sshdial.parse_url(r.url))


def test_calls_go_through_dial_stdio_on_one_shared_transport(
    eng: EngineProcess, remote: SshEngine
) -> None:
    cid = eng.docker("run", "-d", "--name", "over-ssh", "busybox", *TICKER).stdout.strip()
    try:
        client = EngineClient(remote.url, timeout=30)
        names = [c["Names"] for c in client.get("/containers/json")]
        assert ["/over-ssh"] in names
        assert client.inspect_container("over-ssh")["Id"] == cid
        assert sshdial.POOL.transports(settings(remote)) == 1
    finally:
        eng.docker("rm", "-f", cid)


def test_a_followed_log_streams_over_ssh(eng: EngineProcess, remote: SshEngine) -> None:
    cid = eng.docker("run", "-d", "busybox", *TICKER).stdout.strip()
    try:
        pieces = EngineClient(remote.url).logs(cid, follow=True)
        seen: list[str] = []
        for stream, data in pieces:
            assert stream == 1
            seen += data.decode().splitlines()
            if len(seen) >= 15:  # past what was written when the call started: followed
                break
        pieces.close()  # type: ignore[attr-defined]
        assert seen[:3] == ["tick 0", "tick 1", "tick 2"]
    finally:
        eng.docker("rm", "-f", cid)


def test_a_pull_streams_its_progress_over_ssh(
    eng: EngineProcess, remote: SshEngine, registry_with_images: str
) -> None:
    image = f"{registry_with_images}/multilayer"
    eng.docker("rmi", image, check=False)
    messages = list(EngineClient(remote.url).pull(image))
    assert any(m.get("status") == "Pull complete" for m in messages)
    assert messages[-1]["status"].startswith("Status: Downloaded newer image")
    assert eng.api("GET", f"/images/{image}/json")["RepoTags"] == [f"{image}:latest"]


def test_the_events_stream_over_ssh_and_its_interrupt(
    eng: EngineProcess, remote: SshEngine
) -> None:
    """The GUI's way: a stream read on a worker thread, ended by interrupt() from another."""
    conn, resp = EngineClient(remote.url).open_stream("GET", "/events")
    holder = StreamConnection()
    events: list[dict[str, Any]] = []
    ended = threading.Event()

    def read() -> None:
        with contextlib.suppress(Exception), holder.reading(conn):
            buf = b""
            while chunk := resp.read1(65536):
                *lines, buf = (buf + chunk).split(b"\n")
                events.extend(json.loads(line) for line in lines if line.strip())
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        eng.docker("volume", "create", "ssh-events-vol")
        assert wait_for(lambda: any(e.get("Type") == "volume" for e in events))
        volumes = [e["Actor"]["ID"] for e in events if e["Type"] == "volume"]
        assert volumes == ["ssh-events-vol"]
        holder.interrupt()
        assert ended.wait(10)
    finally:
        conn.close()
        eng.docker("volume", "rm", "ssh-events-vol", check=False)


def test_a_dropped_transport_is_replaced(remote: SshEngine) -> None:
    client = EngineClient(remote.url)
    client.get("/containers/json")
    s = settings(remote)
    for held in sshdial.POOL._clients[s]:
        held.close()  # the connection dies under the pool (a network drop, sshd restart)
    assert isinstance(client.get("/containers/json"), list)
    assert sshdial.POOL.transports(s) == 1


def test_past_max_sessions_a_second_transport_is_opened(
    eng: EngineProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ssh_engine(eng.host, tmp_path, sshd_extra="MaxSessions 2\n") as r:
        streams = [EngineClient(r.url).open_stream("GET", "/events") for _ in range(3)]
        try:
            assert isinstance(EngineClient(r.url).get("/containers/json"), list)
            assert sshdial.POOL.transports(settings(r)) == 2
        finally:
            for conn, _resp in streams:
                conn.close()


def test_a_server_that_refuses_every_session_is_not_kept(
    eng: EngineProcess, tmp_path: Path
) -> None:
    with ssh_engine(eng.host, tmp_path, sshd_extra="MaxSessions 0\n") as r:
        for _ in range(2):
            with pytest.raises(Unreachable, match="refused a session"):
                EngineClient(r.url).get("/containers/json")
        assert sshdial.POOL.transports(settings(r)) == 0


def test_a_docker_context_over_ssh_resolves_and_answers(
    remote: SshEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    dockercontext.write(remote.url, "the test engine over SSH", name="remote", env=env)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    client = EngineClient()
    assert client.host == f"ssh://{ALIAS}"
    assert isinstance(client.get("/containers/json"), list)
    monkeypatch.setenv("DOCKER_CONTEXT", "absent")
    with pytest.raises(EngineError, match='docker context "absent" does not exist'):
        EngineClient()


def test_an_unknown_host_key_is_refused_with_what_to_run(
    remote: SshEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_client_home(tmp_path, remote.port, remote.keys, known=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(Unreachable) as info:
        EngineClient(remote.url).get("/containers/json")
    message = info.value.message
    assert "is not in known_hosts" in message and "SHA256:" in message
    assert f"run `ssh -p {remote.port} root@127.0.0.1` once" in message
    assert not (tmp_path / ".ssh" / "known_hosts").read_text()  # nothing added behind our back


def test_a_key_the_host_does_not_authorize_is_refused(
    remote: SshEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    keys.ensure(stranger)
    write_client_home(tmp_path, remote.port, remote.keys)
    config = tmp_path / ".ssh" / "config"
    config.write_text(config.read_text().replace(str(remote.keys), str(stranger)))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(Unreachable, match=r"SSH login as root@127.0.0.1:\d+ was refused"):
        EngineClient(remote.url).get("/containers/json")


def test_nothing_listening_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    port = free_port()
    with pytest.raises(Unreachable, match=f"cannot reach 127.0.0.1:{port} over SSH"):
        EngineClient(f"ssh://root@127.0.0.1:{port}").get("/containers/json")


def test_a_remote_without_docker_says_so(eng: EngineProcess, tmp_path: Path) -> None:
    no_docker = ssh_engine(eng.host, tmp_path, remote_env={"PATH": "/nonexistent"})
    with no_docker as r, pytest.raises(Unreachable, match="the remote has no `docker` command"):
        EngineClient(r.url).get("/containers/json")


def test_a_remote_docker_without_an_engine_says_so(tmp_path: Path) -> None:
    no_engine = ssh_engine(f"unix://{tmp_path}/no-engine.sock", tmp_path)
    with no_engine as r, pytest.raises(Unreachable, match="dial-stdio` on the remote failed"):
        EngineClient(r.url).get("/containers/json")
