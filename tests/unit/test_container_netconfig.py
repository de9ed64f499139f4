"""A create request's networking: Docker's checks and the endpoints it becomes, and the
names a container's networks give (embedded DNS answers, /etc/hosts lines)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.containers import hostfiles, netconfig, netnames
from engine.containers.model import Container
from engine.errors import InvalidParameter, NotFound
from engine.network.model import BRIDGE, HOST, NULL, Endpoint, Network
from engine.runtime.spec import ContainerSpec

NETS = {
    "bridge": Network("b" * 64, "bridge", BRIDGE, "", "dockyard0", "172.17.0.0/16", builtin=True),
    "host": Network("h" * 64, "host", HOST, "", builtin=True),
    "none": Network("n" * 64, "none", NULL, "", builtin=True),
    "app": Network("a" * 64, "app", BRIDGE, "", "dy-aaaa", "10.9.0.0/24", "10.9.0.1"),
    "db": Network("d" * 64, "db", BRIDGE, "", "dy-dddd", "10.8.0.0/24", "10.8.0.1"),
}


class Lookup:
    def get(self, ref: str) -> Network:
        for net in NETS.values():
            if ref in (net.name, net.id):
                return net
        raise NotFound(f"network {ref} not found")


def exists(ref: str) -> object:
    if ref not in ("web", "db1"):
        raise NotFound(f"No such container: {ref}")
    return ref


def plan(hc: dict[str, Any], **body: Any) -> dict[str, Endpoint]:
    return netconfig.endpoints(body, hc, Lookup(), exists)


def test_default_mode_is_the_bridge() -> None:
    eps = plan({})
    assert list(eps) == ["bridge"] and eps["bridge"].network_id == "b" * 64


def test_user_network_first_then_the_other_endpoints() -> None:
    eps = plan(
        {"NetworkMode": "app"},
        NetworkingConfig={
            "EndpointsConfig": {
                "db": {"Aliases": ["store"]},
                "app": {"Aliases": ["api"], "IPAMConfig": {"IPv4Address": "10.9.0.7"}},
            }
        },
    )
    assert list(eps) == ["app", "db"]
    assert eps["app"].aliases == ["api"] and eps["app"].static_ip == "10.9.0.7"
    assert eps["db"].aliases == ["store"]


def test_unknown_network_is_not_found() -> None:
    with pytest.raises(NotFound, match="network nope not found"):
        plan({"NetworkMode": "nope"})


@pytest.mark.parametrize(
    ("hc", "body", "message"),
    [
        ({}, {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}, "network-scoped alias"),
        (
            {},
            {"EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}},
            "user defined networks only",
        ),
        (
            {"NetworkMode": "app"},
            {"EndpointsConfig": {"app": {"IPAMConfig": {"IPv4Address": "10.1.0.9"}}}},
            "no configured subnet",
        ),
        (
            {"NetworkMode": "app"},
            {"EndpointsConfig": {"app": {"IPAMConfig": {"IPv4Address": "nonsense"}}}},
            "invalid IPv4 address",
        ),
        ({"NetworkMode": "host"}, {"EndpointsConfig": {"app": {}}}, "host network"),
        ({"NetworkMode": "none"}, {"EndpointsConfig": {"app": {}}}, "private \\(none\\)"),
        ({"NetworkMode": "host", "Links": ["web:w"]}, {}, "host type networking"),
        ({"NetworkMode": "container:"}, {}, "container:<name|id>"),
        ({"NetworkMode": "container:web", "Links": ["db1"]}, {}, "can't be used with links"),
        ({"NetworkMode": "container:web", "PortBindings": {"80/tcp": []}}, {}, "publishing"),
        ({"NetworkMode": "container:web"}, {"EndpointsConfig": {"app": {}}}, "sharing network"),
        ({"Links": ["ghost:g"]}, {}, "could not get container for ghost"),
    ],
)
def test_docker_refuses(hc: dict[str, Any], body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        plan(hc, NetworkingConfig=body)


def test_container_mode_has_no_endpoints_and_needs_the_container() -> None:
    assert plan({"NetworkMode": "container:web"}) == {}
    with pytest.raises(NotFound):
        plan({"NetworkMode": "container:ghost"})
    with pytest.raises(InvalidParameter, match="hostname"):
        plan({"NetworkMode": "container:web"}, Hostname="h")


def test_links_are_normalised_onto_the_primary_endpoint() -> None:
    eps = plan({"Links": ["web", "/db1:/me/store"]})
    assert eps["bridge"].links == ["web:web", "db1:store"]


def container(name: str, **eps: Endpoint) -> Container:
    spec = ContainerSpec(
        id=name * 8, lowerdirs=[], upperdir="", workdir="", rootfs="", args=[], env=[]
    )
    c = Container(name * 8, name, "", "", {"Hostname": name + "-host"}, {}, spec, [])
    c.networks = dict(eps)
    return c


def ep(
    net: str, ip: str = "", aliases: list[str] | None = None, links: list[str] | None = None
) -> Endpoint:
    return Endpoint(
        NETS[net].id, net, aliases or [], links or [], ip=ip, endpoint_id="e" if ip else ""
    )


def test_dns_answers_members_of_shared_user_networks_only() -> None:
    a = container("a", app=ep("app", "10.9.0.2"))
    b = container("b", app=ep("app", "10.9.0.3", ["api"]), db=ep("db", "10.8.0.3"))
    c = container("c", db=ep("db", "10.8.0.4"))
    d = container("d", bridge=ep("bridge", "172.17.0.2"))
    everyone = [a, b, c, d]

    def find(ref: str) -> Container:
        return next(x for x in everyone if ref in (x.name, x.id))

    assert netnames.resolve(a, "b", everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(a, "API.", everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(a, b.short_id, everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(a, "b-host", everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(a, "c", everyone, find) is None  # not on a shared network
    assert netnames.resolve(c, "b", everyone, find) == ["10.8.0.3"]
    assert netnames.resolve(d, "a", everyone, find) is None  # default bridge: forwarded
    assert netnames.resolve(a, "example.org", everyone, find) is None
    assert netnames.resolve(b, "c.db", everyone, find) == ["10.8.0.4"]
    assert netnames.resolve(a, "b.app", everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(a, "b.db", everyone, find) is None  # a is not on db
    assert netnames.reverse(a, "10.9.0.3", everyone) == "b.app"
    assert netnames.reverse(a, "10.8.0.4", everyone) is None  # c shares no network with a
    assert netnames.reverse(d, "172.17.0.2", everyone) is None


def test_link_aliases_resolve_for_the_linking_container() -> None:
    b = container("b", app=ep("app", "10.9.0.3"))
    a = container("a", app=ep("app", "10.9.0.2", links=["b:backend"]))
    everyone = [a, b]

    def find(ref: str) -> Container:
        return next(x for x in everyone if ref in (x.name, x.id))

    assert netnames.resolve(a, "backend", everyone, find) == ["10.9.0.3"]
    assert netnames.resolve(b, "backend", everyone, find) is None


def test_link_hosts_lines_and_dns_names() -> None:
    web = container("web", bridge=ep("bridge", "172.17.0.5"))
    me = container("me", bridge=ep("bridge", "172.17.0.6", links=["web:site"]))
    assert netnames.link_hosts(me, lambda ref: web) == [("172.17.0.5", "site web-host web")]
    b = container("b", app=ep("app", "10.9.0.3", ["api"]))
    assert netnames.dns_names(b, b.networks["app"]) == ["b", "api", b.short_id, "b-host"]


def test_hosts_name_the_own_address_instead_of_loopback() -> None:
    text = hostfiles.hosts_content("box", [], False, ["10.9.0.2"], [("10.9.0.3", "db x")])
    assert "127.0.1.1" not in text
    assert "10.9.0.2\tbox\n" in text and "10.9.0.3\tdb x\n" in text


def test_resolv_conf_points_at_the_embedded_dns() -> None:
    text = hostfiles.resolv_content(["9.9.9.9"], ["corp"], ["ndots:2"], False, embedded_dns=True)
    assert text.splitlines() == ["nameserver 127.0.0.11", "search corp", "options ndots:2"]
