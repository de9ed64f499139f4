"""Network routes: list, inspect, create, remove, prune, connect and disconnect.

The views here are Docker's shapes (what `docker network inspect` prints and
compose parses); the rules live in engine/network/manager.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.api import schema
from engine.api.http import Reply, Request, Router, filter_flag
from engine.containers.filters import has_label, parse_until
from engine.errors import InvalidParameter, NotFound
from engine.network.model import BRIDGE, Network
from engine.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from engine.daemon import Daemon
    from engine.network.manager import NetworkManager

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")


def view(mgr: NetworkManager, net: Network, with_containers: bool = True) -> dict[str, Any]:
    """`docker network inspect`; the list leaves Containers empty, as Docker's does."""
    config = []
    if net.subnet:
        entry = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            entry["IPRange"] = net.ip_range
        config.append(entry)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": None if net.builtin else {},
            "Config": config,
        },
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": _containers(mgr, net) if with_containers else {},
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }


def _containers(mgr: NetworkManager, net: Network) -> dict[str, Any]:
    return {
        cid: {
            "Name": name,
            "EndpointID": ep.endpoint_id,
            "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{ep.prefix_len}",
            "IPv6Address": "",
        }
        for cid, (name, ep) in mgr.endpoints(net).items()
    }


def register(router: Router, d: Daemon) -> None:
    def list_(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), LIST_FILTERS)
        match = _list_matcher(flt, lambda net: bool(d.networks.attached(net.id)))
        nets = [n for n in d.networks.list() if match(n)]
        return Reply(200, [view(d.networks, n, with_containers=False) for n in nets])

    def inspect(req: Request) -> Reply:
        net = d.networks.get(req.params["id"])
        scope = req.arg("scope")
        req.flag("verbose")  # swarm services only: a local network has nothing more to show
        if scope not in ("", "local"):
            raise NotFound(f"network {req.params['id']} not found in scope {scope}")
        return Reply(200, view(d.networks, net))

    def create(req: Request) -> Reply:
        body = req.json_object()
        schema.check_network_create(body)
        configs = (body.get("IPAM") or {}).get("Config") or [{}]
        net = d.networks.create(
            str(body.get("Name") or ""),
            subnet=str(configs[0].get("Subnet") or ""),
            ip_range=str(configs[0].get("IPRange") or ""),
            gateway=str(configs[0].get("Gateway") or ""),
            internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")),
            labels=body.get("Labels") or {},
            options=body.get("Options") or {},
        )
        return Reply(201, {"Id": net.id, "Warning": ""})

    def remove(req: Request) -> Reply:
        d.networks.remove(d.networks.get(req.params["id"]))
        return Reply(204)

    def prune(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), PRUNE_FILTERS)
        removed = d.networks.prune(_prune_matcher(flt, time.time()))
        return Reply(200, {"NetworksDeleted": removed})

    def connect(req: Request) -> Reply:
        body = req.json_object()
        schema.check_network_connect(body)
        net = d.networks.get(req.params["id"])
        c = d.containers.store.get(str(body["Container"]))
        d.containers.connect(c, net, body.get("EndpointConfig") or {})
        return Reply(200)

    def disconnect(req: Request) -> Reply:
        body = req.json_object()
        schema.check_network_connect(body)
        net = d.networks.get(req.params["id"])
        c = d.containers.store.get(str(body["Container"]))
        d.containers.disconnect(c, net, bool(body.get("Force")))
        return Reply(200)

    router.add("GET", "/networks", list_)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)


def _pattern(key: str, text: str) -> re.Pattern[str]:
    """Docker matches name and id filters as regular expressions (so `web` finds `web2`)."""
    try:
        return re.compile(text)
    except re.error:
        raise InvalidParameter(
            f"invalid filter '{key}={text}': not a regular expression; escape special characters"
        ) from None


def _list_matcher(
    flt: dict[str, list[str]], in_use: Callable[[Network], bool]
) -> Callable[[Network], bool]:
    names = [_pattern("name", v) for v in flt.get("name", [])]
    ids = [_pattern("id", v) for v in flt.get("id", [])]
    types = flt.get("type", [])
    for t in types:
        if t not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{t}': use custom or builtin")
    dangling = filter_flag(flt, "dangling", False) if "dangling" in flt else None

    def ok(net: Network) -> bool:
        checks = (
            not names or any(p.search(net.name) for p in names),
            not ids or any(p.search(net.id) for p in ids),
            not flt.get("driver") or net.driver in flt["driver"],
            all(has_label(net.labels, s) for s in flt.get("label", [])),
            not flt.get("scope") or "local" in flt["scope"],
            not types or ("builtin" if net.builtin else "custom") in types,
            dangling is None or _dangling(net, in_use) == dangling,
        )
        return all(checks)

    return ok


def _dangling(net: Network, in_use: Callable[[Network], bool]) -> bool:
    """As Docker: no container attached, and never one of the built-ins."""
    return not net.builtin and not in_use(net)


def _prune_matcher(flt: dict[str, list[str]], now: float) -> Callable[[Network], bool]:
    limits = [parse_until(v, now) for v in flt.get("until", [])]

    def ok(net: Network) -> bool:
        if net.driver != BRIDGE:
            return False
        if not all(has_label(net.labels, s) for s in flt.get("label", [])):
            return False
        if any(has_label(net.labels, s) for s in flt.get("label!", [])):
            return False
        return all(parse_rfc3339(net.created) < limit for limit in limits)

    return ok
