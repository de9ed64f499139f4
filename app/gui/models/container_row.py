"""One container as the containers page shows it, built from a `/containers/json` entry.

Pure data and text (no Qt), so the status, uptime and port links are plain unit tests.
The list entry's `Status` ("Up 5 minutes") is only true when it was read; the row keeps an
estimate of the start time instead, so the page can show a live uptime without asking again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
LOOPBACK_OR_ANY = {"", "0.0.0.0", "::", "127.0.0.1", "::1"}
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_UNITS.update(month=2592000, year=31536000)
_UP = re.compile(r"^Up (Less than a second|About an? (\w+)|(\d+) (\w+?)s?)\b")


@dataclass(frozen=True)
class PortLink:
    """One published port: `text` is what the table shows, `url` what a click opens."""

    text: str
    url: str
    container_port: int
    proto: str


@dataclass
class ContainerRow:
    id: str
    name: str
    image: str
    state: str  # Docker's State: created, running, paused, restarting, exited, dead
    status: str  # the engine's Status text when the row was read
    ports: list[PortLink] = field(default_factory=list)
    project: str = ""
    service: str = ""
    started_at: float | None = None  # epoch seconds, when running or paused
    cpu_percent: float | None = None
    memory_bytes: int | None = None

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    def status_text(self, now: float | None = None) -> str:
        """ "Up 5 minutes (healthy)" computed now; the engine's text for other states."""
        if self.state not in ("running", "paused") or self.started_at is None:
            return self.status
        up = human_duration((time.time() if now is None else now) - self.started_at)
        suffix = self.status[self.status.find(" (") :] if " (" in self.status else ""
        return f"Up {up}{suffix}"


def row_from_summary(doc: dict[str, Any], now: float | None = None) -> ContainerRow:
    """A row from one `/containers/json` entry."""
    labels = doc.get("Labels") or {}
    names = doc.get("Names") or []
    status = str(doc.get("Status", ""))
    return ContainerRow(
        id=str(doc["Id"]),
        name=str(names[0]).lstrip("/") if names else str(doc["Id"])[:12],
        image=str(doc.get("Image", "")),
        state=str(doc.get("State", "")),
        status=status,
        ports=port_links(doc.get("Ports") or []),
        project=str(labels.get(PROJECT_LABEL, "")),
        service=str(labels.get(SERVICE_LABEL, "")),
        started_at=started_from_status(status, time.time() if now is None else now),
    )


def port_links(ports: list[dict[str, Any]]) -> list[PortLink]:
    """Published ports as links, each host port once (IPv4 and IPv6 bindings collapse)."""
    links: dict[str, PortLink] = {}
    for p in ports:
        public = p.get("PublicPort")
        if not public:
            continue
        ip = str(p.get("IP", ""))
        host = "localhost" if ip in LOOPBACK_OR_ANY else ip
        text = f"{host}:{public}"
        proto = str(p.get("Type", "tcp"))
        url = f"http://{text}" if proto == "tcp" else ""
        links.setdefault(text, PortLink(text, url, int(p.get("PrivatePort", 0)), proto))
    return sorted(links.values(), key=lambda link: link.text)


def started_from_status(status: str, now: float) -> float | None:
    """When a container started, from "Up 5 minutes": as precise as the text is."""
    m = _UP.match(status)
    if m is None:
        return None
    if m.group(1) == "Less than a second":
        return now
    if m.group(2):
        return now - _UNITS.get(m.group(2), 0)
    return now - int(m.group(3)) * _UNITS.get(m.group(4), 0)


def human_duration(seconds: float) -> str:
    """Docker's wording ("Less than a second", "About a minute", "3 hours")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    minutes = s // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = round(s / 3600)
    if hours < 48:
        return "About an hour" if hours == 1 else f"{hours} hours"
    if hours < 24 * 14:
        return f"{hours // 24} days"
    if hours < 24 * 60:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 730:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
