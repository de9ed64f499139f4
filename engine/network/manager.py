"""The engine's networks: the built-in `bridge`, `host` and `none`, and user-defined bridges.

The manager owns the network records (through the store), each network's
address pool and the bridge devices and firewall rules that make a network
real. The container side tells it who is attached through the `attached`
hook, so the container records stay the one source of truth for endpoints.

Engines on one host pick default subnets one at a time (a host-wide lock
held from reading the routes to bringing the bridge up), so two engines
starting together never choose the same pool.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Protocol

from engine.errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from engine.events import EventBus
from engine.network import firewall, ipam
from engine.network.model import BRIDGE, HOST, NULL, Endpoint, Network
from engine.network.store import NetworkStore
from engine.timefmt import now_rfc3339

log = logging.getLogger("engine.network")

DEFAULT_BRIDGE = "dockyard0"
PREDEFINED = {"bridge": BRIDGE, "host": HOST, "none": NULL}
RESERVED_NAMES = (*PREDEFINED, "default")  # "default" means the bridge in NetworkMode
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
MTU_OPT = "com.docker.network.driver.mtu"
DEFAULT_MTU = 1500
HOST_LOCK = Path("/run/dockyard/.subnets.lock")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_IFNAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,15}$")

Attached = Callable[[str], dict[str, tuple[str, Endpoint]]]


class Devices(Protocol):
    """Bridge devices; engine.network.datapath is the real one."""

    def ensure_bridge(self, name: str, gateway: str, prefix_len: int, mtu: int = 1500) -> None: ...

    def remove_bridge(self, name: str) -> None: ...

    def link_names(self) -> list[str]: ...


class Rules(Protocol):
    """This engine's firewall rules for its bridge networks, replaced as a whole."""

    def apply(self, nets: list[Network]) -> None: ...

    def clear(self) -> None: ...


def bridge_device(net_id: str) -> str:
    """A user network's bridge: `dy-` and 12 hex of its id (15 chars, the kernel's limit)."""
    return "dy-" + net_id[:12]


def firewall_table(bridge: str) -> str:
    """`dockyard` for the default bridge name, else one table per engine bridge."""
    if bridge == DEFAULT_BRIDGE:
        return "dockyard"
    return "dockyard_" + re.sub(r"[^A-Za-z0-9_]", "_", bridge)


@contextlib.contextmanager
def host_lock(path: Path = HOST_LOCK) -> Iterator[None]:
    """Serialise subnet choices of every engine on this host (best effort: no /run, no lock)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = open(path, "a")  # noqa: SIM115 - held for the block, closed below
    except OSError as exc:
        log.debug("no host-wide subnet lock (%s); choosing without it", exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fd.close()


class NetworkManager:
    def __init__(
        self,
        root: Path,
        events: EventBus,
        devices: Devices,
        rules: Rules,
        bridge: str = DEFAULT_BRIDGE,
        bip: str = "",
        host_ip: str = "127.0.0.1",
    ) -> None:
        _check_engine_options(bridge, host_ip)
        self.store = NetworkStore(root)
        self.events = events
        self.devices = devices
        self.rules = rules
        self.bridge_name = bridge
        self.bip = ipam.bip_layout(bip) if bip else None
        self.host_ip = host_ip
        self.attached: Attached = lambda _net_id: {}
        self._lock = threading.RLock()
        self._nets = {n.id: n for n in self.store.load() if _usable(n)}
        self._pools: dict[str, ipam.Pool] = {}
        self._ensure_predefined()

    # -- lookups ------------------------------------------------------------------------
    def get(self, ref: str) -> Network:
        """By full id, then name, then unique id prefix, as Docker resolves a network."""
        with self._lock:
            if ref in self._nets:
                return self._nets[ref]
            for net in self._nets.values():
                if net.name == ref:
                    return net
            found = [n for n in self._nets.values() if ref and n.id.startswith(ref.lower())]
        if len(found) > 1:
            raise InvalidParameter(
                f"network {ref} is ambiguous ({len(found)} matches found based on ID prefix); "
                "give more of the id, or the name"
            )
        if not found:
            raise NotFound(f"network {ref} not found")
        return found[0]

    def default_bridge(self) -> Network:
        return self.get("bridge")

    # -- built-ins ----------------------------------------------------------------------
    def _ensure_predefined(self) -> None:
        """bridge, host and none exist from the first start on, with ids that stay."""
        names = {n.name for n in self._nets.values() if n.builtin}
        for name, driver in PREDEFINED.items():
            if name not in names:
                net = Network(secrets.token_hex(32), name, driver, now_rfc3339(), builtin=True)
                self._nets[net.id] = net
                self.store.save(net)

    def _bridge_layout(self, routes: list[ipam.Route]) -> ipam.Layout:
        """--bip if given; else the subnet used before, unless a foreign route now covers
        it; else the first free default pool."""
        net = self.default_bridge()
        if self.bip is not None:
            ours = [n for n in self._nets.values() if n.subnet and n.id != net.id]
            clash = [n.name for n in ours if self.bip.subnet.overlaps(IPv4Network(n.subnet))]
            if clash:
                raise Forbidden(
                    f"--bip {self.bip.subnet} overlaps network {clash[0]}; choose another --bip"
                )
            return self.bip
        taken = self._taken(routes, exclude=net.id)
        if net.subnet and net.gateway:
            current = ipam.layout(net.subnet, "", net.gateway)
            if not any(current.subnet.overlaps(t) for t in taken):
                return current
        return ipam.layout(str(ipam.first_free(taken)))

    def _configure_default_bridge(self, routes: list[ipam.Route]) -> Network:
        net = self.default_bridge()
        lay = self._bridge_layout(routes)
        net.bridge = self.bridge_name
        net.subnet, net.gateway = str(lay.subnet), str(lay.gateway)
        net.options = {
            "com.docker.network.bridge.default_bridge": "true",
            BRIDGE_NAME_OPT: self.bridge_name,
            "com.docker.network.bridge.host_binding_ipv4": self.host_ip,
            MTU_OPT: str(DEFAULT_MTU),
        }
        self.store.save(net)
        self._pools.pop(net.id, None)
        return net

    # -- the host side ------------------------------------------------------------------
    def _our_devices(self) -> set[str]:
        return {n.bridge for n in self._nets.values() if n.bridge} | {self.bridge_name}

    def _taken(self, routes: list[ipam.Route], exclude: str = "") -> list[IPv4Network]:
        """Subnets already used: our other networks' and the host's routes on foreign devices."""
        ours = self._our_devices()
        taken = [
            ipam.parse_subnet(n.subnet) for n in self._nets.values() if n.subnet and n.id != exclude
        ]
        return taken + [r.subnet for r in routes if r.device not in ours]

    def _bridges(self) -> list[Network]:
        return [n for n in self._nets.values() if n.driver == BRIDGE and n.bridge and n.subnet]

    def _bring_up(self, net: Network) -> None:
        prefix = IPv4Network(net.subnet).prefixlen
        self.devices.ensure_bridge(net.bridge, net.gateway, prefix, _mtu(net.options))

    def setup(self) -> None:
        """At engine start: every bridge network's device, then this engine's firewall rules."""
        with self._lock, host_lock():
            self._configure_default_bridge(ipam.host_routes())
            for net in self._bridges():
                try:
                    self._bring_up(net)
                except (OSError, EngineError) as exc:
                    if net.builtin:
                        raise EngineError(f"cannot set up bridge {net.bridge}: {exc}") from exc
                    log.error("network %s: cannot set up bridge %s: %s", net.name, net.bridge, exc)
            try:
                self.rules.apply(self._bridges())
            except OSError as exc:
                raise EngineError(f"cannot set up the firewall rules: {exc}") from exc

    def shutdown(self) -> None:
        """At engine stop: bridges and rules of networks no running container uses go."""
        with self._lock:
            kept = [n for n in self._bridges() if self._running(n)]
            for net in self._bridges():
                if net not in kept:
                    with contextlib.suppress(OSError, EngineError):
                        self.devices.remove_bridge(net.bridge)
            try:
                if kept:
                    self.rules.apply(kept)
                else:
                    self.rules.clear()
            except OSError as exc:
                log.error("cannot update the firewall rules at stop: %s", exc)

    def _running(self, net: Network) -> bool:
        return any(ep.ip for _name, ep in self.attached(net.id).values())

    def endpoints(self, net: Network) -> dict[str, tuple[str, Endpoint]]:
        """Containers with a live endpoint on `net` (an address given at start)."""
        return {cid: (n, ep) for cid, (n, ep) in self.attached(net.id).items() if ep.ip}

    # -- create and remove --------------------------------------------------------------
    def create(
        self,
        name: str,
        subnet: str = "",
        ip_range: str = "",
        gateway: str = "",
        internal: bool = False,
        attachable: bool = False,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> Network:
        _check_name(name)
        opts = dict(options or {})
        _mtu(opts)
        with self._lock, host_lock():
            self._check_unique(name)
            net_id = self._new_id()
            device = self._device_for(net_id, opts)
            routes = ipam.host_routes()
            if subnet:
                lay = ipam.layout(subnet, ip_range, gateway)
                self._check_overlap(lay.subnet, routes)
            elif ip_range or gateway:
                raise InvalidParameter("ip-range and gateway need a subnet: add --subnet")
            else:
                lay = ipam.layout(str(ipam.first_free(self._taken(routes))))
            net = Network(
                net_id,
                name,
                BRIDGE,
                now_rfc3339(),
                bridge=device,
                subnet=str(lay.subnet),
                gateway=str(lay.gateway),
                ip_range=str(lay.ip_range or ""),
                internal=internal,
                attachable=attachable,
                labels=dict(labels or {}),
                options=opts,
            )
            try:
                self._bring_up(net)
                self.store.save(net)
                self._nets[net.id] = net
                self.rules.apply(self._bridges())
            except BaseException as exc:
                self._nets.pop(net.id, None)
                self.store.delete(net.id)
                with contextlib.suppress(OSError, EngineError):
                    self.devices.remove_bridge(device)
                if isinstance(exc, OSError):
                    raise EngineError(f"cannot set up network {name}: {exc}") from exc
                raise
        self.events.publish("network", "create", net.id, {"name": name, "type": BRIDGE})
        return net

    def _new_id(self) -> str:
        while True:
            net_id = secrets.token_hex(32)
            if not any(n.id[:12] == net_id[:12] for n in self._nets.values()):
                return net_id

    def _check_unique(self, name: str) -> None:
        if name in RESERVED_NAMES:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if any(n.name == name for n in self._nets.values()):
            raise Conflict(f"network with name {name} already exists")

    def _device_for(self, net_id: str, opts: dict[str, str]) -> str:
        device = opts.get(BRIDGE_NAME_OPT) or bridge_device(net_id)
        if not _IFNAME_RE.match(device):
            raise InvalidParameter(
                f"invalid {BRIDGE_NAME_OPT} {device!r}: an interface name of 1 to 15 letters, "
                "digits, '_', '.' or '-'"
            )
        if device in self._our_devices() or device in self.devices.link_names():
            raise Conflict(
                f"bridge device {device} already exists on this host; choose another "
                f"{BRIDGE_NAME_OPT} or leave it out"
            )
        return device

    def _check_overlap(self, subnet: IPv4Network, routes: list[ipam.Route]) -> None:
        ours = [
            (f"network {n.name}", ipam.parse_subnet(n.subnet))
            for n in self._nets.values()
            if n.subnet
        ]
        devices = self._our_devices()
        host = [
            (f"the host's route on {r.device}", r.subnet) for r in routes if r.device not in devices
        ]
        hit = ipam.overlapping(subnet, [*ours, *host])
        if hit is not None:
            owner, other = hit
            raise Forbidden(
                f"invalid pool request: Pool overlaps with other one on this address space: "
                f"{subnet} overlaps {other} of {owner}; choose another --subnet"
            )

    def remove(self, net: Network) -> None:
        if net.builtin:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        with self._lock:
            users = self.attached(net.id)
            if users:
                named = ", ".join(
                    f'(name:"{n}" id:"{cid[:12]}")' for cid, (n, _ep) in users.items()
                )
                raise Forbidden(
                    f"error while removing network: network {net.name} id {net.id} has active "
                    f"endpoints {named}; stop or disconnect them first"
                )
            with contextlib.suppress(OSError, EngineError):
                self.devices.remove_bridge(net.bridge)
            self.store.delete(net.id)
            self._nets.pop(net.id, None)
            self._pools.pop(net.id, None)
            try:
                self.rules.apply(self._bridges())
            except OSError as exc:  # the network is gone; only its stale rules may remain
                log.error(
                    "network %s removed, but the firewall rules were not updated: %s", net.name, exc
                )
        self.events.publish("network", "destroy", net.id, {"name": net.name, "type": net.driver})

    def prune(self, match: Callable[[Network], bool]) -> list[str]:
        """Remove user networks no container uses that `match` accepts; their names."""
        removed = []
        for net in self.list():
            if net.builtin or self.attached(net.id) or not match(net):
                continue
            with contextlib.suppress(NotFound, Forbidden):
                self.remove(net)
                removed.append(net.name)
        return removed

    # -- addresses ----------------------------------------------------------------------
    def _pool(self, net: Network) -> ipam.Pool:
        """The network's pool, made on first use from the addresses recorded endpoints hold:
        the container records are the truth, so no allocation state is saved here."""
        if not net.subnet:
            raise InvalidParameter(f"network {net.name} has no addresses to give ({net.driver})")
        pool = self._pools.get(net.id)
        if pool is None:
            pool = ipam.Pool(net.name, ipam.layout(net.subnet, net.ip_range, net.gateway))
            for _name, ep in self.attached(net.id).values():
                if ep.ip:  # held by a container that outlived an engine restart
                    pool.reserve(ep.ip)
            self._pools[net.id] = pool
        return pool

    def allocate(self, net: Network, static_ip: str = "") -> str:
        """A free address on `net`, or `static_ip` (IPAMConfig.IPv4Address) once checked."""
        if static_ip and net.builtin:
            raise InvalidParameter(
                "user specified IP address is supported on user defined networks only; "
                "create a network with --subnet and connect to it"
            )
        with self._lock:
            return self._pool(net).allocate(static_ip)

    def reserve(self, net: Network, ip: str) -> None:
        """An address a container still holds across an engine restart (never refused)."""
        with self._lock:
            self._pool(net).reserve(ip)

    def release(self, net: Network, ip: str) -> None:
        with self._lock:
            if net.id in self._pools and ip:
                self._pools[net.id].release(ip)

    # last in the class body: the method's name would shadow the builtin in annotations
    def list(self) -> list[Network]:
        with self._lock:
            return sorted(self._nets.values(), key=lambda n: n.name)


class FirewallRules:
    """The engine's firewall backend (nft, else iptables, else none) as the manager's Rules."""

    def __init__(self, table: str) -> None:
        self.backend = firewall.detect(table)

    def apply(self, nets: list[Network]) -> None:
        self.backend.apply([firewall.FirewallNet(n.bridge, n.subnet, n.internal) for n in nets])

    def clear(self) -> None:
        self.backend.clear()


def _usable(net: Network) -> bool:
    """A record whose addresses make sense; a hand-edited one that does not is skipped."""
    try:
        if net.subnet:
            ipam.layout(net.subnet, net.ip_range, net.gateway)
    except InvalidParameter as exc:
        log.error("skipping network %s (%s): %s", net.name, net.id, exc.message)
        return False
    return True


def _check_engine_options(bridge: str, host_ip: str) -> None:
    if not _IFNAME_RE.match(bridge):
        raise InvalidParameter(
            f"invalid --bridge {bridge!r}: an interface name of 1 to 15 letters, digits, "
            "'_', '.' or '-'"
        )
    ipam.parse_address(host_ip, "--ip")


def _check_name(name: str) -> None:
    if not name:
        raise InvalidParameter("network name is empty: give the network a name")
    if not _NAME_RE.match(name):
        raise InvalidParameter(
            f'invalid network name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'
        )


def _mtu(options: dict[str, str]) -> int:
    text = options.get(MTU_OPT, "")
    if not text:
        return DEFAULT_MTU
    if not text.isdigit() or not 68 <= int(text) <= 65535:
        raise InvalidParameter(f"invalid {MTU_OPT} {text!r}: give a number from 68 to 65535")
    return int(text)
