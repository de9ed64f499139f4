"""Healthchecks, the pure half: the configuration, its validation and merge, and the rules.

Docker's semantics live here so they are unit-tested without a runtime:
the container's Healthcheck overrides the image's field by field (a zero
field inherits), `Test: ["NONE"]` disables a check, durations are Go
nanoseconds of at least 1ms, and a probe result moves the status between
starting, healthy and unhealthy (failures inside the start period do not
count). The scheduler (healthcheck_monitor.py) and the probe that runs the
command in the container (healthcheck_probe.py) are the effectful half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidParameter

NS = 1_000_000_000
MINIMUM_NS = 1_000_000  # Docker's MinimumDuration: 1ms
DEFAULT_INTERVAL_NS = 30 * NS
DEFAULT_TIMEOUT_NS = 30 * NS
DEFAULT_START_INTERVAL_NS = 5 * NS
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_BYTES = 4096

STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK = "starting", "healthy", "unhealthy", "none"
FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK)
EXIT_HEALTHY = 0

_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
_PROBE_KINDS = ("NONE", "CMD", "CMD-SHELL")


@dataclass(frozen=True)
class HealthConfig:
    """A container's effective check, with Docker's defaults applied (durations in ns)."""

    args: list[str]  # what runs inside the container
    interval: int = DEFAULT_INTERVAL_NS
    timeout: int = DEFAULT_TIMEOUT_NS
    start_period: int = 0
    start_interval: int = DEFAULT_START_INTERVAL_NS
    retries: int = DEFAULT_RETRIES


def validate(raw: Any) -> None:
    """Reject a create request's Healthcheck with Docker's messages, before anything is stored."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise InvalidParameter("Healthcheck must be a JSON object")
    test = raw.get("Test")
    if test is not None:
        _check_test(test)
    for key in _DURATIONS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidParameter(f"{key} in Healthcheck must be a duration in nanoseconds")
        if value != 0 and value < MINIMUM_NS:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    retries = raw.get("Retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise InvalidParameter("Retries in Healthcheck must be a whole number")
        if retries < 0:
            raise InvalidParameter("Retries in Healthcheck cannot be negative")


def _check_test(test: Any) -> None:
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidParameter(
            'Test in Healthcheck must be a list of strings, e.g. ["CMD-SHELL", "wget -q localhost"]'
        )
    if not test:
        return  # inherit the image's test
    if test[0] not in _PROBE_KINDS:
        raise InvalidParameter(
            f"unknown Healthcheck test type {test[0]!r}: start Test with NONE, CMD or CMD-SHELL"
        )
    if test[0] != "NONE" and len(test) < 2:
        raise InvalidParameter(f"Healthcheck test {test[0]} needs a command after it")


def for_api_version(body: dict[str, Any], version: tuple[int, ...]) -> None:
    """As Docker: a client older than API 1.44 cannot mean StartInterval, so it is dropped."""
    check = body.get("Healthcheck")
    if version < (1, 44) and isinstance(check, dict):
        body["Healthcheck"] = {k: v for k, v in check.items() if k != "StartInterval"}


def merge(own: Any, image: Any) -> dict[str, Any] | None:
    """The container's Healthcheck over the image's: a missing or zero field inherits."""
    if not isinstance(image, dict) or not image:
        return dict(own) if isinstance(own, dict) else None
    if not isinstance(own, dict):
        return dict(image)
    merged = dict(own)
    for key in ("Test", *_DURATIONS, "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def effective(healthcheck: Any) -> HealthConfig | None:
    """The check a container runs, or None (no Healthcheck, no Test, or `NONE`)."""
    if not isinstance(healthcheck, dict):
        return None
    test = healthcheck.get("Test") or []
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    args = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else [str(a) for a in test[1:]]
    return HealthConfig(
        args=args,
        interval=int(healthcheck.get("Interval") or DEFAULT_INTERVAL_NS),
        timeout=int(healthcheck.get("Timeout") or DEFAULT_TIMEOUT_NS),
        start_period=int(healthcheck.get("StartPeriod") or 0),
        start_interval=int(healthcheck.get("StartInterval") or DEFAULT_START_INTERVAL_NS),
        retries=int(healthcheck.get("Retries") or DEFAULT_RETRIES),
    )


@dataclass
class ProbeResult:
    start: str  # RFC 3339, as Docker's HealthcheckResult
    end: str
    exit_code: int
    output: str

    def to_docker(self) -> dict[str, Any]:
        return {
            "Start": self.start,
            "End": self.end,
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


@dataclass
class Health:
    """State.Health: persisted with the record, shown by inspect and `docker ps`."""

    status: str = STARTING
    failing_streak: int = 0
    log: list[ProbeResult] = field(default_factory=list)

    def copy(self) -> Health:
        return Health(self.status, self.failing_streak, list(self.log))

    def to_docker(self) -> dict[str, Any]:
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [r.to_docker() for r in self.log],
        }

    @classmethod
    def from_record(cls, raw: Any) -> Health | None:
        """A record written before healthchecks existed (or of a container without one) has none."""
        if not isinstance(raw, dict):
            return None
        log = [
            ProbeResult(str(r["Start"]), str(r["End"]), int(r["ExitCode"]), str(r["Output"]))
            for r in raw.get("Log") or []
        ]
        return cls(str(raw.get("Status") or STARTING), int(raw.get("FailingStreak") or 0), log)

    def restart(self) -> None:
        """Every start begins again at starting, as Docker's monitor does."""
        self.status = STARTING
        self.failing_streak = 0

    def stopped(self) -> None:
        """As Docker: once its container stops, a check's status is unhealthy."""
        self.status = UNHEALTHY

    def record(self, result: ProbeResult, cfg: HealthConfig, in_start_period: bool) -> bool:
        """Apply one probe result; True if the status changed (an event is due)."""
        before = self.status
        self.log = [*self.log, result][-MAX_LOG_ENTRIES:]
        if result.exit_code == EXIT_HEALTHY:
            self.failing_streak = 0
            self.status = HEALTHY
        elif not (self.status == STARTING and in_start_period):
            self.failing_streak += 1
            if self.failing_streak >= cfg.retries:
                self.status = UNHEALTHY
        return self.status != before

    def text(self) -> str:
        """The part of `docker ps` Status in parentheses: "healthy", "health: starting"."""
        return "health: starting" if self.status == STARTING else self.status


def next_interval_ns(cfg: HealthConfig, health: Health, since_start_ns: int) -> int:
    """Docker probes at StartInterval while starting inside the start period, else Interval."""
    if since_start_ns < cfg.start_period and health.status == STARTING:
        return cfg.start_interval
    return cfg.interval


def truncate_output(raw: bytes) -> str:
    return raw[:MAX_OUTPUT_BYTES].decode(errors="replace")


def go_duration(ns: int) -> str:
    """Go's time.Duration String for the timeout message: "1s", "500ms", "1m30s", "1.5s"."""
    if ns < 1000:
        return f"{ns}ns"
    if ns < NS:
        unit, size = ("µs", 1000) if ns < 1_000_000 else ("ms", 1_000_000)
        return _trim(ns / size) + unit
    hours, rest = divmod(ns, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    text = _trim(rest / NS) + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")
