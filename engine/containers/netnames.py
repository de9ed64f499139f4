"""Which names a container's networks give each member: the embedded DNS's answers,
/etc/hosts lines for `--link`, and the lists inspect shows.

Docker's rule: on a user-defined network a container is found by its name, its
aliases on that network, its short id and its hostname, and by the link aliases
the asking container gave it; on the default bridge nothing is resolved by name
(only `--link` writes /etc/hosts lines), so queries there are forwarded.

These run on the DNS and API threads while a connect may change a record, so
each record's networks are read through a snapshot (`list(...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.containers.model import Container
from engine.network.model import Endpoint

BUILTIN_NETWORKS = ("bridge", "host", "none")


def dns_names(c: Container, ep: Endpoint) -> list[str]:
    """Docker's DNSNames, in its order, without repeats."""
    names = [c.name, *ep.aliases, c.short_id, str(c.config.get("Hostname") or "")]
    return list(dict.fromkeys(n for n in names if n))


def user_defined(ep: Endpoint) -> bool:
    return ep.network_name not in BUILTIN_NETWORKS


def resolve(
    asking: Container, qname: str, members: Iterable[Container], find: Callable[[str], Container]
) -> list[str] | None:
    """IPv4 addresses for `qname` as seen from `asking`, or None when it is not a name
    of its networks (the DNS then forwards it). "name.network" asks one network only."""
    name = qname.rstrip(".").lower()
    found: list[str] = []
    eps = [ep for ep in list(asking.networks.values()) if user_defined(ep)]
    for ep in eps:
        found += _linked(ep, name, find)
    everyone = list(members)
    for ep in eps:
        scoped = name.removesuffix("." + ep.network_name.lower())
        wanted = {name, scoped}
        for other in everyone:
            oep = other.networks.get(ep.network_name)
            if oep is None or not oep.ip or oep.network_id != ep.network_id:
                continue
            if wanted & {n.lower() for n in dns_names(other, oep)}:
                found.append(oep.ip)
    return list(dict.fromkeys(found)) or None


def reverse(asking: Container, ip: str, members: Iterable[Container]) -> str | None:
    """PTR: "name.network" of the container holding `ip` on one of the asker's user
    networks, as Docker answers; None to forward."""
    eps = [ep for ep in list(asking.networks.values()) if user_defined(ep)]
    for other in members:
        for ep in eps:
            oep = other.networks.get(ep.network_name)
            if oep is not None and oep.ip == ip and oep.network_id == ep.network_id:
                return f"{other.name}.{ep.network_name}"
    return None


def _linked(ep: Endpoint, name: str, find: Callable[[str], Container]) -> list[str]:
    """Links on a user-defined network are aliases only the linking container sees."""
    out = []
    for link in ep.links:
        target, _, alias = link.partition(":")
        if name not in (target.lower(), alias.lower()):
            continue
        try:
            oep = find(target).networks.get(ep.network_name)
        except Exception:
            continue
        if oep is not None and oep.ip:
            out.append(oep.ip)
    return out


def link_hosts(c: Container, find: Callable[[str], Container]) -> list[tuple[str, str]]:
    """(address, names) /etc/hosts lines for the default bridge's `--link`s: the alias,
    the target's hostname and its name, as Docker writes them."""
    ep = c.networks.get("bridge")
    out: list[tuple[str, str]] = []
    for link in ep.links if ep else []:
        target, _, alias = link.partition(":")
        other = find(target)
        oep = other.networks.get("bridge")
        if oep is None or not oep.ip:
            continue
        names = [alias, str(other.config.get("Hostname") or ""), other.name]
        out.append((oep.ip, " ".join(dict.fromkeys(n for n in names if n))))
    return out


def attached(containers: Iterable[Container], network_id: str) -> dict[str, tuple[str, Endpoint]]:
    """Container id -> (name, endpoint) for every running endpoint on the network
    (NetworkManager's `attached` hook: network inspect, IPAM rebuild, rm checks)."""
    out = {}
    for c in containers:
        for ep in list(c.networks.values()):
            if ep.network_id == network_id and ep.endpoint_id:
                out[c.id] = (c.name, ep)
    return out
