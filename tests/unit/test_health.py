"""Healthchecks, the pure rules: validation, merge with the image, transitions, views."""

from __future__ import annotations

from typing import Any

import pytest

from engine.containers import filters, health, views
from engine.containers.health import (
    HEALTHY,
    STARTING,
    UNHEALTHY,
    Health,
    HealthConfig,
    ProbeResult,
)
from engine.containers.model import Container, State
from engine.containers.status import Status
from engine.errors import InvalidParameter
from tests.runtime_specs import paper_spec

MS = 1_000_000
S = 1_000_000_000


def result(code: int, output: str = "") -> ProbeResult:
    return ProbeResult("2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z", code, output)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"Test": []},
        {"Test": ["NONE"]},
        {"Test": ["CMD", "true"], "Interval": MS, "Timeout": 0, "Retries": 0},
        {"Test": ["CMD-SHELL", "exit 0"], "StartPeriod": S, "StartInterval": S},
    ],
)
def test_valid_healthchecks(raw: Any) -> None:
    health.validate(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"Interval": -1}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Interval": MS - 1}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
        ({"StartPeriod": -S}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ({"StartInterval": 5}, "StartInterval in Healthcheck cannot be less than 1ms"),
        ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
        ({"Retries": "3"}, "Retries in Healthcheck must be a whole number"),
        ({"Interval": 1.5}, "Interval in Healthcheck must be a duration"),
        ({"Timeout": True}, "Timeout in Healthcheck must be a duration"),
        ({"Test": "true"}, "must be a list of strings"),
        ({"Test": ["CMD", 1]}, "must be a list of strings"),
        ({"Test": ["RUN", "x"]}, "unknown Healthcheck test type 'RUN'"),
        ({"Test": ["CMD-SHELL"]}, "needs a command"),
        ("yes", "Healthcheck must be a JSON object"),
    ],
)
def test_invalid_healthchecks(raw: Any, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        health.validate(raw)


IMAGE = {"Test": ["CMD-SHELL", "check"], "Interval": 2 * S, "Retries": 5}


def test_merge_own_fields_override_and_zero_fields_inherit() -> None:
    merged = health.merge({"Test": [], "Interval": 0, "Timeout": 3 * S, "Retries": 1}, IMAGE)
    assert merged == {"Test": ["CMD-SHELL", "check"], "Interval": 2 * S, "Timeout": 3 * S,
                      "Retries": 1}  # fmt: skip


def test_merge_without_one_side() -> None:
    assert health.merge(None, IMAGE) == IMAGE
    assert health.merge({"Test": ["CMD", "x"]}, None) == {"Test": ["CMD", "x"]}
    assert health.merge(None, None) is None
    assert health.merge({"Test": ["NONE"]}, IMAGE) == {**IMAGE, "Test": ["NONE"]}


def test_effective_config_and_defaults() -> None:
    shell = health.effective({"Test": ["CMD-SHELL", "wget -q x || exit 1"]})
    assert shell == HealthConfig(["/bin/sh", "-c", "wget -q x || exit 1"])
    assert shell.interval == 30 * S and shell.timeout == 30 * S and shell.retries == 3
    assert shell.start_period == 0 and shell.start_interval == 5 * S
    direct = health.effective({"Test": ["CMD", "cat", "/f"], "Interval": S, "Retries": 2})
    assert direct == HealthConfig(["cat", "/f"], interval=S, retries=2)
    for off in (None, {}, {"Test": []}, {"Test": ["NONE"]}):
        assert health.effective(off) is None


def test_success_is_healthy_and_resets_the_streak() -> None:
    h = Health(status=UNHEALTHY, failing_streak=4)
    assert h.record(result(0), HealthConfig(["true"]), in_start_period=False)
    assert (h.status, h.failing_streak) == (HEALTHY, 0)
    assert not h.record(result(0), HealthConfig(["true"]), in_start_period=False)


@pytest.mark.parametrize("code", [1, 2, 127, -1])
def test_failures_turn_unhealthy_after_retries(code: int) -> None:
    cfg = HealthConfig(["false"], retries=2)
    h = Health(status=HEALTHY)
    assert not h.record(result(code), cfg, in_start_period=False)
    assert (h.status, h.failing_streak) == (HEALTHY, 1)
    assert h.record(result(code), cfg, in_start_period=False)
    assert (h.status, h.failing_streak) == (UNHEALTHY, 2)


def test_start_period_failures_do_not_count_while_starting() -> None:
    cfg = HealthConfig(["false"], retries=1, start_period=60 * S)
    h = Health()
    assert not h.record(result(1), cfg, in_start_period=True)
    assert (h.status, h.failing_streak) == (STARTING, 0)
    h.record(result(0), cfg, in_start_period=True)
    assert h.record(result(1), cfg, in_start_period=True)  # healthy once: failures count
    assert h.status == UNHEALTHY


def test_log_keeps_five_and_restart_resets() -> None:
    h = Health()
    for i in range(7):
        h.record(result(0, str(i)), HealthConfig(["true"]), in_start_period=False)
    assert [r.output for r in h.log] == ["2", "3", "4", "5", "6"]
    h.restart()
    assert (h.status, h.failing_streak, len(h.log)) == (STARTING, 0, 5)


def test_record_round_trip_and_old_records() -> None:
    h = Health(HEALTHY, 0, [result(0, "ok")])
    assert Health.from_record(h.to_docker()) == h
    assert Health.from_record(None) is None
    assert h.to_docker()["Log"][0] == {
        "Start": "2024-01-01T00:00:01Z",
        "End": "2024-01-01T00:00:02Z",
        "ExitCode": 0,
        "Output": "ok",
    }


def test_next_interval_uses_start_interval_only_while_starting_in_the_period() -> None:
    cfg = HealthConfig(["true"], interval=10 * S, start_period=60 * S, start_interval=S)
    assert health.next_interval_ns(cfg, Health(), since_start_ns=S) == S
    assert health.next_interval_ns(cfg, Health(HEALTHY), since_start_ns=S) == 10 * S
    assert health.next_interval_ns(cfg, Health(), since_start_ns=61 * S) == 10 * S


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (30 * S, "30s"),
        (S, "1s"),
        (300 * MS, "300ms"),
        (1500 * MS, "1.5s"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
        (2 * MS + 500_000, "2.5ms"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert health.go_duration(ns) == text


def test_output_is_truncated_to_4096_bytes() -> None:
    assert len(health.truncate_output(b"x" * 10000)) == 4096


def container(state: State, healthcheck: dict[str, Any] | None = None) -> Container:
    spec = paper_spec(id="c" * 64)
    config: dict[str, Any] = {"Image": "busybox"}
    if healthcheck:
        config["Healthcheck"] = healthcheck
    return Container("c" * 64, "c", "2024-01-01T00:00:00Z", "sha256:x", config, {}, spec, [], state)


def test_ps_status_text_shows_health_unless_paused() -> None:
    now = 1704067210.0
    running = State(Status.RUNNING, started_at="2024-01-01T00:00:00Z", health=Health())
    assert views.status_text(container(running), now) == "Up 10 seconds (health: starting)"
    running.health = Health(HEALTHY)
    assert views.status_text(container(running), now) == "Up 10 seconds (healthy)"
    running.status = Status.PAUSED
    assert views.status_text(container(running), now) == "Up 10 seconds (Paused)"
    plain = State(Status.RUNNING, started_at="2024-01-01T00:00:00Z")
    assert views.status_text(container(plain), now) == "Up 10 seconds"


def test_inspect_state_has_health_only_when_monitored() -> None:
    assert "Health" not in State().to_docker()
    assert State(health=Health()).to_docker()["Health"] == {
        "Status": "starting",
        "FailingStreak": 0,
        "Log": [],
    }


def test_health_filter() -> None:
    flt = filters.check_statuses({"health": ["healthy", "none"]})
    match = filters.matcher(flt, lambda _c, _v: True)
    assert match(container(State(Status.RUNNING, health=Health(HEALTHY))))
    assert match(container(State(Status.RUNNING)))
    assert not match(container(State(Status.RUNNING, health=Health(UNHEALTHY))))
    with pytest.raises(InvalidParameter, match="Unrecognised filter value for health: ok"):
        filters.check_statuses({"health": ["ok"]})


def test_start_interval_needs_api_1_44() -> None:
    body: dict[str, Any] = {"Healthcheck": {"Test": ["CMD", "true"], "StartInterval": S}}
    health.for_api_version(body, (1, 44))
    assert body["Healthcheck"]["StartInterval"] == S
    health.for_api_version(body, (1, 43))
    assert body["Healthcheck"] == {"Test": ["CMD", "true"]}
