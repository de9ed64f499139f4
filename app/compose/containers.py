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
