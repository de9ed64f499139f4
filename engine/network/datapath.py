"""Bridges and veth pairs: the wires between a container's netns and its networks.

Each network is one Linux bridge holding the gateway address; each container
endpoint is one veth pair, the host end enslaved to the bridge, the other end
inside the container's netns as eth0, eth1, ... with its address, MAC and
(for the first network) the default route. Everything goes through rtnetlink
(`netlink.Netlink`), because this runs on every container start.

Every function either completes or leaves nothing behind: a veth whose address
or route was refused is deleted again before the error is raised. Removal is
idempotent, and refuses to delete an interface of the wrong kind, so a wrong
name can never take down the host's own devices.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

from engine.network import netns as _netns
from engine.network.netlink import Link, Netlink, check_ifname, ipv4_bytes, mac_bytes


def veth_name(container_id: str, network_id: str) -> str:
    """The host end's name: 14 characters, stable for one container on one network."""
    return "dyv" + hashlib.sha256((container_id + network_id).encode()).hexdigest()[:11]


def random_mac() -> str:
    """A locally administered unicast MAC (02:... style), as Docker gives bridges."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def ensure_bridge(name: str, gateway: str, prefix_len: int, mtu: int = 1500) -> None:
    """The bridge exists, is up, has `mtu` and holds gateway/prefix_len.

    A bridge made here gets a fixed random MAC, so it does not change address
    each time its lowest-numbered port comes or goes (neighbours' ARP caches
    would go stale). A same-named device that is not a bridge is an error.
    """
    check_ifname(name)
    ipv4_bytes(gateway)
    with Netlink() as nl:
        link = nl.link(name)
        created = False
        if link is None:
            try:
                nl.create_bridge(name, mtu, mac=random_mac())
                created = True
            except OSError as e:
                if e.errno != errno.EEXIST:  # lost a race with a concurrent ensure
                    raise
            link = nl.require_link(name)
        _require_kind(link, "bridge")
        try:
            if link.mtu != mtu:
                nl.set_link(link.index, mtu=mtu, label=name)
            nl.add_address(link.index, gateway, prefix_len, label=name)
            if not link.up:
                nl.set_link(link.index, up=True, label=name)
        except OSError:
            if created:
                nl.delete_link(name)
            raise


def remove_bridge(name: str) -> None:
    """Delete the bridge (its remaining veths are released, not deleted); gone is fine."""
    _delete_link(name, "bridge")


def attach(
    netns: Path,
    bridge: str,
    host_ifname: str,
    ifname: str,
    mac: str,
    ip: str,
    prefix_len: int,
    gateway: str | None,
    mtu: int = 0,
) -> None:
    """Wire the netns at `netns` to `bridge` with a new veth pair.

    The peer is created directly inside the netns under its final name (so it
    never collides with a host interface called eth0), with its MAC. Then,
    inside the netns: link up, the address, and a default route via `gateway`
    unless it is None (replacing any earlier default route). `mtu` 0 means the
    bridge's. `mac` "" lets the kernel pick one.

    It returns once both ends and the bridge pass traffic (see `_await_operational`),
    so the container's first packet is not lost.
    """
    check_ifname(host_ifname)
    check_ifname(ifname)
    ipv4_bytes(ip)
    if mac:
        mac_bytes(mac)
    if gateway is not None:
        ipv4_bytes(gateway)
    with Netlink() as host:
        br = host.link(bridge)
        if br is None:
            raise OSError(errno.ENODEV, f"attach {host_ifname}: no bridge named {bridge!r}")
        _require_kind(br, "bridge")
        fd = _open_netns(netns)
        try:
            host.create_veth(
                host_ifname,
                ifname,
                peer_netns_fd=fd,
                master=br.index,
                mtu=mtu or br.mtu,
                peer_mac=mac,
            )
        finally:
            os.close(fd)
        try:
            _configure_inside(netns, ifname, ip, prefix_len, gateway)
        except BaseException:
            host.delete_link(host_ifname)
            raise
        _await_operational(host, [host_ifname, bridge])


# Bounded by the first TCP SYN retransmission (1 s): waiting longer gains nothing
# over letting a lost packet be sent again.
OPERATIONAL_WAIT = 1.0


def _await_operational(nl: Netlink, names: list[str], timeout: float = OPERATIONAL_WAIT) -> None:
    """Wait until each link is operationally up, or `timeout` has passed.

    A fresh veth drops what is sent through it until the kernel's link-watch work
    has seen its carrier and activated its queue; on a busy host that can come
    after the container's first DNS query or SYN, which then costs a resolver
    timeout (5 s with glibc) or a retransmission. A link that is gone is not
    waited for; a slow one is not an error (the traffic will flow once it is up).
    """
    deadline = time.monotonic() + timeout
    for name in names:
        while time.monotonic() < deadline:
            link = nl.link(name)
            if link is None or link.operational:
                break
            time.sleep(0.002)


def _configure_inside(
    netns_path: Path, ifname: str, ip: str, prefix_len: int, gateway: str | None
) -> None:
    with _netns.entered(netns_path):
        inner = Netlink()
    with inner:
        link = inner.require_link(ifname)
        inner.set_link(link.index, up=True, label=ifname)
        inner.add_address(link.index, ip, prefix_len, label=ifname)
        if gateway is not None:
            inner.replace_default_route(link.index, gateway, label=ifname)
        _await_operational(inner, [ifname])


def detach(host_ifname: str) -> None:
    """Delete the veth pair by its host end; gone (e.g. with its netns) is fine."""
    _delete_link(host_ifname, "veth")


def link_names() -> list[str]:
    """Every interface name in the calling thread's netns."""
    with Netlink() as nl:
        return [link.name for link in nl.links()]


def ports(bridge: str) -> list[str]:
    """Names of the interfaces enslaved to `bridge` ([] when there is no such bridge)."""
    with Netlink() as nl:
        links = nl.links()
    by_name = {link.name: link for link in links}
    br = by_name.get(bridge)
    if br is None:
        return []
    return [link.name for link in links if link.master == br.index]


def _open_netns(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f"no network namespace at {path}") from None


def _delete_link(name: str, kind: str) -> None:
    """Delete `name` if it exists, refusing an interface of another kind (a name clash with
    the host's own interfaces must never delete them)."""
    with Netlink() as nl:
        link = nl.link(name)
        if link is None:
            return
        _require_kind(link, kind)
        nl.delete_link(name)


def _require_kind(link: Link, kind: str) -> None:
    if link.kind != kind:
        raise OSError(
            errno.EINVAL,
            f"{link.name} is a {link.kind or 'physical'} interface, not a {kind}; left alone",
        )
