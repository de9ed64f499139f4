"""Published ports: Docker's PortBindings, ExposedPorts and -P turned into host sockets.

Pure functions: `validate` at create (a bad spec is refused before anything
is stored), `plan` at start (once the container's address is known), and the
views `docker inspect`, `docker ps` and `docker port` read.

A binding without a HostIp listens on the engine's `--ip` (default
127.0.0.1), not on every interface as dockerd does: nothing on this machine
listens off loopback unless the user writes so (`-p 0.0.0.0:8080:80`). A
HostPort of "" or "0" means any free port: the shim binds it and records the
port the kernel chose, so plans carry host_port 0 until then.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidParameter
from engine.runtime.spec import PublishedPort

PROTOS = ("tcp", "udp")


@dataclass(frozen=True)
class Binding:
    """One container port and where on the host it is wanted."""

    proto: str
    container_port: int
    host_ip: str  # "" = the engine's default
    host_port: int  # 0 = any free port
    host_port_end: int  # > host_port: the first free port of the range


def _port_range(text: str, what: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    try:
        low = int(start)
        high = int(end) if sep else low
    except ValueError:
        raise InvalidParameter(
            f"invalid {what}: {text}: use a port number (1-65535) or a range such as 8000-8010"
        ) from None
    if not (0 < low <= 65535 and 0 < high <= 65535) or high < low:
        raise InvalidParameter(
            f"invalid {what}: {text}: use a port number (1-65535) or a range such as 8000-8010"
        )
    return low, high


def parse_port_key(key: str) -> tuple[int, int, str]:
    """ "80/tcp", "80", "8000-8010/udp" -> (first, last, proto)."""
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"invalid containerPort: {key!r}: write it as PORT[/tcp|/udp]")
    port, _, proto = key.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOS:
        raise InvalidParameter(f"invalid proto: {proto}: use tcp or udp")
    low, high = _port_range(port, "containerPort")
    return low, high, proto


def _host_ip(value: Any) -> str:
    text = str(value or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]  # "[::1]" as the CLI may write an IPv6 address
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidParameter(
            f"invalid IP address: {text}: use an address of this host, such as 127.0.0.1"
        ) from None


def _host_ports(value: Any) -> tuple[int, int]:
    text = str(value if value is not None else "").strip()
    if text in ("", "0"):
        return 0, 0
    return _port_range(text, "hostPort")


def _bindings_for(key: str, entries: Any) -> list[Binding]:
    low, high, proto = parse_port_key(key)
    if entries is None:
        entries = []  # exposed, not published (unless -P), as dockerd reads it
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidParameter(
            f"invalid port binding for {key}: use a list of {{HostIp, HostPort}} objects"
        )
    out: list[Binding] = []
    for entry in entries:
        ip = _host_ip(entry.get("HostIp"))
        first, last = _host_ports(entry.get("HostPort"))
        count = high - low + 1
        if count == 1:
            out.append(Binding(proto, low, ip, first, last if last > first else 0))
            continue
        if first and last - first + 1 != count:
            raise InvalidParameter(
                f"invalid ranges specified for container and host Ports: {low}-{high} and "
                f"{entry.get('HostPort')}: give both ranges the same size"
            )
        for i in range(count):
            out.append(Binding(proto, low + i, ip, first + i if first else 0, 0))
    return out


def exposed(config: dict[str, Any]) -> list[tuple[int, str]]:
    """The container's exposed ports (image EXPOSE, --expose, -p), as (port, proto)."""
    ports = config.get("ExposedPorts") or {}
    if not isinstance(ports, dict):
        raise InvalidParameter('ExposedPorts must be an object such as {"80/tcp": {}}')
    out: list[tuple[int, str]] = []
    for key in ports:
        low, high, proto = parse_port_key(key)
        out += [(p, proto) for p in range(low, high + 1)]
    return sorted(set(out))


def bindings(config: dict[str, Any], host_config: dict[str, Any]) -> list[Binding]:
    """Every binding asked for: PortBindings, plus each exposed port when -P is given."""
    wanted = host_config.get("PortBindings") or {}
    if not isinstance(wanted, dict):
        raise InvalidParameter(
            'PortBindings must be an object such as {"80/tcp": [{"HostPort": "8080"}]}'
        )
    out: list[Binding] = []
    for key, entries in wanted.items():
        out += _bindings_for(key, entries)
    ports = exposed(config)
    if host_config.get("PublishAllPorts"):
        bound = {(b.container_port, b.proto) for b in out}
        out += [Binding(proto, p, "", 0, 0) for p, proto in ports if (p, proto) not in bound]
    return out


def validate(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """Refuse a bad port spec at create, before anything is stored."""
    bindings(config, host_config)


def plan(
    config: dict[str, Any], host_config: dict[str, Any], container_ip: str, default_ip: str
) -> list[PublishedPort]:
    """The host sockets to open for a container whose address is container_ip."""
    return [
        PublishedPort(
            proto=b.proto,
            host_ip=b.host_ip or default_ip,
            host_port=b.host_port,
            container_ip=container_ip,
            container_port=b.container_port,
            host_port_end=b.host_port_end,
        )
        for b in bindings(config, host_config)
    ]


def _addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def describe(ports: list[PublishedPort]) -> str:
    """ "127.0.0.1:8080->80/tcp, ..." as `docker ps` writes it (and the start event carries)."""
    return ", ".join(
        f"{_addr(p.host_ip, p.host_port)}->{p.container_port}/{p.proto}" for p in _sorted(ports)
    )


def _sorted(ports: list[PublishedPort]) -> list[PublishedPort]:
    return sorted(ports, key=lambda p: (p.container_port, p.proto, p.host_ip, p.host_port))


def inspect_view(ports: list[PublishedPort], config: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Ports: each exposed or published port; null when not published."""
    view: dict[str, Any] = {}
    for port, proto in _exposed_quietly(config):
        view[f"{port}/{proto}"] = None
    for p in _sorted(ports):
        key = f"{p.container_port}/{p.proto}"
        view[key] = (view.get(key) or []) + [{"HostIp": p.host_ip, "HostPort": str(p.host_port)}]
    return view


def list_view(ports: list[PublishedPort], config: dict[str, Any]) -> list[dict[str, Any]]:
    """A `docker ps` row's Ports: published ones with IP and PublicPort, the rest bare."""
    rows: list[dict[str, Any]] = [
        {
            "IP": p.host_ip,
            "PrivatePort": p.container_port,
            "PublicPort": p.host_port,
            "Type": p.proto,
        }
        for p in _sorted(ports)
    ]
    published = {(p.container_port, p.proto) for p in ports}
    rows += [
        {"PrivatePort": port, "Type": proto}
        for port, proto in _exposed_quietly(config)
        if (port, proto) not in published
    ]
    return rows


def _exposed_quietly(config: dict[str, Any]) -> list[tuple[int, str]]:
    """Views never fail: a record made before validation existed shows what it can."""
    try:
        return exposed(config)
    except InvalidParameter:
        return []
