"""The project's networks and volumes on the engine: created with compose labels when
missing, checked when external, found again by labels when the project goes down."""

from __future__ import annotations

import json
from typing import Any

from app.compose import labels
from app.compose.errors import ComposeError
from app.compose.model import Project
from app.compose.output import Printer
from app.engine_client import EngineClient, EngineError, NotFound


def ensure_networks(client: EngineClient, project: Project, keys: set[str], out: Printer) -> None:
    for key in sorted(keys):
        net = project.networks[key]
        name = str(net["name"])
        try:
            client.get(f"/networks/{name}")
            continue
        except NotFound:
            if net.get("external"):
                raise ComposeError(
                    f"network {name} declared as external, but could not be found: "
                    f"create it first (docker network create {name})"
                ) from None
        out.progress("Network", name, "Creating")
        client.post("/networks/create", body=_network_body(project, key, net))
        out.progress("Network", name, "Created")


def _network_body(project: Project, key: str, net: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Name": net["name"],
        "Driver": net.get("driver", "bridge"),
        "Internal": net.get("internal") in (True, "true"),
        "Attachable": net.get("attachable") in (True, "true"),
        "Labels": labels.resource_labels(
            project.name, labels.NETWORK, key, net.get("labels") or {}
        ),
        "Options": {k: str(v) for k, v in (net.get("driver_opts") or {}).items()},
        "CheckDuplicate": True,
    }
    ipam = net.get("ipam")
    if ipam:
        body["IPAM"] = {
            "Driver": ipam.get("driver", "default"),
            "Config": [
                {
                    {
                        "subnet": "Subnet",
                        "ip_range": "IPRange",
                        "gateway": "Gateway",
                        "aux_addresses": "AuxiliaryAddresses",
                    }[k]: v
                    for k, v in c.items()
                    if not k.startswith("x-")
                }
                for c in ipam.get("config") or []
            ],
            "Options": ipam.get("options") or {},
        }
    return body


def ensure_volumes(client: EngineClient, project: Project, keys: set[str], out: Printer) -> None:
    for key in sorted(keys):
        vol = project.volumes[key]
        name = str(vol["name"])
        try:
            client.get(f"/volumes/{name}")
            continue
        except NotFound:
            if vol.get("external"):
                raise ComposeError(
                    f"external volume {name!r} not found: create it first "
                    f"(docker volume create {name})"
                ) from None
        out.progress("Volume", f'"{name}"', "Creating")
        client.post(
            "/volumes/create",
            body={
                "Name": name,
                "Driver": vol.get("driver", "local"),
                "DriverOpts": {k: str(v) for k, v in (vol.get("driver_opts") or {}).items()},
                "Labels": labels.resource_labels(
                    project.name, labels.VOLUME, key, vol.get("labels") or {}
                ),
            },
        )
        out.progress("Volume", f'"{name}"', "Created")


def used_networks(project: Project, services: list[str]) -> set[str]:
    return {k for s in services for k in project.services[s].get("networks") or {}}


def used_volumes(project: Project, services: list[str]) -> set[str]:
    return {
        str(m["source"])
        for s in services
        for m in project.services[s].get("volumes", [])
        if m["type"] == "volume" and m.get("source")
    }


def labelled(client: EngineClient, kind: str, project: str) -> list[dict[str, Any]]:
    """The project's networks (kind "networks") or volumes ("volumes"), by label."""
    filters = json.dumps({"label": [f"{labels.PROJECT}={project}"]})
    reply = client.get(f"/{kind}", {"filters": filters})
    items = reply.get("Volumes") or [] if kind == "volumes" else reply or []
    return [i for i in items if (i.get("Labels") or {}).get(labels.PROJECT) == project]


def remove_quietly(client: EngineClient, path: str) -> str | None:
    """DELETE path; a NotFound counts as done; any other refusal is returned as text."""
    try:
        client.delete(path)
    except NotFound:
        return None
    except EngineError as e:
        return e.message
    return None
