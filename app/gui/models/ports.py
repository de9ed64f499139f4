"""The machine page's port table: each published port, where it is reachable, or why not.

The hook: `PortSource`, a function of an engine client and the machine's backend name that
returns the rows. Until the port forwarder (issue 6) exists, `published_ports` is the source:
the containers' published ports from the engine's own list. With the native backend those
ports are bound on this host by each container's shim, so they are reachable as listed;
from a VM nothing forwards them yet, and each row says so. The forwarder's source will return
the same rows from its forwards, with its own failures (a port taken on the host, ...) as
the state and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.engine_client import EngineClient
from app.gui.models.table import Column

REACHABLE = "listening"
NOT_FORWARDED = "not forwarded"
NATIVE_REASON = "the engine runs on this host: the container's shim listens here"
VM_REASON = (
    "listening inside the machine only: nothing forwards ports from the VM yet "
    "(reach it from another container, or with `dockyard machine ssh`)"
)


@dataclass(frozen=True)
class PortRow:
    host: str  # address:port on the host side ("127.0.0.1:8080")
    target: str  # "web:80/tcp"
    container: str
    state: str  # REACHABLE, NOT_FORWARDED, or the forwarder's failure
    reason: str

    @property
    def key(self) -> str:
        return f"{self.host}>{self.target}"

    @property
    def ok(self) -> bool:
        return self.state == REACHABLE


PortSource = Callable[[EngineClient, str], list[PortRow]]


def published_ports(client: EngineClient, backend: str) -> list[PortRow]:
    """The source until the forwarder exists: the running containers' published ports."""
    return port_rows(client.get("/containers/json"), backend)


def port_rows(containers: list[dict[str, Any]], backend: str) -> list[PortRow]:
    native = backend == "native"
    rows = []
    for c in containers:
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        for p in c.get("Ports") or []:
            public = p.get("PublicPort")
            if not public:
                continue
            ip = str(p.get("IP") or "0.0.0.0")
            rows.append(
                PortRow(
                    host=f"{ip}:{public}",
                    target=f"{name}:{p.get('PrivatePort')}/{p.get('Type', 'tcp')}",
                    container=name,
                    state=REACHABLE if native else NOT_FORWARDED,
                    reason=NATIVE_REASON if native else VM_REASON,
                )
            )
    return sorted(set(rows), key=lambda r: (r.container, r.host))


COLUMNS = [
    Column("Host address", lambda r: r.host),
    Column("Container port", lambda r: r.target),
    Column("State", lambda r: r.state),
    Column("Why", lambda r: r.reason, tip=lambda r: r.reason),
]
