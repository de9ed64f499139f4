"""The project's containers as the engine lists them, found by label (never by name), so
tools that did not write the compose file see the same project."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.compose import labels
from app.engine_client import EngineClient


def listed(
    client: EngineClient, project: str, services: Iterable[str] = (), all_: bool = True
) -> list[dict[str, Any]]:
    """Summaries (/containers/json) of the project's containers, of `services` if given,
    sorted by service and container number."""
    wanted = set(services)
    found = client.containers(labels.project_filter(project), all_=all_)
    found = [
        c
        for c in found
        if (c.get("Labels") or {}).get(labels.PROJECT) == project
        and (not wanted or service_of(c) in wanted)
    ]
    return sorted(found, key=lambda c: (service_of(c), number_of(c), name_of(c)))


def service_of(summary: dict[str, Any]) -> str:
    return str((summary.get("Labels") or {}).get(labels.SERVICE, ""))


def number_of(summary: dict[str, Any]) -> int:
    try:
        return int((summary.get("Labels") or {}).get(labels.NUMBER, "0"))
    except ValueError:
        return 0


def name_of(summary: dict[str, Any]) -> str:
    names = summary.get("Names") or [summary.get("Id", "")[:12]]
    return str(names[0]).lstrip("/")


def by_service(summaries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in summaries:
        out.setdefault(service_of(c), []).append(c)
    return out


def stop_groups(summaries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Containers in groups to stop one group after another: a service's dependents (read
    from the depends_on label, so this works without the file) before the service itself.
    The containers of one group do not depend on each other, so they may stop together."""
    deps: dict[str, set[str]] = {}
    for c in summaries:
        raw = (c.get("Labels") or {}).get(labels.DEPENDS_ON, "")
        deps.setdefault(service_of(c), set()).update(
            d.split(":")[0] for d in str(raw).split(",") if d
        )
    depth: dict[str, int] = {}

    def level(service: str, seen: frozenset[str]) -> int:
        if service not in depth:
            above = [t for t, d in deps.items() if service in d and t not in seen]
            depth[service] = 1 + max((level(t, seen | {service}) for t in above), default=-1)
        return depth[service]

    groups: dict[int, list[dict[str, Any]]] = {}
    for c in summaries:
        groups.setdefault(level(service_of(c), frozenset()), []).append(c)
    return [groups[k] for k in sorted(groups)]
