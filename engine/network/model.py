"""The records networking modules share: a network, and one container's endpoint on it.

A `Network` is persisted by the network store; an `Endpoint` lives inside its
container's record, so the container record stays the single source of truth
for who is attached where (IPAM rebuilds its allocations from those records
when the engine starts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BRIDGE = "bridge"
HOST = "host"
NULL = "null"


@dataclass
class Network:
    id: str  # 64 hex chars
    name: str
    driver: str  # BRIDGE, HOST or NULL
    created: str  # RFC 3339
    bridge: str = ""  # Linux bridge device; "" for host and none
    subnet: str = ""  # "172.18.0.0/16"; "" for host and none
    gateway: str = ""  # "172.18.0.1"; the bridge's own address
    ip_range: str = ""  # addresses are handed out from here when set
    internal: bool = False  # no NAT, no route out: members reach only each other
    attachable: bool = False
    builtin: bool = False  # bridge, host and none: never removed
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Network:
        return cls(**rec)


@dataclass
class Endpoint:
    """One container's attachment to one network.

    The configured half (aliases, links, static address) is kept from create to
    removal; the runtime half (address, MAC, interfaces) is filled in at start
    and cleared when the container stops, as Docker shows it.
    """

    network_id: str
    network_name: str
    aliases: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # "name:alias"
    static_ip: str = ""  # IPAMConfig.IPv4Address
    endpoint_id: str = ""
    ip: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac: str = ""
    host_ifname: str = ""  # the veth end on the bridge
    ifname: str = ""  # eth0, eth1, ... inside the container

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Endpoint:
        return cls(**rec)

    def clear_runtime(self) -> None:
        self.endpoint_id = self.ip = self.gateway = self.mac = ""
        self.host_ifname = self.ifname = ""
        self.prefix_len = 0
