"""IPAM rules: default pools around the host's routes, layouts, sequential allocation."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from engine.errors import Conflict, Forbidden, InvalidParameter
from engine.network import ipam

ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_routes_are_read_little_endian_without_the_default_route() -> None:
    routes = ipam.parse_routes(ROUTES)
    assert routes == [
        ipam.Route(IPv4Network("172.17.0.0/16"), "docker0"),
        ipam.Route(IPv4Network("192.0.2.0/24"), "eth0"),
    ]


def test_garbled_route_lines_are_skipped() -> None:
    assert ipam.parse_routes("header\neth0 zz 0 0 0 0 0 qq 0 0 0\nshort line\n") == []


def test_first_free_pool_skips_a_real_dockers_bridge_and_our_networks() -> None:
    taken = [r.subnet for r in ipam.parse_routes(ROUTES)] + [IPv4Network("172.18.0.0/16")]
    assert ipam.first_free(taken) == IPv4Network("172.19.0.0/16")


def test_after_the_172_pools_come_192_168_slash_20s() -> None:
    taken = [IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/24")]
    assert ipam.first_free(taken) == IPv4Network("192.168.16.0/20")


def test_no_free_pool_is_a_clear_error() -> None:
    with pytest.raises(Forbidden, match="--subnet"):
        ipam.first_free([IPv4Network("0.0.0.0/1"), IPv4Network("128.0.0.0/1")])


def test_layout_defaults_the_gateway_to_the_first_host() -> None:
    lay = ipam.layout("10.231.0.0/24")
    assert str(lay.gateway) == "10.231.0.1" and lay.ip_range is None


@pytest.mark.parametrize(
    ("subnet", "ip_range", "gateway", "message"),
    [
        ("10.231.0.5/24", "", "", "it should be 10.231.0.0/24"),
        ("10.231.0.0", "", "", "prefix length"),
        ("banana", "", "", "IPv4 CIDR"),
        ("fd00::/64", "", "", "IPv6 is not supported"),
        ("10.231.0.0/31", "", "", "too small"),
        ("10.231.0.0/24", "10.232.0.0/25", "", "not inside subnet"),
        ("10.231.0.0/24", "", "10.232.0.1", "inside subnet"),
        ("10.231.0.0/24", "", "10.231.0.255", "host address"),
        ("10.231.0.0/24", "", "ten", "IPv4 address"),
    ],
)
def test_bad_layouts_name_the_problem(
    subnet: str, ip_range: str, gateway: str, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        ipam.layout(subnet, ip_range, gateway)


def test_bip_is_the_bridge_address_with_its_prefix() -> None:
    lay = ipam.bip_layout("172.26.5.9/16")
    assert (str(lay.subnet), str(lay.gateway)) == ("172.26.0.0/16", "172.26.5.9")
    assert str(ipam.bip_layout("172.26.0.0/16").gateway) == "172.26.0.1"
    with pytest.raises(InvalidParameter, match="--bip"):
        ipam.bip_layout("nonsense")


def test_mac_is_derived_from_the_address() -> None:
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def pool(subnet: str = "10.231.0.0/29", ip_range: str = "", gateway: str = "") -> ipam.Pool:
    return ipam.Pool("n1", ipam.layout(subnet, ip_range, gateway))


def test_addresses_are_handed_out_in_order_skipping_the_gateway() -> None:
    p = pool()
    assert [p.allocate() for _ in range(5)] == [f"10.231.0.{i}" for i in range(2, 7)]


def test_exhaustion_is_a_clear_error_and_a_release_makes_room() -> None:
    p = pool()
    for _ in range(5):
        p.allocate()
    with pytest.raises(Forbidden, match="no available IPv4 addresses on network n1"):
        p.allocate()
    p.release("10.231.0.4")
    assert p.allocate() == "10.231.0.4"


def test_a_released_address_is_not_reused_at_once() -> None:
    p = pool("10.231.0.0/24")
    first = p.allocate()
    p.release(first)
    assert p.allocate() != first


def test_the_search_skips_addresses_in_use_and_wraps_around() -> None:
    p = pool()
    p.allocate(static_ip="10.231.0.3")
    assert p.allocate() == "10.231.0.2"
    assert p.allocate() == "10.231.0.4"
    p.release("10.231.0.2")
    assert [p.allocate(), p.allocate(), p.allocate()] == ["10.231.0.5", "10.231.0.6", "10.231.0.2"]


def test_ip_range_limits_dynamic_addresses_not_static_ones() -> None:
    p = pool("10.231.0.0/24", "10.231.0.128/30")
    assert [p.allocate() for _ in range(4)] == [f"10.231.0.{i}" for i in range(128, 132)]
    with pytest.raises(Forbidden):
        p.allocate()
    assert p.allocate(static_ip="10.231.0.9") == "10.231.0.9"


@pytest.mark.parametrize(
    ("ip", "error", "message"),
    [
        ("10.232.0.2", InvalidParameter, "no configured subnet contains"),
        ("10.231.0.1", InvalidParameter, "gateway"),
        ("10.231.0.7", InvalidParameter, "broadcast"),
        ("10.231.0.0", InvalidParameter, "network or broadcast"),
        ("nope", InvalidParameter, "IPv4 address"),
    ],
)
def test_static_addresses_are_checked(ip: str, error: type[Exception], message: str) -> None:
    p = pool()
    with pytest.raises(error, match=message):
        p.allocate(static_ip=ip)
    assert p.in_use == set()


def test_a_static_address_in_use_conflicts() -> None:
    p = pool()
    p.allocate(static_ip="10.231.0.5")
    with pytest.raises(Conflict, match="already in use"):
        p.allocate(static_ip="10.231.0.5")


def test_reserve_is_idempotent_and_ignores_foreign_addresses() -> None:
    p = pool()
    p.reserve("10.231.0.2")
    p.reserve("10.231.0.2")
    p.reserve("192.0.2.9")
    p.reserve("garbage")
    assert p.allocate() == "10.231.0.3"


def test_overlapping_names_the_first_owner() -> None:
    others = [("a", IPv4Network("10.0.0.0/16")), ("b", IPv4Network("10.231.0.0/16"))]
    assert ipam.overlapping(IPv4Network("10.231.4.0/24"), others) == others[1]
    assert ipam.overlapping(IPv4Network("10.232.0.0/24"), others) is None
