"""Rows of the networks page, and the check of the create form.

`GET /networks` leaves `Containers` empty (as Docker's does), so who is attached comes from
`GET /containers/json?all=1`: each container's `NetworkSettings.Networks` names its
networks. The built-in networks (bridge, host, none) cannot be removed; their rows say so.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from app.gui.models.table import Column

BUILT_IN = frozenset({"bridge", "host", "none"})
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


@dataclass(frozen=True)
class NetworkRow:
    id: str
    name: str
    driver: str
    subnets: tuple[str, ...]
    internal: bool
    containers: tuple[str, ...]  # names of the attached containers, sorted

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN

    @property
    def short_id(self) -> str:
        return self.id[:12]


def network_rows(
    networks: list[dict[str, Any]], containers: list[dict[str, Any]]
) -> list[NetworkRow]:
    members: dict[str, list[str]] = {}
    for c in containers:
        name = str((c.get("Names") or ["/" + str(c.get("Id", ""))[:12]])[0]).lstrip("/")
        for net in (c.get("NetworkSettings") or {}).get("Networks") or {}:
            members.setdefault(str(net), []).append(name)
    rows = []
    for n in networks:
        name = str(n.get("Name", ""))
        configs = (n.get("IPAM") or {}).get("Config") or []
        rows.append(
            NetworkRow(
                id=str(n.get("Id", "")),
                name=name,
                driver=str(n.get("Driver", "")),
                subnets=tuple(str(c["Subnet"]) for c in configs if c.get("Subnet")),
                internal=bool(n.get("Internal")),
                containers=tuple(sorted(members.get(name, []))),
            )
        )
    return rows


def create_body(name: str, subnet: str, internal: bool) -> dict[str, Any]:
    """The POST /networks/create body for the form, or ValueError saying what to fix."""
    name, subnet = name.strip(), subnet.strip()
    if not name:
        raise ValueError("Give the network a name.")
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid name: use letters, digits and _ . - "
            "(starting with a letter or digit)."
        )
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in network's name: choose another.")
    body: dict[str, Any] = {"Name": name, "Driver": "bridge", "Internal": internal}
    if subnet:
        try:
            network = ipaddress.ip_network(subnet, strict=True)
        except ValueError:
            raise ValueError(
                f"{subnet!r} is not a subnet: write it as address/prefix, e.g. 10.20.0.0/24 "
                "(the address with its host bits zero)."
            ) from None
        body["IPAM"] = {"Driver": "default", "Config": [{"Subnet": str(network)}]}
    return body


COLUMNS = [
    Column("Name", lambda r: r.name),
    Column("Driver", lambda r: r.driver),
    Column("Subnet", lambda r: ", ".join(r.subnets) or "—"),
    Column("Internal", lambda r: "yes" if r.internal else "no", sort=lambda r: r.internal),
    Column(
        "Containers",
        lambda r: ", ".join(r.containers) or "—",
        sort=lambda r: (len(r.containers), r.containers),
    ),
    Column("Network ID", lambda r: r.short_id, tip=lambda r: r.id),
]
