"""Pure planning: start order, the config hash, and the Engine API create body of a service.

Pure so it is unit-tested exhaustively; `up` does the effects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from app.compose import labels
from app.compose.errors import ComposeError
from app.compose.model import Project, duration_ns


def order(project: Project, selected: Iterable[str] = ()) -> list[str]:
    """Services in dependency order (dependencies first, else file order); `selected`
    plus everything they depend on, or all services when empty. A cycle is an error."""
    wanted = list(selected) or list(project.services)
    for name in wanted:
        if name not in project.services:
            known = ", ".join(project.services)
            raise ComposeError(f"no such service: {name} (services: {known})")
    out: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise ComposeError(f"dependency cycle between services: {cycle}")
        visiting.append(name)
        for dep in project.services[name].get("depends_on", {}):
            visit(dep)
        visiting.pop()
        out.append(name)

    for name in wanted:
        visit(name)
    return out


def config_hash(service: dict[str, Any]) -> str:
    """sha256 of the service's normalized config, minus what does not shape the container
    (dependencies and build), like compose v2's config-hash label."""
    relevant = {k: v for k, v in service.items() if k not in ("depends_on", "build", "scale")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def container_name(project: Project, service: str, number: int = 1) -> str:
    return str(
        project.services[service].get("container_name") or f"{project.name}-{service}-{number}"
    )


def network_name(project: Project, key: str) -> str:
    return str(project.networks[key]["name"])


def service_networks(project: Project, service: str) -> list[tuple[str, dict[str, Any]]]:
    """(engine network name, endpoint settings) per network, the primary one first."""
    svc = project.services[service]
    if "network_mode" in svc:
        return []
    nets = sorted(
        (svc.get("networks") or {}).items(),
        key=lambda kv: -float((kv[1] or {}).get("priority", 0)),
    )
    return [(network_name(project, key), cfg or {}) for key, cfg in nets]


def endpoint_config(
    project: Project, service: str, number: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    aliases = [service, container_name(project, service, number), *(cfg.get("aliases") or [])]
    out: dict[str, Any] = {"Aliases": list(dict.fromkeys(aliases))}
    if cfg.get("ipv4_address"):
        out["IPAMConfig"] = {"IPv4Address": cfg["ipv4_address"]}
    if cfg.get("mac_address"):
        out["MacAddress"] = cfg["mac_address"]
    return out


def create_body(
    project: Project, service: str, number: int, image_id: str, with_networks: bool = True
) -> dict[str, Any]:
    """POST /containers/create body for one container of a service."""
    svc = project.services[service]
    body: dict[str, Any] = {
        "Image": svc["image"],
        "Env": [f"{k}={v}" for k, v in svc.get("environment", {}).items()],
        "Labels": labels.container_labels(project, service, number, config_hash(svc), image_id),
        "Tty": bool(svc.get("tty", False)),
        "OpenStdin": bool(svc.get("stdin_open", False)),
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": _host_config(project, svc),
    }
    for key, api in (("command", "Cmd"), ("entrypoint", "Entrypoint")):
        if key in svc:
            body[api] = svc[key]
    for key, api in (
        ("hostname", "Hostname"),
        ("domainname", "Domainname"),
        ("user", "User"),
        ("working_dir", "WorkingDir"),
        ("stop_signal", "StopSignal"),
        ("mac_address", "MacAddress"),
    ):
        if svc.get(key):
            body[api] = str(svc[key])
    if "stop_grace_period" in svc:
        body["StopTimeout"] = duration_ns(str(svc["stop_grace_period"]), "stop_grace_period") // (
            10**9
        )
    if "healthcheck" in svc:
        body["Healthcheck"] = healthcheck(svc["healthcheck"])
    exposed: dict[str, dict[str, Any]] = {
        f"{p['target']}/{p['protocol']}": {} for p in svc.get("ports", [])
    }
    exposed.update({f"{e}/tcp" if "/" not in str(e) else str(e): {} for e in svc.get("expose", [])})
    if exposed:
        body["ExposedPorts"] = exposed
    nets = service_networks(project, service)
    if with_networks and nets:
        name, cfg = nets[0]
        body["NetworkingConfig"] = {
            "EndpointsConfig": {name: endpoint_config(project, service, number, cfg)}
        }
    return body


def healthcheck(hc: dict[str, Any]) -> dict[str, Any]:
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    if "test" in hc:
        out["Test"] = hc["test"]
    for key, api in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ):
        if key in hc:
            out[api] = duration_ns(str(hc[key]), key)
    if "retries" in hc:
        out["Retries"] = int(hc["retries"])
    return out


def _host_config(project: Project, svc: dict[str, Any]) -> dict[str, Any]:
    mounts = svc.get("volumes", [])
    # Binds, unlike Mounts, make a missing host directory: compose's create_host_path.
    binds = [
        m for m in mounts if m["type"] == "bind" and (m.get("bind") or {}).get("create_host_path")
    ]
    hc: dict[str, Any] = {
        "Mounts": [_mount(project, m) for m in mounts if m not in binds],
        "Binds": [
            f"{m['source']}:{m['target']}{':ro' if m.get('read_only') else ''}" for m in binds
        ],
    }
    restart = str(svc.get("restart", "no"))
    name, _, count = restart.partition(":")
    hc["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in svc.get("ports", []):
        bindings.setdefault(f"{p['target']}/{p['protocol']}", []).append(
            {"HostIp": p.get("host_ip", ""), "HostPort": str(p.get("published", ""))}
        )
    hc["PortBindings"] = bindings
    if "network_mode" in svc:
        hc["NetworkMode"] = str(svc["network_mode"])
    else:
        nets = service_networks(project, _service_key(project, svc))
        hc["NetworkMode"] = nets[0][0] if nets else "bridge"
    for key, api in (
        ("extra_hosts", "ExtraHosts"),
        ("dns", "Dns"),
        ("dns_search", "DnsSearch"),
        ("dns_opt", "DnsOptions"),
        ("cap_add", "CapAdd"),
        ("cap_drop", "CapDrop"),
        ("security_opt", "SecurityOpt"),
    ):
        if svc.get(key):
            hc[api] = list(svc[key])
    for key, api in (
        ("privileged", "Privileged"),
        ("init", "Init"),
        ("read_only", "ReadonlyRootfs"),
    ):
        if key in svc:
            hc[api] = svc[key] in (True, "true")
    if svc.get("tmpfs"):
        hc["Tmpfs"] = {t.split(":", 1)[0]: t.partition(":")[2] for t in svc["tmpfs"]}
    if svc.get("sysctls"):
        hc["Sysctls"] = {k: str(v) for k, v in svc["sysctls"].items()}
    if svc.get("links"):
        hc["Links"] = [_link(project, link) for link in svc["links"]]
    return hc


def _service_key(project: Project, svc: dict[str, Any]) -> str:
    return next(k for k, v in project.services.items() if v is svc)


def _link(project: Project, link: str) -> str:
    service, _, alias = link.partition(":")
    target = container_name(project, service) if service in project.services else service
    return f"{target}:{alias or service}"


def _mount(project: Project, m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Type": m["type"],
        "Target": m["target"],
        "ReadOnly": bool(m.get("read_only", False)),
    }
    if m["type"] == "volume" and m.get("source"):
        out["Source"] = project.volumes[m["source"]]["name"]
        if (m.get("volume") or {}).get("nocopy"):
            out["VolumeOptions"] = {"NoCopy": True}
    elif m["type"] == "bind":
        out["Source"] = m["source"]
    elif m["type"] == "tmpfs" and m.get("tmpfs"):
        opts = m["tmpfs"]
        out["TmpfsOptions"] = {
            k: v
            for k, v in (("SizeBytes", opts.get("size")), ("Mode", opts.get("mode")))
            if v is not None
        }
    return out
