"""Healthchecks end to end: the real docker CLI and API against a real engine.

Checks run as execs inside real containers; statuses are read back through
`docker inspect`, `docker ps` and `/events`, as a user would.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine_process import (
    EngineProcess,
    alive,
    api_call,
    cmdline,
    proc_cmdlines,
    wait_for,
)

HC_IMAGE = "busybox-healthcheck"
SERVE = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"
WGET = "wget -qO- http://localhost/ || exit 1"
FAST = ("--health-interval", "200ms", "--health-start-interval", "200ms")


def load_healthcheck_image(eng: EngineProcess, healthcheck: dict[str, Any]) -> None:
    """busybox with a HEALTHCHECK in its config, made from `docker save` and `docker load`."""
    saved = subprocess.run(
        ["docker", "save", "busybox"], env=eng.env, capture_output=True, check=True
    ).stdout
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(saved)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        manifest = json.load(src.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(src.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        config["config"]["Healthcheck"] = healthcheck
        for name in manifest["Layers"]:
            member = src.getmember(name)
            dst.addfile(member, src.extractfile(member))
        entry = {"Config": "hc-config.json", "RepoTags": [HC_IMAGE + ":latest"]}
        entry["Layers"] = manifest["Layers"]
        for name, data in (("hc-config.json", config), ("manifest.json", [entry])):
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            dst.addfile(info, io.BytesIO(raw))
    subprocess.run(
        ["docker", "load"], env=eng.env, input=out.getvalue(), capture_output=True, check=True
    )


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    load_healthcheck_image(
        shared_engine,
        {"Test": ["CMD-SHELL", "test -e /tmp/ready"], "Interval": 200_000_000, "Retries": 1},
    )
    yield shared_engine


def health(eng: EngineProcess, name: str) -> dict[str, Any]:
    state = eng.api("GET", f"/containers/{name}/json")["State"]
    return dict(state.get("Health") or {})


def status_is(eng: EngineProcess, name: str, want: str) -> bool:
    return health(eng, name).get("Status") == want


def run_d(eng: EngineProcess, *args: str) -> str:
    return eng.docker("run", "-d", *args).stdout.strip()


def test_healthy_then_unhealthy_after_retries(eng: EngineProcess) -> None:
    since = time.time()
    run_d(eng, "--name", "flip", "--health-cmd", "cat /tmp/ok", *FAST, "--health-retries", "2",
          "busybox", "sh", "-c", "echo fine > /tmp/ok; exec sleep 300")  # fmt: skip
    try:
        assert wait_for(lambda: status_is(eng, "flip", "healthy"), timeout=30)
        assert "(healthy)" in eng.docker("ps", "--filter", "name=flip").stdout
        fmt = eng.docker("inspect", "--format", "{{.State.Health.Status}}", "flip").stdout
        assert fmt.strip() == "healthy"
        assert health(eng, "flip")["Log"][-1]["Output"] == "fine\n"
        eng.docker("exec", "flip", "rm", "/tmp/ok")
        assert wait_for(lambda: status_is(eng, "flip", "unhealthy"), timeout=30)
        h = health(eng, "flip")
        assert h["FailingStreak"] >= 2
        assert 1 <= len(h["Log"]) <= 5
        assert h["Log"][-1]["ExitCode"] == 1
        assert "(unhealthy)" in eng.docker("ps", "--filter", "name=flip").stdout
        events = eng.docker(
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            "container=flip",
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ).stdout.split("\n")
        assert events[:2] == ["health_status: healthy", "health_status: unhealthy"]
    finally:
        eng.docker("rm", "-f", "flip")


def test_wget_check_against_a_server_in_the_container(eng: EngineProcess) -> None:
    run_d(eng, "--name", "web", "--health-cmd", WGET, *FAST, "--health-retries", "2",
          "busybox", "sh", "-c", SERVE)  # fmt: skip
    try:
        probe = eng.docker("exec", "web", "sh", "-c", WGET, check=False)
        if "Network is unreachable" in probe.stderr:
            pytest.skip("loopback is down in the container's network namespace")
        assert wait_for(lambda: status_is(eng, "web", "healthy"), timeout=30)
        assert health(eng, "web")["Log"][-1]["Output"] == "ok\n"
    finally:
        eng.docker("rm", "-f", "web")


def test_log_keeps_the_last_five_results(eng: EngineProcess) -> None:
    run_d(eng, "--name", "log5", "--health-cmd", "echo checked", *FAST, "busybox", "sleep", "300")
    try:
        assert wait_for(lambda: len(health(eng, "log5").get("Log", [])) == 5, timeout=30)
        time.sleep(0.5)  # a few more checks run; the log stays at five
        log = health(eng, "log5")["Log"]
        assert len(log) == 5
        assert all(r["Output"] == "checked\n" and r["ExitCode"] == 0 for r in log)
    finally:
        eng.docker("rm", "-f", "log5")


def test_timeout_kills_the_check_and_counts_as_failure(eng: EngineProcess) -> None:
    cid = run_d(
        eng,
        "--name",
        "slow",
        "--health-cmd",
        "sleep 300",
        "--health-timeout",
        "300ms",
        *FAST,
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    )
    try:
        assert wait_for(lambda: status_is(eng, "slow", "unhealthy"), timeout=30)
        last = health(eng, "slow")["Log"][-1]
        assert last["ExitCode"] == -1
        assert last["Output"] == "Health check exceeded timeout (300ms)"
        # A timed-out check is killed with everything it started.
        eng.docker("stop", "-t", "0", "slow")
        assert wait_for(lambda: not _helpers_of(cid))
    finally:
        eng.docker("rm", "-f", "slow")


def _helpers_of(cid: str) -> list[int]:
    """Exec helpers (a check's process in the container) still alive for this container."""
    return [pid for pid, cmd in proc_cmdlines() if "nsexec" in cmd and cid in cmd]


def test_checks_leave_no_process_behind(eng: EngineProcess) -> None:
    run_d(
        eng,
        "--name",
        "tidy",
        "--health-cmd",
        "sleep 300",
        "--health-timeout",
        "200ms",
        *FAST,
        "busybox",
        "sleep",
        "300",
    )
    try:
        assert wait_for(lambda: len(health(eng, "tidy").get("Log", [])) >= 2, timeout=30)
        top = eng.docker("top", "tidy").stdout
        # At most the check running right now, never one per past check.
        assert top.count("sleep 300") <= 2
    finally:
        eng.docker("rm", "-f", "tidy")


def test_start_period_failures_do_not_count(eng: EngineProcess) -> None:
    run_d(
        eng,
        "--name",
        "warming",
        "--health-cmd",
        "test -e /tmp/up",
        "--health-start-period",
        "1h",
        *FAST,
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    )
    try:
        assert wait_for(lambda: len(health(eng, "warming").get("Log", [])) >= 3, timeout=30)
        h = health(eng, "warming")
        assert h["Status"] == "starting" and h["FailingStreak"] == 0
        assert "(health: starting)" in eng.docker("ps", "--filter", "name=warming").stdout
        eng.docker("exec", "warming", "touch", "/tmp/up")
        assert wait_for(lambda: status_is(eng, "warming", "healthy"), timeout=30)
    finally:
        eng.docker("rm", "-f", "warming")


def test_image_healthcheck_runs_and_none_disables_it(eng: EngineProcess) -> None:
    run_d(eng, "--name", "fromimage", HC_IMAGE, "sh", "-c", "touch /tmp/ready; sleep 300")
    run_d(eng, "--name", "nocheck", "--no-healthcheck", HC_IMAGE, "sleep", "300")
    try:
        assert wait_for(lambda: status_is(eng, "fromimage", "healthy"), timeout=30)
        cfg = eng.api("GET", "/containers/fromimage/json")["Config"]["Healthcheck"]
        assert cfg["Test"] == ["CMD-SHELL", "test -e /tmp/ready"]
        assert eng.api("GET", "/containers/nocheck/json")["State"].get("Health") is None
        names = eng.docker("ps", "--filter", "health=none", "--format", "{{.Names}}").stdout
        assert "nocheck" in names.split() and "fromimage" not in names.split()
    finally:
        eng.docker("rm", "-f", "fromimage", "nocheck")


def test_own_fields_override_the_image_healthcheck(eng: EngineProcess) -> None:
    run_d(eng, "--name", "override", "--health-retries", "7", HC_IMAGE, "sleep", "300")
    try:
        cfg = eng.api("GET", "/containers/override/json")["Config"]["Healthcheck"]
        assert cfg["Retries"] == 7
        assert cfg["Test"] == ["CMD-SHELL", "test -e /tmp/ready"]  # inherited
    finally:
        eng.docker("rm", "-f", "override")


def test_health_filters(eng: EngineProcess) -> None:
    run_d(eng, "--name", "f-ok", "--health-cmd", "true", *FAST, "busybox", "sleep", "300")
    run_d(eng, "--name", "f-bad", "--health-cmd", "false", *FAST, "--health-retries", "1",
          "busybox", "sleep", "300")  # fmt: skip
    run_d(eng, "--name", "f-plain", "busybox", "sleep", "300")
    try:
        assert wait_for(lambda: status_is(eng, "f-ok", "healthy"), timeout=30)
        assert wait_for(lambda: status_is(eng, "f-bad", "unhealthy"), timeout=30)

        def names(value: str) -> set[str]:
            out = eng.docker("ps", "--filter", f"health={value}", "--format", "{{.Names}}")
            return set(out.stdout.split())

        assert "f-ok" in names("healthy") and "f-bad" not in names("healthy")
        assert "f-bad" in names("unhealthy") and "f-ok" not in names("unhealthy")
        assert "f-plain" in names("none") and "f-ok" not in names("none")
        bad = eng.docker("ps", "--filter", "health=great", check=False)
        assert bad.returncode != 0 and "Unrecognised filter value for health" in bad.stderr
    finally:
        eng.docker("rm", "-f", "f-ok", "f-bad", "f-plain")


def test_paused_container_is_not_checked(eng: EngineProcess) -> None:
    run_d(eng, "--name", "frozen", "--health-cmd", "true", *FAST, "busybox", "sleep", "300")
    try:
        assert wait_for(lambda: len(health(eng, "frozen").get("Log", [])) >= 1, timeout=30)
        eng.docker("pause", "frozen")
        before = health(eng, "frozen")["Log"]
        time.sleep(1)  # five intervals: none of them may run a check
        assert health(eng, "frozen")["Log"] == before
        eng.docker("unpause", "frozen")
        assert wait_for(lambda: health(eng, "frozen")["Log"] != before, timeout=30)
    finally:
        eng.docker("rm", "-f", "frozen")


def test_stopped_container_keeps_its_last_health(eng: EngineProcess) -> None:
    run_d(eng, "--name", "halt", "--health-cmd", "true", *FAST, "busybox", "sleep", "300")
    try:
        assert wait_for(lambda: status_is(eng, "halt", "healthy"), timeout=30)
        eng.docker("stop", "-t", "0", "halt")
        assert status_is(eng, "halt", "unhealthy")  # Docker's status once monitoring stops
        eng.docker("start", "halt")
        assert health(eng, "halt")["Status"] in ("starting", "healthy")
        assert wait_for(lambda: status_is(eng, "halt", "healthy"), timeout=30)
    finally:
        eng.docker("rm", "-f", "halt")


BAD_HEALTHCHECKS = [
    ({"Test": ["CMD", "true"], "Interval": -1}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": 500}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less"),
    ({"Test": ["CMD", "true"], "StartInterval": -5}, "StartInterval in Healthcheck cannot be"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": ["CMD", "true"], "Interval": "1s"}, "must be a duration in nanoseconds"),
    ({"Test": ["PING", "x"]}, "unknown Healthcheck test type"),
    ({"Test": ["CMD"]}, "needs a command"),
    ({"Test": "true"}, "must be a list of strings"),
]


@pytest.mark.parametrize(("check", "message"), BAD_HEALTHCHECKS)
def test_bad_healthcheck_is_refused_and_nothing_stored(
    eng: EngineProcess, check: dict[str, Any], message: str
) -> None:
    before = eng.api("GET", "/containers/json?all=1")
    body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": check}
    status, reply = api_call(eng.socket, "POST", "/containers/create?name=badhc", body)
    assert status == 400, reply
    assert message in reply["message"]
    assert eng.api("GET", "/containers/json?all=1") == before


def test_health_survives_an_engine_crash_and_checks_resume(
    engine: EngineProcess, registry_with_images: str
) -> None:
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    check = "echo x >> /tmp/count"
    run_d(engine, "--name", "durable", "--health-cmd", check, *FAST, "busybox", "sleep", "300")

    def count() -> int:
        out = engine.docker("exec", "durable", "cat", "/tmp/count", check=False).stdout
        return out.count("x")

    assert wait_for(lambda: status_is(engine, "durable", "healthy"), timeout=30)
    engine.kill9()
    engine.start()
    assert status_is(engine, "durable", "healthy")  # persisted, not reset to starting
    seen = count()
    assert wait_for(lambda: count() > seen + 1, timeout=30)
    assert "(healthy)" in engine.docker("ps").stdout


@pytest.mark.parametrize(("ending", "timeout"), [("stop", "1h"), ("kill -9", "2s")])
def test_a_check_in_flight_ends_with_the_engine_or_at_its_timeout(
    engine: EngineProcess, registry_with_images: str, ending: str, timeout: str
) -> None:
    """A stopped engine ends its checks itself. A killed one cannot: the check's own helper
    then holds its timeout (a second later), so nothing of it outlives that."""
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    cid = run_d(engine, "--name", "inflight", "--health-cmd", "sleep 300",
                "--health-timeout", timeout, *FAST, "busybox", "sleep", "300")  # fmt: skip
    assert wait_for(lambda: bool(_helpers_of(cid)), timeout=30)
    if ending == "stop":
        engine.stop()
        assert engine.proc is not None and engine.proc.returncode == 0  # not killed
    else:
        engine.kill9()
    assert wait_for(lambda: not _helpers_of(cid), timeout=2 + 1 + 10)
    top = [line for line in _container_cmdlines(engine, cid) if "sleep 300" in line]
    assert len(top) == 1  # only the container's own command is left
    engine.start()


def _container_cmdlines(eng: EngineProcess, cid: str) -> list[str]:
    """Command lines of the processes in the container's pids cgroup (read on the host)."""
    procs = [p for p in Path("/sys/fs/cgroup/pids").rglob("cgroup.procs") if cid in str(p)]
    pids = [int(x) for p in procs for x in p.read_text().split()]
    return [cmdline(pid) for pid in pids]


def test_check_caught_by_a_pause_is_ended_after_the_thaw(eng: EngineProcess) -> None:
    cid = run_d(eng, "--name", "caught", "--health-cmd", "sleep 300", "--health-timeout",
                "300ms", *FAST, "busybox", "sleep", "300")  # fmt: skip
    try:
        assert wait_for(lambda: bool(_helpers_of(cid)), timeout=30)
        eng.docker("pause", "caught")
        frozen = _helpers_of(cid)

        def last() -> Any:
            return (health(eng, "caught").get("Log") or [None])[-1]

        before = last()
        # The frozen check still times out and is recorded while the container is paused,
        # whether the pause caught it running or still joining the container (the helper
        # then cannot even report its start): within its timeout, not the exec's 30 s.
        assert wait_for(lambda: last() != before, timeout=10)
        assert (last()["ExitCode"], last()["Output"]) == (
            -1,
            "Health check exceeded timeout (300ms)",
        )
        eng.docker("unpause", "caught")
        assert wait_for(lambda: not any(alive(pid) for pid in frozen), timeout=30)
    finally:
        eng.docker("rm", "-f", "caught")


def test_start_interval_is_dropped_for_clients_before_1_44(eng: EngineProcess) -> None:
    check = {"Test": ["CMD", "true"], "StartInterval": 1_000_000_000}
    body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": check}
    old = eng.api("POST", "/v1.43/containers/create", body)["Id"]
    new = eng.api("POST", "/v1.44/containers/create", body)["Id"]
    try:
        config = eng.api("GET", f"/containers/{old}/json")["Config"]["Healthcheck"]
        assert "StartInterval" not in config
        config = eng.api("GET", f"/containers/{new}/json")["Config"]["Healthcheck"]
        assert config["StartInterval"] == 1_000_000_000
    finally:
        eng.docker("rm", "-f", old, new)
