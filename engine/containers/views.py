"""Docker-shaped JSON views of a container: `docker inspect` and a `docker ps` row.

Kept apart from the record so the shapes clients parse (the SDK needs
HostConfig.LogConfig.Type, the CLI needs State.Status and Ports) are in one
place and tested without a runtime.
"""

from __future__ import annotations

from typing import Any

from engine.containers import netnames, ports
from engine.containers.model import Container
from engine.containers.status import Status
from engine.network.model import Endpoint
from engine.timefmt import parse_rfc3339


def inspect(c: Container) -> dict[str, Any]:
    args = c.spec.args
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": c.state.to_docker(),
        "Image": c.image_id,
        "ResolvConfPath": c.spec.resolv_conf_path,
        "HostnamePath": c.spec.hostname_path,
        "HostsPath": c.spec.hosts_path,
        "LogPath": c.spec.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": c.host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(c.spec.lowerdirs),
                "UpperDir": c.spec.upperdir,
                "WorkDir": c.spec.workdir,
                "MergedDir": c.spec.rootfs,
            },
        },
        "Mounts": c.mounts,
        "Config": c.config,
        "NetworkSettings": network_settings(c),
    }


def network_settings(c: Container) -> dict[str, Any]:
    """Docker's NetworkSettings: each network's endpoint, and the default bridge's
    address repeated at the top level (older clients read it there)."""
    running = c.state.status.alive
    top = c.networks.get("bridge")
    top = top if top is not None and top.ip else None
    return {
        "Bridge": "",
        "SandboxID": c.id if running else "",
        "SandboxKey": (c.spec.netns_path or f"/proc/{c.state.pid}/ns/net") if running else "",
        "Ports": ports.inspect_view(c),
        "IPAddress": top.ip if top else "",
        "IPPrefixLen": top.prefix_len if top else 0,
        "Gateway": top.gateway if top else "",
        "MacAddress": top.mac if top else "",
        "EndpointID": top.endpoint_id if top else "",
        "Networks": {name: endpoint_view(c, ep) for name, ep in list(c.networks.items())},
    }


def endpoint_view(c: Container, ep: Endpoint) -> dict[str, Any]:
    return {
        "IPAMConfig": {"IPv4Address": ep.static_ip} if ep.static_ip else None,
        "Links": ep.links or None,
        "Aliases": ep.aliases or None,
        "MacAddress": ep.mac,
        "DriverOpts": None,
        "GwPriority": 0,
        "NetworkID": ep.network_id,
        "EndpointID": ep.endpoint_id,
        "Gateway": ep.gateway,
        "IPAddress": ep.ip,
        "IPPrefixLen": ep.prefix_len,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": netnames.dns_names(c, ep) if netnames.user_defined(ep) else None,
    }


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration, as `docker ps` shows ("Up 3 minutes")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(c: Container, now: float) -> str:
    st = c.state
    if st.status in (Status.RUNNING, Status.PAUSED):
        text = f"Up {human_duration(now - parse_rfc3339(st.started_at))}"
        if st.status is Status.PAUSED:
            return text + " (Paused)"
        return f"{text} ({st.health.text()})" if st.health is not None else text
    if st.status is Status.RESTARTING:
        return (
            f"Restarting ({st.exit_code}) {human_duration(now - parse_rfc3339(st.finished_at))} ago"
        )
    if st.status is Status.EXITED:
        return f"Exited ({st.exit_code}) {human_duration(now - parse_rfc3339(st.finished_at))} ago"
    if st.status is Status.CREATED:
        return "Created"
    return str(st.status.value).capitalize()


def summary(c: Container, now: float) -> dict[str, Any]:
    args = c.spec.args
    command = " ".join(args)
    mode = str(c.host_config.get("NetworkMode") or "default")
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image_name,
        "ImageID": c.image_id,
        "Command": command,
        "Created": int(parse_rfc3339(c.created)),
        "Ports": ports.list_view(c),
        "Labels": c.labels,
        "State": c.state.status.value,
        "Status": status_text(c, now),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": network_settings(c)["Networks"]},
        "Mounts": c.mounts,
        "SizeRw": None,
    }
