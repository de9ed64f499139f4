"""Address management for bridge networks: a network's subnet, a container's address.

Pure logic over `ipaddress`, plus one read of the host's routing table, so
the rules are unit-tested without root:

- A network without `--subnet` takes the first of Docker's default pools
  (172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in /20 steps) that
  overlaps neither one of our networks nor a route already on the host. A
  subnet that shadows the host's LAN (or a real Docker's docker0) would cut
  the host off from it, so those are never picked.
- The gateway is the subnet's first host address unless given.
- Container addresses come from the ip-range (or the whole subnet) in order,
  skipping the network and broadcast addresses, the gateway and addresses in
  use. The search continues after the last address handed out instead of
  restarting at the bottom, as Docker's allocator does, so an address just
  released is not handed to the next container while peers may still cache it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from pathlib import Path

from engine.errors import Conflict, Forbidden, InvalidParameter

DEFAULT_POOLS: tuple[IPv4Network, ...] = tuple(
    [IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)]
    + [IPv4Network(f"192.168.{n}.0/20") for n in range(0, 256, 16)]
)
ROUTES = Path("/proc/net/route")
SMALLEST_PREFIX = 30  # a /30 leaves one address beside the gateway; smaller leaves none


@dataclass(frozen=True)
class Route:
    subnet: IPv4Network
    device: str


def parse_routes(text: str) -> list[Route]:
    """Routes of /proc/net/route (little-endian hex), without the default route."""
    routes = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        with contextlib.suppress(ValueError):
            dest = IPv4Address(int.from_bytes(bytes.fromhex(cols[1]), "little"))
            mask = IPv4Address(int.from_bytes(bytes.fromhex(cols[7]), "little"))
            net = IPv4Network(f"{dest}/{mask}", strict=False)
            if net.prefixlen > 0:
                routes.append(Route(net, cols[0]))
    return routes


def host_routes(path: Path = ROUTES) -> list[Route]:
    try:
        return parse_routes(path.read_text())
    except OSError:
        return []


def first_free(
    taken: Iterable[IPv4Network], pools: Iterable[IPv4Network] = DEFAULT_POOLS
) -> IPv4Network:
    """The first pool overlapping nothing in `taken`."""
    busy = list(taken)
    for pool in pools:
        if not any(pool.overlaps(t) for t in busy):
            return pool
    raise Forbidden(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        "to assign to the network; give one with --subnet (or --bip for the default bridge)"
    )


def parse_subnet(text: str, what: str = "subnet") -> IPv4Network:
    """A CIDR such as 10.1.0.0/24; host bits set are refused, naming the network address."""
    try:
        loose = IPv4Network(text, strict=False)
    except (AddressValueError, NetmaskValueError, ValueError):
        raise InvalidParameter(
            f"invalid {what} {text!r}: give an IPv4 CIDR such as 10.1.0.0/24 "
            "(IPv6 is not supported)"
        ) from None
    if "/" not in text:
        raise InvalidParameter(f"invalid {what} {text!r}: give a prefix length, e.g. {text}/24")
    if str(loose) != text:
        raise InvalidParameter(f"invalid {what} {text}: it should be {loose}")
    return loose


def parse_address(text: str, what: str = "address") -> IPv4Address:
    try:
        return IPv4Address(text)
    except (AddressValueError, ValueError):
        raise InvalidParameter(
            f"invalid {what} {text!r}: give an IPv4 address such as 10.1.0.5 "
            "(IPv6 is not supported)"
        ) from None


def first_host(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


@dataclass(frozen=True)
class Layout:
    """A bridge network's addresses: checked together, as they only make sense together."""

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None


def layout(subnet: str, ip_range: str = "", gateway: str = "") -> Layout:
    """IPAM.Config[0] (Subnet, IPRange, Gateway) checked: the range and gateway lie in the
    subnet, the gateway is a host address, and the subnet leaves room for containers."""
    net = parse_subnet(subnet)
    if net.prefixlen > SMALLEST_PREFIX:
        raise InvalidParameter(
            f"invalid subnet {net}: too small for a bridge network; use /{SMALLEST_PREFIX} "
            "or a larger one"
        )
    rng = None
    if ip_range:
        rng = parse_subnet(ip_range, "ip-range")
        if not rng.subnet_of(net):
            raise InvalidParameter(f"invalid ip-range {rng}: it is not inside subnet {net}")
    gw = parse_address(gateway, "gateway") if gateway else first_host(net)
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise InvalidParameter(
            f"invalid gateway {gw}: it must be a host address inside subnet {net}"
        )
    return Layout(net, gw, rng)


def bip_layout(bip: str) -> Layout:
    """dockerd's --bip: the bridge's own address with the prefix (172.26.0.1/16)."""
    try:
        iface = IPv4Network(bip, strict=False)
        addr = IPv4Address(bip.partition("/")[0])
    except (AddressValueError, NetmaskValueError, ValueError):
        raise InvalidParameter(
            f"invalid --bip {bip!r}: give the bridge address and prefix, e.g. 172.26.0.1/16"
        ) from None
    if "/" not in bip:
        raise InvalidParameter(f"invalid --bip {bip!r}: give a prefix length, e.g. {bip}/16")
    gateway = "" if addr == iface.network_address else str(addr)
    return layout(str(iface), "", gateway)


def mac_for(ip: str) -> str:
    """02:42 and the four address bytes, as Docker derives a container's MAC from its IP."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed)


@dataclass
class Pool:
    """One network's addresses in use, and where the next search starts."""

    name: str
    layout: Layout
    in_use: set[IPv4Address] = field(default_factory=set)
    _cursor: int = 0

    def _candidates(self) -> Iterator[IPv4Address]:
        """Every address of the range once, starting after the last one handed out."""
        rng = self.layout.ip_range or self.layout.subnet
        first, size = int(rng.network_address), rng.num_addresses
        for step in range(size):
            yield IPv4Address(first + (self._cursor + step) % size)

    def _usable(self, ip: IPv4Address) -> bool:
        net = self.layout.subnet
        reserved = (net.network_address, net.broadcast_address, self.layout.gateway)
        return ip not in reserved and ip not in self.in_use

    def allocate(self, static_ip: str = "") -> str:
        if static_ip:
            return self._take_static(static_ip)
        for ip in self._candidates():
            if self._usable(ip):
                self.in_use.add(ip)
                rng = self.layout.ip_range or self.layout.subnet
                self._cursor = int(ip) - int(rng.network_address) + 1
                return str(ip)
        raise Forbidden(
            f"no available IPv4 addresses on network {self.name} "
            f"({self.layout.ip_range or self.layout.subnet}): all {len(self.in_use)} are in use; "
            "disconnect or remove a container, or create the network with a larger --subnet"
        )

    def _take_static(self, text: str) -> str:
        ip = parse_address(text, "IPv4 address")
        net = self.layout.subnet
        if ip not in net:
            raise InvalidParameter(
                f"no configured subnet contains the IP address {ip}: network {self.name} "
                f"has subnet {net}"
            )
        if ip in (net.network_address, net.broadcast_address, self.layout.gateway):
            kind = "gateway" if ip == self.layout.gateway else "network or broadcast address"
            raise InvalidParameter(
                f"address {ip} is the {kind} of network {self.name}; choose another --ip"
            )
        if ip in self.in_use:
            raise Conflict(
                f"address {ip} is already in use on network {self.name}; choose another --ip "
                "or leave it out to get a free one"
            )
        self.in_use.add(ip)
        return str(ip)

    def reserve(self, ip: str) -> None:
        """Mark an address a running container already holds (engine restart): never fails."""
        with contextlib.suppress(ValueError):
            addr = IPv4Address(ip)
            if addr in self.layout.subnet:
                self.in_use.add(addr)

    def release(self, ip: str) -> None:
        with contextlib.suppress(ValueError):
            self.in_use.discard(IPv4Address(ip))


def overlapping(
    subnet: IPv4Network, others: Iterable[tuple[str, IPv4Network]]
) -> tuple[str, IPv4Network] | None:
    """The first (owner, subnet) among `others` that overlaps `subnet`."""
    for owner, other in others:
        if subnet.overlaps(other):
            return owner, other
    return None
