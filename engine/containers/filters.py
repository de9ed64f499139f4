"""`docker ps --filter` semantics: values of one key OR together, keys AND together."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from engine.containers.model import Container
from engine.errors import InvalidParameter

AncestorCheck = Callable[[Container, str], bool]
_KEYS = {
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


def parse(raw: Any) -> dict[str, list[str]]:
    """Accept both `{"k": ["v"]}` and the old `{"k": {"v": true}}` shapes."""
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameter("filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        if key not in _KEYS:
            raise InvalidParameter(f"invalid filter '{key}'")
        out[key] = list(values.keys() if isinstance(values, dict) else values)
    for status in out.get("status", []):
        if status not in _STATUSES:
            raise InvalidParameter(f"invalid filter 'status={status}'")
    return out


def _label(c: Container, spec: str) -> bool:
    key, sep, value = spec.partition("=")
    labels = c.labels
    return key in labels and (not sep or labels[key] == value)


def _name(c: Container, pattern: str) -> bool:
    try:
        return re.search(pattern, "/" + c.name) is not None
    except re.error:
        return pattern in c.name


def matcher(filters: dict[str, list[str]], ancestor: AncestorCheck) -> Callable[[Container], bool]:
    checks: dict[str, Callable[[Container, str], bool]] = {
        "status": lambda c, v: c.state.status.value == v,
        "label": _label,
        "name": _name,
        "id": lambda c, v: c.id.startswith(v),
        "ancestor": ancestor,
        "exited": lambda c, v: c.state.status.value == "exited" and str(c.state.exit_code) == v,
        "volume": lambda c, v: any(
            m.get("Name") == v or m.get("Destination") == v for m in c.mounts
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
