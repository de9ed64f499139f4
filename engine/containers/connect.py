"""A container's life on its networks: sandbox up at start, down at exit, and the
`docker network connect` / `disconnect` verbs.

The container record is the source of truth (`Container.networks`); the sandbox
(engine/network/sandbox.py) does the plumbing and fills in each endpoint's
runtime half, which is saved with the record and cleared again when the
container stops, as Docker shows it. Callers hold the container's lock.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from engine.containers import hostfiles, netconfig, netnames
from engine.containers.model import Container
from engine.errors import Conflict, Forbidden, InvalidParameter, NotFound
from engine.network import portmap
from engine.network.model import BRIDGE, Endpoint, Network

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

NON_BRIDGE = ("host", "none")
log = logging.getLogger("engine.containers")


def plan(
    m: ContainerManager, body: dict[str, Any], host_config: dict[str, Any]
) -> dict[str, Endpoint]:
    """Create time: the checked endpoints (nothing is made yet)."""
    if m.networks is None:
        return {}
    return netconfig.endpoints(body, host_config, m.networks, m.store.get)


def up(m: ContainerManager, c: Container) -> None:
    """Before the shim starts: prepare the netns the container's init will join."""
    c.spec.netns_path = ""
    target = netconfig.joined_container(c.host_config)
    if target:
        _join(m, c, target)
        return
    if m.sandbox is None or m.networks is None or netconfig.mode_of(c.host_config) == "host":
        return
    if not c.networks:  # a record from before networking
        c.networks = plan(m, {}, c.host_config)
    if all(name in NON_BRIDGE for name in c.networks):
        for ep in c.networks.values():
            ep.endpoint_id = secrets.token_hex(32)
        return
    _check_networks(m, c)
    _check_links(m, c)
    path = m.sandbox.up(c.id, list(c.networks.values()), _dns_servers(c))
    c.spec.netns_path = str(path)
    try:
        write_files(m, c)
    except BaseException:
        m.sandbox.down(c.id, list(c.networks.values()))
        c.spec.netns_path = ""
        raise
    for ep in c.networks.values():
        _event(m, c, ep, "connect")


def down(m: ContainerManager, c: Container) -> bool:
    """After the container's process ended (or failed to start): undo `up`.
    Returns whether there was anything to undo (the record then needs saving)."""
    c.spec.netns_path = ""
    if m.sandbox is None or netconfig.joined_container(c.host_config):
        return False
    eps = list(c.networks.values())
    plugged = [ep for ep in eps if ep.ip]
    if not plugged and not m.sandbox.netns_path(c.id).exists():
        changed = any(ep.endpoint_id for ep in eps)
        for ep in eps:
            ep.clear_runtime()
        return changed
    m.sandbox.down(c.id, eps)
    for ep in plugged:
        _event(m, c, ep, "disconnect")
    return True


def restore(m: ContainerManager, c: Container) -> None:
    """Engine restart, container still running: only the DNS listener needs remaking."""
    if (
        m.sandbox is not None
        and c.spec.netns_path
        and not netconfig.joined_container(c.host_config)
    ):
        m.sandbox.restore(c.id, list(c.networks.values()), _dns_servers(c))


def sweep(m: ContainerManager) -> None:
    """At engine start, after recovery: netns files no running container owns (an
    engine that died while removing one) are unmounted and deleted."""
    if m.sandbox is None:
        return
    live = {c.spec.netns_path for c in m.store.all() if c.state.status.alive}
    for path in sorted((m.exec_root / "netns").glob("*")):
        if str(path) not in live:
            log.info("removing the stale network namespace %s", path)
            m.sandbox.down(path.name, [])


def write_files(m: ContainerManager, c: Container) -> None:
    own = [ep.ip for ep in c.networks.values() if ep.ip]
    links = netnames.link_hosts(c, m.store.get)
    hostfiles.write_network_files(c.spec, c.host_config, own, links, embedded_dns=True)


# -- the verbs ------------------------------------------------------------------------


def connect(
    m: ContainerManager, c: Container, net: Network, endpoint_config: dict[str, Any]
) -> None:
    """`docker network connect`: hot-plug into a running container, or just record it."""
    with c.lock:
        _check_connectable(c, net)
        ep = netconfig.endpoint(net, endpoint_config or {})
        running = c.state.status.alive and bool(c.spec.netns_path)
        if running and m.sandbox is not None:
            eps = list(c.networks.values())
            # The default route comes with the first network that has a way out.
            routed = m.sandbox.has_way_out([e for e in eps if e.ip])
            m.sandbox.plug(
                c.id, net, ep, m.sandbox.next_ifname(eps), not routed and not net.internal
            )
        c.networks[net.name] = ep
        if running and m.sandbox is not None:
            write_files(m, c)
            m.sandbox.update_forwarding(c.id, list(c.networks.values()))
        m.store.save(c)
    if ep.endpoint_id:
        _event(m, c, ep, "connect")


def disconnect(m: ContainerManager, c: Container, net: Network, force: bool) -> None:
    """`docker network disconnect`: unplug from a running container, or just forget it."""
    with c.lock:
        name = next((k for k, e in c.networks.items() if e.network_id == net.id), "")
        if not name:
            if force:
                return
            raise Conflict(
                f"container {c.name} is not connected to network {net.name}: "
                "`docker inspect` lists its networks"
            )
        if net.driver == "host" and c.state.status.alive:
            raise InvalidParameter(netconfig.HOST_NETWORK)
        ep = c.networks.pop(name)
        plugged = bool(ep.ip)
        if m.sandbox is not None and plugged:
            m.sandbox.unplug(c.id, ep)
        if c.state.status.alive and c.spec.netns_path and m.sandbox is not None:
            write_files(m, c)
            m.sandbox.update_forwarding(c.id, list(c.networks.values()))
        m.store.save(c)
    if plugged:
        _event(m, c, Endpoint(net.id, net.name), "disconnect")


# -- helpers --------------------------------------------------------------------------


def _check_connectable(c: Container, net: Network) -> None:
    mode = netconfig.mode_of(c.host_config)
    if netconfig.joined_container(c.host_config):
        raise InvalidParameter(netconfig.SHARED_NETWORK)
    if mode == "host" or net.driver == "host":
        raise InvalidParameter(netconfig.HOST_NETWORK)
    if mode == "none" or net.driver == "null":
        raise InvalidParameter(netconfig.NO_NETWORK)
    if net.name in c.networks or any(e.network_id == net.id for e in c.networks.values()):
        raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")


def _check_networks(m: ContainerManager, c: Container) -> None:
    """A network removed after the container was created is named, with a way out."""
    assert m.networks is not None
    for ep in c.networks.values():
        try:
            m.networks.get(ep.network_id)
        except NotFound:
            raise NotFound(
                f"network {ep.network_name} not found: it was removed after container "
                f"{c.name} was created; create it again or recreate the container"
            ) from None


def _check_links(m: ContainerManager, c: Container) -> None:
    """Docker refuses to start a container whose `--link` target is not running."""
    ep = c.networks.get("bridge")
    for link in ep.links if ep else []:
        target, _, alias = link.partition(":")
        other = m.store.get(target)
        if not other.state.status.alive:
            raise Conflict(
                f"cannot link to a non running container: /{other.name} AS /{c.name}/{alias}: "
                f"start {other.name} first"
            )
        if "bridge" not in other.networks:
            raise InvalidParameter(
                f"cannot link to /{other.name}, as it does not belong to the default network: "
                "links work on the default bridge only; on a user-defined network use "
                "its name or an alias"
            )


def _join(m: ContainerManager, c: Container, target: str) -> None:
    """`container:<name|id>`: share the other container's netns, hosts and resolv.conf."""
    other = m.store.get(target)
    if other.id == c.id:
        raise InvalidParameter("cannot join own network")
    if not other.state.status.alive or not other.state.pid:
        raise Conflict(f"cannot join network of a non running container: {target}")
    c.spec.netns_path = other.spec.netns_path or f"/proc/{other.state.pid}/ns/net"
    c.spec.hosts_path = other.spec.hosts_path
    c.spec.resolv_conf_path = other.spec.resolv_conf_path


def _dns_servers(c: Container) -> list[str]:
    return [str(s) for s in c.host_config.get("Dns") or []]


def _event(m: ContainerManager, c: Container, ep: Endpoint, action: str) -> None:
    attrs = {"container": c.id, "name": ep.network_name, "type": BRIDGE}
    if c.spec.ports:
        attrs["ports"] = portmap.describe(c.spec.ports)
    m.events.publish("network", action, ep.network_id, attrs)
