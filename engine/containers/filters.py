"""`docker ps --filter` semantics: values of one key OR together, keys AND together."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.containers import health
from engine.containers.model import Container
from engine.errors import InvalidParameter
from engine.timefmt import parse_rfc3339

AncestorCheck = Callable[[Container, str], bool]
Lookup = Callable[[str], Container]  # name or id -> container; raises NotFound
KEYS = {
    "status",
    "label",
    "name",
    "ancestor",
    "id",
    "exited",
    "volume",
    "network",
    "health",
    "is-task",
    "before",
    "since",
    "publish",
    "expose",
}
_STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def check_statuses(filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """Keys and value shapes were checked by the API (api/schema.filters); statuses here."""
    for status in filters.get("status", []):
        if status not in _STATUSES:
            raise InvalidParameter(
                f"invalid filter 'status={status}': use one of {', '.join(sorted(_STATUSES))}"
            )
    for value in filters.get("health", []):
        if value not in health.FILTER_VALUES:
            raise InvalidParameter(
                f"Unrecognised filter value for health: {value}: "
                f"use one of {', '.join(health.FILTER_VALUES)}"
            )
    return filters


def has_label(labels: Mapping[str, Any], spec: str) -> bool:
    """`key` or `key=value`, as Docker's label filters read them (containers, images,
    networks and volumes alike)."""
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _label(c: Container, spec: str) -> bool:
    return has_label(c.labels, spec)


def _name(c: Container, pattern: str) -> bool:
    try:
        return re.search(pattern, "/" + c.name) is not None
    except re.error:
        return pattern in c.name


def shows_all(filters: dict[str, list[str]], limit: int) -> bool:
    """Docker lists stopped containers too when a filter or a limit implies them."""
    return limit > 0 or any(filters.get(k) for k in ("status", "exited", "before", "since"))


def matcher(
    filters: dict[str, list[str]], ancestor: AncestorCheck, lookup: Lookup | None = None
) -> Callable[[Container], bool]:
    """One predicate for `docker ps --filter`; before/since need `lookup` to find their
    reference container (an unknown one is a 404, as in Docker)."""
    refs = [v for k in ("before", "since") for v in filters.get(k, [])]
    if refs and lookup is None:
        raise InvalidParameter("before/since filters need a container lookup")
    created = {v: lookup(v).created for v in refs} if lookup is not None else {}
    checks: dict[str, Callable[[Container, str], bool]] = {
        "before": lambda c, v: c.created < created[v],
        "since": lambda c, v: c.created > created[v],
        "status": lambda c, v: c.state.status.value == v,
        "label": _label,
        "name": _name,
        "id": lambda c, v: c.id.startswith(v),
        "ancestor": ancestor,
        "exited": lambda c, v: c.state.status.value == "exited" and str(c.state.exit_code) == v,
        "volume": lambda c, v: any(
            m.get("Name") == v or m.get("Destination") == v for m in c.mounts
        ),
        "health": lambda c, v: health_status(c) == v,
        "network": lambda c, v: any(
            ep.network_name == v or ep.network_id.startswith(v) for ep in list(c.networks.values())
        ),
    }

    def ok(c: Container) -> bool:
        for key, values in filters.items():
            check = checks.get(key)
            if check is None or not values:
                continue
            if key == "label":
                if not all(check(c, v) for v in values):
                    return False
            elif not any(check(c, v) for v in values):
                return False
        return True

    return ok


def health_status(c: Container) -> str:
    """What `--filter health=` matches: the last status, or "none" without a healthcheck."""
    return c.state.health.status if c.state.health is not None else health.NO_HEALTHCHECK


PRUNE_KEYS = {"label", "label!", "until"}
_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_until(text: str, now: float) -> float:
    """Docker's `until`: a Go duration ("24h", "1h30m") before now, Unix seconds, or RFC 3339."""
    value = text.strip()
    if _DURATION_RE.match(value):
        return now - sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    try:
        return float(value)
    except ValueError:
        pass
    moment = parse_rfc3339(value if "T" in value else value + "T00:00:00Z")
    if not moment:
        raise InvalidParameter(
            f"invalid until filter {text!r}: "
            "give a duration (24h), Unix seconds or an RFC 3339 time"
        )
    return moment


def prune_matcher(filters: dict[str, list[str]], now: float) -> Callable[[Container], bool]:
    """`docker container prune --filter`: label=, label!=, until= (all must hold)."""
    limits = [parse_until(v, now) for v in filters.get("until", [])]

    def ok(c: Container) -> bool:
        if not all(_label(c, v) for v in filters.get("label", [])):
            return False
        if any(_label(c, v) for v in filters.get("label!", [])):
            return False
        return all(parse_rfc3339(c.created) < limit for limit in limits)

    return ok
