"""Live-restore, with the real docker CLI: containers outlive the engine.

A container's processes are not children of the daemon (each has a detached
shim), so a `kill -9` or a SIGTERM of the engine leaves them running, and the
restarted engine picks them up again: they are listed, their logs keep
growing, and every verb (stop, wait, attach, exec, pause, top, stats) works on
them. What happened while the engine was down is reported as Docker would:
an exit shows with its real code, `--rm` containers that ended are removed,
and restart policies apply.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, alive, parent_pid, wait_for

TICKER = "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture
def eng(engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield engine


def _state(eng: EngineProcess, name: str) -> dict[str, object]:
    out = eng.docker("inspect", "-f", "{{json .State}}", name).stdout
    state = json.loads(out)
    assert isinstance(state, dict)
    return state


def _pid(eng: EngineProcess, name: str) -> int:
    return int(_state(eng, name)["Pid"])  # type: ignore[call-overload]


def _ticks(eng: EngineProcess, name: str) -> int:
    return eng.docker("logs", name).stdout.count("tick ")


def _crash(eng: EngineProcess, how: str) -> None:
    if how == "kill9":
        eng.kill9()
    else:
        eng.stop()
    assert eng.proc is not None and eng.proc.poll() is not None


def _names_running(eng: EngineProcess) -> set[str]:
    return set(eng.docker("ps", "--format", "{{.Names}}").stdout.split())


# -- the acceptance item -------------------------------------------------------------------


def test_kill9_with_20_running_containers(eng: EngineProcess) -> None:
    names = [f"live{i}" for i in range(20)]
    for n in names:
        eng.docker("run", "-d", "--name", n, "busybox", "sh", "-c", TICKER)
    pids = {n: _pid(eng, n) for n in names}
    logs = {n: _log_file(eng, n) for n in names}
    assert wait_for(lambda: all(_ticks(eng, n) >= 2 for n in names[:3]), timeout=20)

    eng.kill9()
    assert all(alive(p) for p in pids.values()), "a container died with the daemon"
    for pid in pids.values():
        assert parent_pid(pid) != (eng.proc.pid if eng.proc else -1)
    # Logs are collected even while no engine runs: the shims write them.
    log_sizes = {n: logs[n].stat().st_size for n in names}
    assert wait_for(lambda: all(logs[n].stat().st_size > log_sizes[n] for n in names), timeout=10)

    eng.start()
    assert _names_running(eng) >= set(names)
    for n in names:
        state = _state(eng, n)
        assert state["Status"] == "running" and state["Running"] is True
        assert state["Pid"] == pids[n]
    # docker logs continues: more ticks appear after the restart.
    counts = {n: _ticks(eng, n) for n in names}
    assert wait_for(lambda: all(_ticks(eng, n) > counts[n] for n in names), timeout=20)
    # docker stop works (the ticker traps TERM and exits 0).
    eng.docker("stop", *names)  # the CLI sends the 20 stops in parallel
    for n in names:
        state = _state(eng, n)
        assert (state["Status"], state["ExitCode"]) == ("exited", 0)
        assert not alive(pids[n])
    assert _names_running(eng) == set()


def _log_file(eng: EngineProcess, name: str) -> Path:
    return Path(eng.docker("inspect", "-f", "{{.LogPath}}", name).stdout.strip())


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_running_container_survives_and_logs_follow(eng: EngineProcess, how: str) -> None:
    eng.docker("run", "-d", "--name", "tk", "busybox", "sh", "-c", TICKER)
    pid = _pid(eng, "tk")
    assert wait_for(lambda: _ticks(eng, "tk") >= 2)
    _crash(eng, how)
    assert alive(pid)
    eng.start()
    assert _state(eng, "tk")["Status"] == "running"
    assert _pid(eng, "tk") == pid
    with eng.docker_running("logs", "-f", "--tail", "0", "tk") as follow:
        assert follow.stdout is not None
        seen = [follow.stdout.readline() for _ in range(3)]
        assert all(line.startswith("tick ") for line in seen), seen
    eng.docker("stop", "tk")
    assert _state(eng, "tk")["ExitCode"] == 0


def test_follow_ends_when_a_recovered_container_exits(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "tk", "busybox", "sh", "-c", TICKER)
    eng.kill9()
    eng.start()
    with eng.docker_running("logs", "-f", "tk") as follow:
        assert wait_for(lambda: _ticks(eng, "tk") >= 1)
        eng.docker("stop", "tk")
        out, _ = follow.communicate(timeout=30)
        assert "tick 0" in out
        assert follow.returncode == 0


# -- exits while the engine is down ----------------------------------------------------------


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_exit_while_down_shows_the_real_exit_code(
    eng: EngineProcess, tmp_path: Path, how: str
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    eng.docker(
        "run",
        "-d",
        "--name",
        "ends",
        "-v",
        f"{gate}:/gate",
        "busybox",
        "sh",
        "-c",
        "echo started; while [ ! -e /gate/go ]; do sleep 0.1; done; echo bye; exit 42",
    )
    pid = _pid(eng, "ends")
    _crash(eng, how)
    (gate / "go").touch()
    assert wait_for(lambda: not alive(pid), timeout=15)
    eng.start()
    state = _state(eng, "ends")
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 42, False)
    assert state["Pid"] == 0
    assert state["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert "ends" not in _names_running(eng)
    assert "ends" in eng.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert eng.docker("logs", "ends").stdout == "started\nbye\n"
    assert eng.docker("wait", "ends").stdout.strip() == "42"
    # It starts again like any exited container.
    (gate / "go").unlink()
    eng.docker("start", "ends")
    assert _state(eng, "ends")["Status"] == "running"
    (gate / "go").touch()
    assert eng.docker("wait", "ends").stdout.strip() == "42"


def test_killed_by_signal_while_down(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "victim", "busybox", "sleep", "1000")
    pid = _pid(eng, "victim")
    eng.kill9()
    os.kill(pid, 9)
    assert wait_for(lambda: not alive(pid), timeout=15)
    eng.start()
    state = _state(eng, "victim")
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_rm_container_that_exited_while_down_is_removed(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "1000")
    eng.docker("run", "-d", "--rm", "--name", "stays", "busybox", "sleep", "1000")
    pid = _pid(eng, "gone")
    eng.kill9()
    os.kill(pid, 9)  # PID 1 of its namespace: TERM has no default action there
    assert wait_for(lambda: not alive(pid), timeout=15)
    eng.start()
    assert wait_for(lambda: "gone" not in eng.docker("ps", "-a").stdout, timeout=15)
    assert eng.docker("inspect", "gone", check=False).returncode != 0
    assert "stays" in _names_running(eng)
    # A recovered --rm container is still removed when it exits later.
    eng.docker("stop", "-t", "1", "stays")
    assert wait_for(lambda: "stays" not in eng.docker("ps", "-a").stdout, timeout=15)


# -- restart policies ---------------------------------------------------------------------------


def test_restart_always_container_that_died_while_down_comes_back(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--restart", "always", "--name", "al", "busybox", "sleep", "1000")
    eng.docker(
        "run", "-d", "--restart", "unless-stopped", "--name", "us", "busybox", "sleep", "1000"
    )
    eng.docker("run", "-d", "--restart", "on-failure", "--name", "of", "busybox", "sleep", "1000")
    eng.docker("run", "-d", "--name", "no", "busybox", "sleep", "1000")
    pids = {n: _pid(eng, n) for n in ("al", "us", "of", "no")}
    eng.kill9()
    for pid in pids.values():
        os.kill(pid, 9)
    assert wait_for(lambda: not any(alive(p) for p in pids.values()), timeout=15)
    eng.start()
    assert wait_for(lambda: {"al", "us", "of"} <= _names_running(eng), timeout=20)
    for n in ("al", "us", "of"):
        assert _pid(eng, n) not in (0, pids[n])
    state = _state(eng, "no")
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_restart_always_running_container_is_not_restarted(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--restart", "always", "--name", "al", "busybox", "sleep", "1000")
    pid = _pid(eng, "al")
    eng.kill9()
    eng.start()
    assert _pid(eng, "al") == pid
    assert eng.docker("inspect", "-f", "{{.RestartCount}}", "al").stdout.strip() == "0"
    # The policy still applies to the recovered container: it comes back after a crash.
    os.kill(pid, 9)
    assert wait_for(
        lambda: _state(eng, "al")["Running"] is True and _pid(eng, "al") not in (0, pid),
        timeout=20,
    )


def test_stopped_restart_policy_containers_after_restart(eng: EngineProcess) -> None:
    """Docker: `always` comes back at engine start even if stopped by hand; `unless-stopped`
    stays down when stopped by hand."""
    eng.docker("run", "-d", "--restart", "always", "--name", "al", "busybox", "sleep", "1000")
    eng.docker(
        "run", "-d", "--restart", "unless-stopped", "--name", "us", "busybox", "sleep", "1000"
    )
    eng.docker("stop", "-t", "0", "al", "us")
    eng.kill9()
    eng.start()
    assert wait_for(lambda: "al" in _names_running(eng), timeout=20)
    assert _state(eng, "us")["Status"] == "exited"


# -- verbs on recovered containers ---------------------------------------------------------------


def test_wait_on_recovered_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "wt", "busybox", "sh", "-c", "read x; exit 7")
    eng.docker("run", "-d", "-i", "--name", "wi", "busybox", "sh", "-c", "read x; exit 7")
    eng.kill9()
    eng.start()
    # `w` has no stdin: read hits EOF at once and it has exited (possibly while down).
    assert eng.docker("wait", "wt").stdout.strip() == "7"
    with eng.docker_running("wait", "wi") as waiter:
        time.sleep(0.5)
        assert waiter.poll() is None
        eng.docker("kill", "-s", "KILL", "wi")
        out, _ = waiter.communicate(timeout=30)
        assert out.strip() == "137"


def test_attach_to_recovered_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "-i", "--name", "cat", "busybox", "cat")
    eng.kill9()
    eng.start()
    with eng.docker_running("attach", "cat", stdin=True) as attach:
        assert attach.stdin is not None and attach.stdout is not None
        attach.stdin.write("hello after restart\n")
        attach.stdin.flush()
        assert attach.stdout.readline() == "hello after restart\n"
        eng.docker("kill", "cat")
        assert attach.wait(timeout=30) == 137  # attach ends with the container's exit
    assert "hello after restart" in eng.docker("logs", "cat").stdout


def test_exec_top_stats_on_recovered_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    eng.kill9()
    eng.start()
    assert eng.docker("exec", "ex", "echo", "in", "there").stdout == "in there\n"
    assert eng.docker("exec", "ex", "sh", "-c", "exit 5", check=False).returncode == 5
    assert "sleep 1000" in eng.docker("top", "ex").stdout
    stats = eng.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "ex").stdout
    name, npids = stats.split()
    assert name == "ex" and int(npids) >= 1


def test_pause_unpause_on_recovered_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "pz", "busybox", "sh", "-c", TICKER)
    eng.kill9()
    eng.start()
    eng.docker("pause", "pz")
    assert _state(eng, "pz")["Status"] == "paused"
    frozen = _ticks(eng, "pz")
    time.sleep(0.6)
    assert _ticks(eng, "pz") == frozen
    eng.docker("unpause", "pz")
    assert wait_for(lambda: _ticks(eng, "pz") > frozen, timeout=10)
    eng.docker("stop", "pz")
    assert _state(eng, "pz")["ExitCode"] == 0


def test_paused_container_survives_restart(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "pz", "busybox", "sh", "-c", TICKER)
    eng.docker("pause", "pz")
    pid = _pid(eng, "pz")
    eng.kill9()
    eng.start()
    state = _state(eng, "pz")
    assert (state["Status"], state["Paused"], state["Pid"]) == ("paused", True, pid)
    eng.docker("unpause", "pz")
    frozen = _ticks(eng, "pz")
    assert wait_for(lambda: _ticks(eng, "pz") > frozen, timeout=10)
    eng.docker("stop", "pz")


def test_two_restarts_in_a_row_and_stop_after_sigterm(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "tk", "busybox", "sh", "-c", TICKER)
    pid = _pid(eng, "tk")
    eng.restart()  # SIGTERM: graceful, containers keep running
    eng.kill9()
    eng.start()
    assert _pid(eng, "tk") == pid and alive(pid)
    eng.docker("stop", "tk")
    assert _state(eng, "tk")["ExitCode"] == 0
    assert not alive(pid)


def test_new_containers_and_rm_after_recovery(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "old", "busybox", "sleep", "1000")
    eng.kill9()
    eng.start()
    assert eng.docker("run", "--rm", "busybox", "echo", "new").stdout == "new\n"
    eng.docker("rm", "-f", "old")
    assert eng.docker("ps", "-aq").stdout.strip() == ""


def test_container_left_half_started_by_a_crash_is_ended(eng: EngineProcess) -> None:
    """The engine died after its shim started the container but before the record said
    so: the next engine must not leak that process (nor its cgroup) nor adopt it."""
    cid = eng.docker("run", "-d", "--name", "half", "busybox", "sleep", "1000").stdout.strip()
    pid = _pid(eng, "half")
    eng.kill9()
    record = eng.root / "containers" / cid / "config.v2.json"
    doc = json.loads(record.read_text())
    doc["State"].update(Status="created", Running=False, Pid=0)
    record.write_text(json.dumps(doc))
    eng.start()
    assert wait_for(lambda: not alive(pid), timeout=15)
    assert _state(eng, "half")["Status"] == "created"
    eng.docker("start", "half")
    new_pid = _pid(eng, "half")
    assert new_pid not in (0, pid)
    assert eng.docker("top", "half").stdout.count("sleep 1000") == 1
    eng.docker("stop", "-t", "1", "half")
    assert _state(eng, "half")["ExitCode"] == 137


def test_unreadable_shim_record_does_not_stop_the_engine(eng: EngineProcess) -> None:
    """A container whose runtime record cannot be read is shown as ended (and its
    processes are not leaked); every other container is recovered as usual."""
    eng.docker("run", "-d", "--name", "fine", "busybox", "sleep", "1000")
    bad = eng.docker("run", "-d", "--name", "broken", "busybox", "sleep", "1000").stdout.strip()
    fine_pid, bad_pid = _pid(eng, "fine"), _pid(eng, "broken")
    eng.kill9()
    (eng.exec_root / bad[:16] / "shim.json").write_text("{}")
    eng.start()
    assert _pid(eng, "fine") == fine_pid
    state = _state(eng, "broken")
    assert (state["Status"], state["ExitCode"]) == ("exited", 255)
    assert wait_for(lambda: not alive(bad_pid), timeout=15)
    eng.docker("start", "broken")
    assert _state(eng, "broken")["Running"] is True
    eng.docker("stop", "-t", "1", "fine", "broken")


def test_detached_exec_that_writes_survives_kill9(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    eng.docker("exec", "-d", "ex", "sh", "-c", "while true; do echo x; sleep 0.1; done")
    assert wait_for(lambda: "while true" in eng.docker("top", "ex").stdout)
    eng.kill9()
    time.sleep(0.5)  # several writes with no reader, if nothing else holds the pipe
    eng.start()
    assert "while true" in eng.docker("top", "ex").stdout
