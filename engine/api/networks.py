"""Network routes: the fixed `bridge`, `host` and `none` networks, read-only for now.

Clients (compose, the SDK) list networks before creating containers; until
user-defined networks exist, these three answer like Docker's built-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.api.http import Reply, Request, Router
from engine.errors import NotFound

if TYPE_CHECKING:
    from engine.daemon import Daemon

BUILTIN = {"bridge": "bridge", "host": "host", "none": "null"}


def _view(name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": name,
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": BUILTIN[name],
        "EnableIPv6": False,
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": {},
        "Labels": {},
    }


def register(router: Router, d: Daemon) -> None:
    def list_(req: Request) -> Reply:
        return Reply(200, [_view(n) for n in BUILTIN])

    def inspect(req: Request) -> Reply:
        name = req.params["id"]
        if name not in BUILTIN:
            raise NotFound(f"network {name} not found")
        return Reply(200, _view(name))

    router.add("GET", "/networks", list_)
    router.add("GET", "/networks/{id}", inspect)
