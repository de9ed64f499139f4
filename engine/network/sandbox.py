"""One container's network sandbox: its netns, one veth per bridge network, its DNS listener.

Composed from the datapath (netns, veths), the network manager (which bridge,
which address) and the embedded DNS. It works on `Endpoint` records and a
container id only, so it knows nothing of the container store: the container
side (engine/containers/connect.py) decides when, and saves the endpoints it
fills in here.

Every step that made something is undone if a later one fails, so a start that
fails leaves no netns, no veth and no address behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import threading
from pathlib import Path
from typing import Protocol

from engine.errors import EngineError
from engine.network import datapath, netns
from engine.network.ipam import mac_for
from engine.network.model import BRIDGE, Endpoint, Network

log = logging.getLogger("engine.network")


class Networks(Protocol):
    """What the sandbox needs of the NetworkManager."""

    def get(self, ref: str) -> Network: ...
    def allocate(self, net: Network, static_ip: str = "") -> str: ...
    def release(self, net: Network, ip: str) -> None: ...


class Dns(Protocol):
    """What the sandbox needs of the EmbeddedDns."""

    def add(
        self,
        container_id: str,
        netns_path: Path,
        upstreams: list[tuple[str, int]] | None = None,
        forward: bool = True,
    ) -> None: ...
    def set_forwarding(self, container_id: str, forward: bool) -> None: ...
    def remove(self, container_id: str) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Sandbox:
    def __init__(self, networks: Networks, dns: Dns | None, exec_root: Path) -> None:
        self.networks = networks
        self.dns = dns
        self.exec_root = exec_root
        self._lock = threading.Lock()
        self._retiring: dict[str, threading.Thread] = {}  # veth name -> thread deleting it

    def netns_path(self, container_id: str) -> Path:
        return self.exec_root / "netns" / container_id[:16]

    # -- whole sandbox -----------------------------------------------------------------

    def up(
        self, container_id: str, endpoints: list[Endpoint], upstreams: list[str] | None = None
    ) -> Path:
        """Make the netns, plug every bridge endpoint in, start the DNS listener.

        The first non-internal network gets the default route; `upstreams` (the
        container's --dns servers) replace the host's for names the DNS forwards.
        Fills in each endpoint's runtime fields; on failure undoes everything."""
        path = self.netns_path(container_id)
        self._clear_leftovers(container_id, endpoints)
        try:
            netns.create(path)
        except OSError as exc:
            raise EngineError(f"cannot create the container's network namespace: {exc}") from exc
        try:
            routed = False
            for index, ep in enumerate(endpoints):
                net = self.networks.get(ep.network_id)
                if net.driver != BRIDGE:
                    continue
                route = not routed and not net.internal
                self.plug(container_id, net, ep, f"eth{index}", route)
                routed = routed or route
            if self.dns is not None:
                self._listen(container_id, path, endpoints, upstreams)
        except BaseException:
            self.down(container_id, endpoints)
            raise
        return path

    def down(self, container_id: str, endpoints: list[Endpoint]) -> None:
        """Undo `up` (idempotent, never raises): the DNS listener, the netns, then the
        veths and addresses (in the background, see `_retire`); the endpoints'
        runtime fields are cleared at once."""
        if self.dns is not None:
            with contextlib.suppress(Exception):
                self.dns.remove(container_id)
        try:
            netns.remove(self.netns_path(container_id))
        except OSError as exc:
            log.warning("could not remove the netns of %s: %s", container_id[:12], exc)
        links = []
        for ep in endpoints:
            name = ep.host_ifname or datapath.veth_name(container_id, ep.network_id)
            links.append((name, ep.network_id, ep.ip))
            ep.clear_runtime()
        self._retire(links)

    def _retire(self, links: list[tuple[str, str, str]]) -> None:
        """Deleting a veth waits for the kernel's RCU grace periods (20-50 ms here), which
        would sit on every container exit (and `docker run --rm`): a thread does it.
        Each address is given back only once its veth is gone, so no new container
        shares it with a dying one; `up` waits for a container's own veths to go
        before plugging them in again (their names are the same)."""
        if not links:
            return
        thread = threading.Thread(target=self._unplug_all, args=(links,), name="veth-retire")
        thread.daemon = True
        with self._lock:
            for name, _net_id, _ip in links:
                self._retiring[name] = thread
        thread.start()

    def _unplug_all(self, links: list[tuple[str, str, str]]) -> None:
        for name, net_id, ip in links:
            try:
                datapath.detach(name)
            except OSError as exc:
                log.warning("could not remove veth %s: %s", name, exc)
            if ip:
                with contextlib.suppress(EngineError):  # the network went away meanwhile
                    self.networks.release(self.networks.get(net_id), ip)
            with self._lock:
                if self._retiring.get(name) is threading.current_thread():
                    del self._retiring[name]

    def settle(self) -> None:
        """Wait for every veth being retired (tests, engine shutdown)."""
        with self._lock:
            threads = set(self._retiring.values())
        for thread in threads:
            thread.join()

    def _clear_leftovers(self, container_id: str, endpoints: list[Endpoint]) -> None:
        """Before `up`: what a crashed engine left (a mounted netns, addresses) is undone,
        and this container's veths being retired are waited for (a missing one costs a
        netlink round trip)."""
        if any(ep.ip for ep in endpoints) or netns.exists(self.netns_path(container_id)):
            self.down(container_id, endpoints)
        names = [datapath.veth_name(container_id, ep.network_id) for ep in endpoints]
        with self._lock:
            threads = {self._retiring[n] for n in names if n in self._retiring}
        for thread in threads:
            thread.join()
        for name in names:
            try:
                datapath.detach(name)
            except OSError as exc:
                log.warning("could not remove veth %s: %s", name, exc)

    def restore(
        self, container_id: str, endpoints: list[Endpoint], upstreams: list[str] | None = None
    ) -> None:
        """After an engine restart, for a container still running: its veths and
        addresses are intact (the netns is mounted), only the DNS listener died with
        the old engine."""
        path = self.netns_path(container_id)
        if self.dns is not None and netns.exists(path):
            self._listen(container_id, path, endpoints, upstreams)

    def _listen(
        self, container_id: str, path: Path, endpoints: list[Endpoint], upstreams: list[str] | None
    ) -> None:
        assert self.dns is not None
        servers = [(s, 53) for s in upstreams or []] or None
        self.dns.add(container_id, path, servers, self.has_way_out(endpoints))

    def has_way_out(self, endpoints: list[Endpoint]) -> bool:
        """Whether the embedded DNS may forward for the container: not when all its
        networks are internal (queries relayed from the engine's netns would leave
        where the container cannot)."""
        for ep in endpoints:
            with contextlib.suppress(EngineError):
                if not self.networks.get(ep.network_id).internal:
                    return True
        return False

    def update_forwarding(self, container_id: str, endpoints: list[Endpoint]) -> None:
        """After a connect or disconnect changed the container's networks."""
        if self.dns is not None:
            self.dns.set_forwarding(container_id, self.has_way_out(endpoints))

    # -- one endpoint ------------------------------------------------------------------

    def plug(self, container_id: str, net: Network, ep: Endpoint, ifname: str, route: bool) -> None:
        """Address the endpoint and plug a veth for it into the container's netns."""
        ip = self.networks.allocate(net, ep.static_ip)
        prefix = ipaddress.IPv4Network(net.subnet, strict=False).prefixlen
        ep.ip, ep.prefix_len, ep.gateway, ep.mac = ip, prefix, net.gateway, mac_for(ip)
        ep.host_ifname, ep.ifname = datapath.veth_name(container_id, net.id), ifname
        ep.endpoint_id = secrets.token_hex(32)
        try:
            datapath.attach(
                self.netns_path(container_id),
                net.bridge,
                ep.host_ifname,
                ifname,
                ep.mac,
                ip,
                prefix,
                net.gateway if route and net.gateway else None,
            )
        except BaseException as exc:
            self.unplug(container_id, ep)
            if isinstance(exc, OSError):
                raise EngineError(
                    f"cannot connect the container to network {net.name}: {exc}"
                ) from exc
            raise

    def unplug(self, container_id: str, ep: Endpoint) -> None:
        """Remove the endpoint's veth and give its address back (idempotent)."""
        name = ep.host_ifname or datapath.veth_name(container_id, ep.network_id)
        try:
            datapath.detach(name)
        except OSError as exc:
            log.warning("could not remove veth %s: %s", name, exc)
        if ep.ip:
            with contextlib.suppress(EngineError):  # the network went away meanwhile
                self.networks.release(self.networks.get(ep.network_id), ep.ip)
        ep.clear_runtime()

    def next_ifname(self, endpoints: list[Endpoint]) -> str:
        used = {ep.ifname for ep in endpoints}
        return next(f"eth{i}" for i in range(len(endpoints) + 1) if f"eth{i}" not in used)
