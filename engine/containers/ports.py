"""A container's published ports across its life: checked at create, planned at start
(once its address is known), read back from the shim, shown while it runs.

The shim owns the listening sockets (engine/network/portproxy.py), so the
engine only decides what to bind and records what was bound: `c.spec.ports`
holds the resolved ports from start until the container ends, which is what
inspect, `docker ps`, `docker port` and recovery after an engine restart read.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.containers.model import Container
from engine.network import portmap
from engine.runtime.shim_client import ShimHandle

log = logging.getLogger("engine.containers")


def validate(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """Create time: a bad PortBindings / ExposedPorts is refused before anything is stored."""
    portmap.validate(config, host_config)


def primary_ip(c: Container) -> str:
    """The address the proxy forwards to: the first network that gave the container one."""
    for ep in c.networks.values():
        if ep.ip:
            return ep.ip
    return ""


def plan(c: Container, default_ip: str) -> None:
    """Start time, after the network sandbox is up: what the shim is to bind."""
    c.spec.ports = []
    wanted = portmap.bindings(c.config, c.host_config)
    if not wanted:
        return
    ip = primary_ip(c)
    if not ip:  # host, none, or a shared netns: Docker ignores the ports too (with a warning)
        log.warning(
            "container %s: published ports are ignored without a bridge network", c.short_id
        )
        return
    c.spec.ports = portmap.plan(c.config, c.host_config, ip, default_ip)


def record(c: Container, shim: ShimHandle) -> None:
    """After launch or recovery: the ports as bound (a port 0 becomes the one the kernel
    chose). An unreadable ports.json keeps what the record has."""
    bound = shim.ports() if c.spec.ports else []
    if bound:
        c.spec.ports = bound


def clear(c: Container) -> None:
    """The container ended: its shim, and with it every listener, is gone."""
    c.spec.ports = []


def event_attrs(c: Container) -> dict[str, str]:
    """The start event's extra `ports` attribute, present only when something is published."""
    return {"ports": portmap.describe(c.spec.ports)} if c.spec.ports else {}


def inspect_view(c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: empty while stopped, as Docker shows it."""
    if not c.state.status.alive:
        return {}
    return portmap.inspect_view(c.spec.ports, c.config)


def list_view(c: Container) -> list[dict[str, Any]]:
    """A `docker ps` row's Ports: blank while stopped, as Docker shows it."""
    if not c.state.status.alive:
        return []
    return portmap.list_view(c.spec.ports, c.config)
