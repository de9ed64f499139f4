"""Which host forwards a machine should have, and what to change to get there (pure).

Why pure and separate: the forwarder (machine/portforward.py) follows the guest engine's
events, but the decision "these containers publish these ports, so these host listeners
must exist, and these must go" is plain data in, data out. Keeping it free of sockets lets
it be unit-tested exhaustively, and makes a resync (at start, after an SSH reconnect or a
clock jump) the same code path as a single event: compute the desired set, diff it.

Address rules (issue 6): a forward listens on the host's 127.0.0.1, or on the address the
user asked for when that is loopback, or on every interface when the user asked for none
in particular *and* the machine config allows all interfaces (`ports.allow_all_interfaces`
in machine.yaml). "None in particular" is a wildcard (`-p 0.0.0.0:80:80`) or the guest
engine's default publish address, 10.0.2.15 (its `--ip`, machine/qemu_backend.py), which
is what a bare `-p 80:80` is listed with. Any other address the guest published on exists
only in the guest: it means nothing on the host and maps to 127.0.0.1, never widened.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from machine import qemu_argv

LOOPBACK = "127.0.0.1"
WILDCARDS = ("", "0.0.0.0", "::")
GUEST_DEFAULT_IP = qemu_argv.GUEST_IP  # the guest engine's --ip: where a bare `-p` is published
LISTENING = "listening"
FAILED = "failed"


@dataclass(frozen=True)
class Forward:
    """One published port as the host should offer it."""

    container_id: str
    container: str  # the container's name, without the leading slash
    proto: str  # "tcp" | "udp"
    host_ip: str  # where the host listens
    host_port: int
    guest_ip: str  # where the guest engine's shim listens (reached from inside the guest)
    guest_port: int  # the published port in the guest (equal to host_port)

    @property
    def key(self) -> tuple[str, str, int]:
        """Two forwards with the same key cannot both listen on the host."""
        return (self.proto, self.host_ip, self.host_port)

    def label(self) -> str:
        return f"{self.host_ip}:{self.host_port}/{self.proto}"


@dataclass(frozen=True)
class ForwardState:
    forward: Forward
    state: str  # LISTENING | FAILED
    reason: str = ""
    via: str = ""  # "ssh" | "qmp"

    def as_dict(self) -> dict[str, Any]:
        f = self.forward
        return {
            "container": f.container,
            "container_id": f.container_id,
            "proto": f.proto,
            "host_ip": f.host_ip,
            "host_port": f.host_port,
            "guest_ip": f.guest_ip,
            "guest_port": f.guest_port,
            "state": self.state,
            "reason": self.reason,
            "via": self.via,
        }

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> ForwardState:
        f = Forward(
            str(doc["container_id"]),
            str(doc["container"]),
            str(doc["proto"]),
            str(doc["host_ip"]),
            int(doc["host_port"]),
            str(doc["guest_ip"]),
            int(doc["guest_port"]),
        )
        return ForwardState(f, str(doc["state"]), str(doc.get("reason", "")), str(doc["via"]))


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def host_address(requested: str, allow_all: bool) -> str:
    """Where the host listens for a port the guest publishes on `requested`."""
    if requested in WILDCARDS or requested == GUEST_DEFAULT_IP:
        return "0.0.0.0" if allow_all else LOOPBACK
    if is_loopback(requested):
        return requested
    return LOOPBACK  # a guest address (or one this host may not have): loopback is safe


def guest_address(published: str) -> str:
    """Where to connect inside the guest: a wildcard listener answers on its loopback."""
    return LOOPBACK if published in WILDCARDS else published


def desired(containers: Iterable[Mapping[str, Any]], allow_all: bool = False) -> list[Forward]:
    """The forwards for the running containers of a `GET /containers/json` answer.

    Docker lists a wildcard publish twice (0.0.0.0 and ::); both map to one host key, so
    the result holds each key once, the first container (sorted by name) winning a key
    two containers would share (the guest lets 127.0.0.1:P and 10.0.2.15:P coexist)."""
    found: dict[tuple[str, str, int], Forward] = {}
    rows = sorted(containers, key=lambda c: (_name(c), str(c.get("Id", ""))))
    for c in rows:
        if str(c.get("State", "running")) != "running":
            continue
        for p in c.get("Ports") or []:
            public = p.get("PublicPort")
            if not public:
                continue
            ip = str(p.get("IP") or "")
            fwd = Forward(
                container_id=str(c.get("Id", "")),
                container=_name(c),
                proto=str(p.get("Type") or "tcp"),
                host_ip=host_address(ip, allow_all),
                host_port=int(public),
                guest_ip=guest_address(ip),
                guest_port=int(public),
            )
            found.setdefault(fwd.key, fwd)
    return sorted(found.values(), key=lambda f: (f.container, f.key))


def _name(c: Mapping[str, Any]) -> str:
    names = c.get("Names") or [str(c.get("Id", ""))[:12]]
    return str(names[0]).lstrip("/")


@dataclass(frozen=True)
class Plan:
    remove: list[Forward]
    add: list[Forward]


def diff(current: Iterable[Forward], wanted: Iterable[Forward]) -> Plan:
    """What to close and what to open so `current` becomes `wanted`. A forward whose
    container or target changed under the same key is closed and opened again."""
    have = {f.key: f for f in current}
    want = {f.key: f for f in wanted}
    remove = [f for k, f in have.items() if want.get(k) != f]
    add = [f for k, f in want.items() if have.get(k) != f]
    return Plan(sorted(remove, key=lambda f: f.key), sorted(add, key=lambda f: f.key))


def retry_failed(states: Iterable[ForwardState], wanted: Iterable[Forward]) -> list[Forward]:
    """Failed forwards still wanted: a resync tries them again (the port may be free now)."""
    want = set(wanted)
    return [s.forward for s in states if s.state == FAILED and s.forward in want]
