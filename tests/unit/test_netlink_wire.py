"""engine/network/netlink.py's encoding: attributes, names, addresses (no socket)."""

from __future__ import annotations

import errno
import struct

import pytest

from engine.network import netlink
from engine.network.datapath import random_mac, veth_name


def test_attributes_pad_to_four_and_parse_back() -> None:
    raw = netlink.attr_str(netlink.IFLA_IFNAME, "eth0") + netlink.attr_u32(netlink.IFLA_MTU, 1400)
    assert len(raw) == 12 + 8  # "eth0\0" is 5 bytes: 4 + 5 padded to 12
    parsed = netlink.parse_attrs(raw)
    assert parsed[netlink.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", parsed[netlink.IFLA_MTU]) == (1400,)
    nested = netlink.attr(netlink.IFLA_LINKINFO | 0x8000, netlink.attr_str(1, "veth"))
    assert netlink.IFLA_LINKINFO in netlink.parse_attrs(nested)  # NLA_F_NESTED ignored


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", " "])
def test_bad_interface_names_are_einval(name: str) -> None:
    with pytest.raises(OSError, match="invalid interface name") as e:
        netlink.check_ifname(name)
    assert e.value.errno == errno.EINVAL


def test_addresses() -> None:
    assert netlink.mac_bytes("02:42:AC:11:00:02") == bytes([2, 0x42, 0xAC, 0x11, 0, 2])
    for bad in ["02:42", "zz:42:ac:11:00:02", "02:42:ac:11:00:02:03"]:
        with pytest.raises(OSError, match="invalid MAC"):
            netlink.mac_bytes(bad)
    assert netlink.ipv4_bytes("10.0.0.1") == b"\n\0\0\1"
    with pytest.raises(OSError, match="invalid IPv4"):
        netlink.ipv4_bytes("10.0.0.256")


def test_names_the_engine_derives() -> None:
    name = veth_name("c" * 64, "n" * 64)
    assert name.startswith("dyv") and len(name) == 14
    assert name != veth_name("c" * 64, "m" * 64)
    mac = bytes(int(p, 16) for p in random_mac().split(":"))
    assert mac[0] & 0x02 and not mac[0] & 0x01  # locally administered, unicast


def test_a_link_dump_entry_reads_back_with_its_operational_state() -> None:
    attrs = (
        netlink.attr_str(netlink.IFLA_IFNAME, "dyv0")
        + netlink.attr_u32(netlink.IFLA_MTU, 1500)
        + netlink.attr(netlink.IFLA_OPERSTATE, bytes([netlink.IF_OPER_UP]))
    )
    link = netlink._link_from(netlink.ifinfo(7, netlink.IFF_UP) + attrs)
    assert (link.index, link.name, link.mtu, link.up, link.operational) == (
        7,
        "dyv0",
        1500,
        True,
        True,
    )
    lower_down = netlink.attr(netlink.IFLA_OPERSTATE, bytes([3]))  # IF_OPER_LOWERLAYERDOWN
    assert not netlink._link_from(netlink.ifinfo(7, netlink.IFF_UP) + lower_down).operational
    assert not netlink._link_from(netlink.ifinfo(7)).operational  # no attribute: unknown
