"""Published-port specs: Docker's PortBindings / ExposedPorts / -P, and the views."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import InvalidParameter
from engine.network import portmap
from engine.runtime.spec import PublishedPort


def _plan(
    bindings: dict[str, Any], exposed: dict[str, Any] | None = None, **hc: Any
) -> list[PublishedPort]:
    config = {"ExposedPorts": exposed or {}}
    return portmap.plan(config, {"PortBindings": bindings, **hc}, "172.17.0.2", "127.0.0.1")


def _pairs(ports: list[PublishedPort]) -> list[tuple[str, str, int, int]]:
    return [(p.proto, p.host_ip, p.host_port, p.container_port) for p in ports]


def test_host_port_to_container_port_on_the_default_ip() -> None:
    ports = _plan({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    assert ports == [PublishedPort("tcp", "127.0.0.1", 8080, "172.17.0.2", 80)]


def test_explicit_ip_udp_and_any_free_port() -> None:
    ports = _plan(
        {
            "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
            "80": [{"HostIp": "127.0.0.1", "HostPort": ""}, {"HostIp": "::1", "HostPort": "0"}],
        }
    )
    assert _pairs(ports) == [
        ("udp", "0.0.0.0", 5353, 53),
        ("tcp", "127.0.0.1", 0, 80),
        ("tcp", "::1", 0, 80),
    ]


def test_bracketed_ipv6_host_ip() -> None:
    assert _plan({"80/tcp": [{"HostIp": "[::1]", "HostPort": "1"}]})[0].host_ip == "::1"


def test_ranges_pair_up() -> None:
    ports = _plan({"80-81/tcp": [{"HostPort": "8000-8001"}]})
    assert _pairs(ports) == [("tcp", "127.0.0.1", 8000, 80), ("tcp", "127.0.0.1", 8001, 81)]


def test_a_host_range_for_one_port_takes_the_first_free_one() -> None:
    (port,) = _plan({"80/tcp": [{"HostPort": "8000-8010"}]})
    assert (port.host_port, port.host_port_end) == (8000, 8010)


def test_exposed_only_is_not_published_without_dash_p() -> None:
    assert _plan({"80/tcp": None}, {"443/tcp": {}}) == []
    assert _plan({"80/tcp": []}) == []


def test_publish_all_publishes_every_exposed_port_on_a_free_port() -> None:
    ports = _plan(
        {"80/tcp": [{"HostPort": "8080"}]},
        {"80/tcp": {}, "443/tcp": {}, "53/udp": {}},
        PublishAllPorts=True,
    )
    assert _pairs(ports) == [
        ("tcp", "127.0.0.1", 8080, 80),
        ("udp", "127.0.0.1", 0, 53),
        ("tcp", "127.0.0.1", 0, 443),
    ]


@pytest.mark.parametrize(
    ("bindings", "message"),
    [
        ({"8o/tcp": [{"HostPort": "80"}]}, "invalid containerPort: 8o"),
        ({"0/tcp": [{"HostPort": "80"}]}, "invalid containerPort: 0"),
        ({"70000/tcp": [{"HostPort": "80"}]}, "invalid containerPort: 70000"),
        ({"80/sctp": [{"HostPort": "80"}]}, "invalid proto: sctp"),
        ({"80/tcpx": [{"HostPort": "80"}]}, "invalid proto: tcpx"),
        ({"80/tcp": [{"HostPort": "http"}]}, "invalid hostPort: http"),
        ({"80/tcp": [{"HostPort": "90-80"}]}, "invalid hostPort: 90-80"),
        ({"80/tcp": [{"HostPort": "65536"}]}, "invalid hostPort: 65536"),
        ({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "80"}]}, "invalid IP address: 1.2.3"),
        ({"80-82/tcp": [{"HostPort": "8000-8001"}]}, "invalid ranges specified"),
        ({"80/tcp": "8080"}, "invalid port binding for 80/tcp"),
        ({"80/tcp": ["8080"]}, "invalid port binding for 80/tcp"),
    ],
)
def test_bad_specs_are_refused_with_dockers_words(bindings: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        portmap.validate({}, {"PortBindings": bindings})


def test_bad_exposed_ports_and_shapes() -> None:
    with pytest.raises(InvalidParameter, match="invalid containerPort: x"):
        portmap.validate({"ExposedPorts": {"x/tcp": {}}}, {})
    with pytest.raises(InvalidParameter, match="ExposedPorts must be an object"):
        portmap.validate({"ExposedPorts": ["80/tcp"]}, {})
    with pytest.raises(InvalidParameter, match="PortBindings must be an object"):
        portmap.validate({}, {"PortBindings": ["80:80"]})


def test_describe_and_views() -> None:
    ports = [
        PublishedPort("udp", "0.0.0.0", 5353, "172.17.0.2", 53),
        PublishedPort("tcp", "127.0.0.1", 8080, "172.17.0.2", 80),
        PublishedPort("tcp", "::1", 8081, "172.17.0.2", 80),
    ]
    config = {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}}
    assert portmap.describe(ports) == (
        "0.0.0.0:5353->53/udp, 127.0.0.1:8080->80/tcp, [::1]:8081->80/tcp"
    )
    assert portmap.inspect_view(ports, config) == {
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "8080"},
            {"HostIp": "::1", "HostPort": "8081"},
        ],
        "443/tcp": None,
    }
    assert portmap.list_view(ports, config) == [
        {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]
    assert portmap.describe([]) == ""
    assert portmap.inspect_view([], {}) == {}
