"""Acceptance: the real `docker` CLI against our engine, on real kernel features."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, api_call, wait_for
from tests.ptyio import pty_session


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield shared_engine


def test_pull_from_the_local_registry(eng: EngineProcess, registry_with_images: str) -> None:
    out = eng.docker("pull", f"{registry_with_images}/multilayer").stdout
    assert "Pull complete" in out or "Already exists" in out
    assert f"{registry_with_images}/multilayer" in eng.docker("images").stdout


def test_run_rm_echo(eng: EngineProcess) -> None:
    res = eng.docker("run", "--rm", "busybox", "echo", "hi")
    assert res.stdout == "hi\n"
    assert eng.docker("ps", "-aq").stdout.strip() == ""


def test_exit_codes_follow_docker(eng: EngineProcess) -> None:
    assert eng.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    missing = eng.docker("run", "--rm", "busybox", "no-such-cmd", check=False)
    assert missing.returncode == 127
    assert "executable file not found" in missing.stderr
    notexec = eng.docker("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert notexec.returncode == 126


def test_detached_ps_logs_follow_stop_rm(eng: EngineProcess) -> None:
    cid = eng.docker(
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ).stdout.strip()
    try:
        assert "ticker" in eng.docker("ps").stdout
        assert wait_for(lambda: "tick 2" in eng.docker("logs", "ticker").stdout)
        with eng.docker_running("logs", "-f", "ticker") as follow:
            assert follow.stdout is not None
            seen = [follow.stdout.readline() for _ in range(6)]
            assert all(line.startswith("tick") for line in seen)
        eng.docker("stop", "ticker")
        state = eng.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid).stdout
        assert state.split() == ["exited", "0"]
        tail = eng.docker("logs", "--tail", "1", "ticker").stdout
        assert tail.count("\n") == 1
    finally:
        eng.docker("rm", "-f", "ticker", check=False)
    assert "ticker" not in eng.docker("ps", "-a").stdout


def test_exec_it_through_a_pty(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "shell", "busybox", "sleep", "1000")
    try:
        code, out = pty_session(
            eng.env,
            ["docker", "exec", "-it", "shell", "sh"],
            b"tty; echo marker-$((6*7)); exit 7\n",
        )
        assert b"/dev/pts/" in out
        assert b"marker-42" in out
        assert code == 7
    finally:
        eng.docker("rm", "-f", "shell")


def test_env_workdir_user_hostname(eng: EngineProcess) -> None:
    out = eng.docker(
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "boat",
        "busybox",
        "sh",
        "-c",
        'echo "$FOO $(pwd) $(id -u):$(id -g) $(hostname)"',
    ).stdout
    assert out.strip() == "bar /tmp 1000:1000 boat"


def test_named_volume_and_readonly_bind(eng: EngineProcess, tmp_path: Path) -> None:
    eng.docker("run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert (
        eng.docker("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f").stdout
        == "kept\n"
    )
    (tmp_path / "hostfile").write_text("from-host\n")
    res = eng.docker(
        "run",
        "--rm",
        "-v",
        f"{tmp_path}:/host:ro",
        "busybox",
        "sh",
        "-c",
        "cat /host/hostfile; touch /host/new",
        check=False,
    )
    assert "from-host" in res.stdout
    assert res.returncode != 0 and "Read-only file system" in res.stderr
    assert not (tmp_path / "new").exists()
    assert "keep" in eng.docker("volume", "ls", "-q").stdout.split()
    eng.docker("volume", "rm", "keep")
    assert "keep" not in eng.docker("volume", "ls", "-q").stdout.split()


def test_memory_limit_oom_kills_with_137(eng: EngineProcess) -> None:
    res = eng.docker(
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x$x$x; done",
        check=False,
        timeout=180,
    )
    try:
        assert res.returncode == 137
        assert eng.docker("inspect", "-f", "{{.State.OOMKilled}}", "hog").stdout.strip() == "true"
    finally:
        eng.docker("rm", "-f", "hog", check=False)


def test_pids_limit_stops_a_fork_bomb(eng: EngineProcess) -> None:
    script = "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo all-started"
    res = eng.docker(
        "run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", script, check=False, timeout=120
    )
    assert "can't fork" in res.stderr
    assert "all-started" not in res.stdout
    assert res.returncode != 0


def test_images_rmi_save_load_inspect(
    eng: EngineProcess, registry_with_images: str, tmp_path: Path
) -> None:
    ref = f"{registry_with_images}/multiarch"
    eng.docker("pull", ref)
    image_id = eng.docker("inspect", "-f", "{{.Id}}", ref).stdout.strip()
    archive = tmp_path / "img.tar"
    eng.docker("save", "-o", str(archive), ref)
    eng.docker("rmi", ref)
    assert ref not in eng.docker("images").stdout
    assert "Loaded image" in eng.docker("load", "-i", str(archive)).stdout
    assert eng.docker("inspect", "-f", "{{.Id}}", ref).stdout.strip() == image_id
    missing = eng.docker("inspect", "no-such-image", check=False)
    assert missing.returncode != 0 and "No such" in missing.stderr


def test_restart_on_failure_restarts_exactly_twice(eng: EngineProcess) -> None:
    eng.docker(
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 1",
    )
    try:

        def settled() -> bool:
            out = eng.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky").stdout
            return out.split() == ["2", "exited"]

        assert wait_for(settled, timeout=30)
        time.sleep(1)  # a third restart would have happened by now
        assert settled()
        assert eng.docker("logs", "flaky").stdout.count("attempt") == 3
    finally:
        eng.docker("rm", "-f", "flaky", check=False)


def test_clear_errors_for_bad_input(eng: EngineProcess) -> None:
    bad_ref = eng.docker("run", "--rm", "Not/Valid:ref", "true", check=False)
    assert bad_ref.returncode != 0 and "invalid reference format" in bad_ref.stderr
    rm_missing = eng.docker("rm", "nope", check=False)
    assert "No such container: nope" in rm_missing.stderr
    eng.docker("run", "-d", "--name", "busy", "busybox", "sleep", "100")
    try:
        conflict = eng.docker("rm", "busy", check=False)
        assert conflict.returncode != 0 and "stop the container before removing" in conflict.stderr
        dup = eng.docker("run", "-d", "--name", "busy", "busybox", "true", check=False)
        assert "already in use" in dup.stderr
    finally:
        eng.docker("rm", "-f", "busy")


def test_info_and_system_df(eng: EngineProcess) -> None:
    info = eng.docker("info", "--format", "{{.Driver}} {{.Swarm.LocalNodeState}}").stdout
    assert info.split() == ["overlay2", "inactive"]
    eng.docker(
        "run",
        "--name",
        "sized",
        "-v",
        "dfvol:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 4096 /dev/zero > /data/f; head -c 8192 /dev/zero > /big",
    )
    try:
        table = eng.docker("system", "df").stdout
        assert "Images" in table and "Local Volumes" in table
        usage = eng.api("GET", "/system/df")
        vol = next(v for v in usage["Volumes"] if v["Name"] == "dfvol")
        assert vol["UsageData"] == {"Size": 4096, "RefCount": 1}
        row = next(c for c in usage["Containers"] if c["Names"] == ["/sized"])
        assert row["SizeRw"] >= 8192 and row["SizeRootFs"] > row["SizeRw"]
        assert any(i["Containers"] >= 1 for i in usage["Images"])
    finally:
        eng.docker("rm", "-f", "sized")
        eng.docker("volume", "rm", "dfvol")


def test_exec_records_go_with_their_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "execd", "busybox", "sleep", "100")
    exec_id = eng.api("POST", "/containers/execd/exec", {"Cmd": ["true"]})["Id"]
    assert eng.api("GET", f"/exec/{exec_id}/json")["Running"] is False
    eng.docker("rm", "-f", "execd")  # by name, not id
    status, body = api_call(eng.socket, "GET", f"/exec/{exec_id}/json")
    assert status == 404 and "No such exec instance" in body["message"]
