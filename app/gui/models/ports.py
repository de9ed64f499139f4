"""The machine page's port table: each published port, where it is reachable, or why not.

The hook: `PortSource`, a function of an engine client and the machine's backend name that
returns the rows. `forwarded_ports` is the source: the forwarder's own record for a VM. Before
it existed, and still for a native machine, `published_ports` was:
the containers' published ports from the engine's own list. With the native backend those
ports are bound on this host by each container's shim, so they are reachable as listed;
from a VM nothing forwards them yet, and each row says so. The forwarder's source will return
the same rows from its forwards, with its own failures (a port taken on the host, ...) as
the state and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine_client import EngineClient
from app.gui.models.table import Column
from machine import filenames, portforward
from machine.portplan import LISTENING, ForwardState

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


def forwarded_ports(client: EngineClient, backend: str) -> list[PortRow]:
    """The machine's forwards as its port forwarder recorded them (machine/portforward.py
    writes them next to the engine socket it serves), with each failure's reason; the
    engine's own list while there is no record (native, or a forwarder not started yet)."""
    sock = Path(client.host.removeprefix("unix://"))
    if backend == "native" or not (sock.parent / filenames.PORTS).is_file():
        return published_ports(client, backend)
    return forward_rows(portforward.read_state(sock.parent))


def forward_rows(states: list[ForwardState]) -> list[PortRow]:
    rows = []
    for st in states:
        f = st.forward
        rows.append(
            PortRow(
                host=f"{f.host_ip}:{f.host_port}",
                target=f"{f.container}:{f.guest_port}/{f.proto}",
                container=f.container,
                state=REACHABLE if st.state == LISTENING else st.state,
                reason=st.reason or f"forwarded over {st.via} to the machine",
            )
        )
    return sorted(rows, key=lambda r: (r.container, r.host))


COLUMNS = [
    Column("Host address", lambda r: r.host),
    Column("Container port", lambda r: r.target),
    Column("State", lambda r: r.state),
    Column("Why", lambda r: r.reason, tip=lambda r: r.reason),
]
