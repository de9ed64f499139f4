"""Networks as objects, through the real docker CLI, the docker SDK and raw API calls.

One engine for the module; each test uses its own network names and subnets. Subnets
are picked at random from 10.200.0.0-10.250.255.0 (/24s) among those no route on the
host covers, so engines of other test runs on this machine (which refuse overlapping
subnets just as ours does) do not collide with these.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from urllib.parse import quote

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

from engine.network import firewall, ipam
from tests.engine_process import EngineProcess, api_call


def free_subnet() -> str:
    taken = [r.subnet for r in ipam.host_routes()]
    while True:
        net = IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return str(net)


def unique(prefix: str = "n") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def inspect(eng: EngineProcess, ref: str) -> dict[str, object]:
    out = json.loads(eng.docker("network", "inspect", ref).stdout)
    assert len(out) == 1
    return dict(out[0])


@pytest.fixture
def eng(shared_engine: EngineProcess) -> Iterator[EngineProcess]:
    """The module's engine; networks a test leaves behind are removed after it."""
    yield shared_engine
    _, nets = api_call(shared_engine.socket, "GET", "/networks")
    for net in nets or []:
        if net["Name"] not in ("bridge", "host", "none"):
            api_call(shared_engine.socket, "DELETE", f"/networks/{net['Id']}")


def test_create_and_inspect_are_docker_shaped(eng: EngineProcess) -> None:
    subnet, name = free_subnet(), unique()
    net_id = eng.docker(
        "network", "create", "--subnet", subnet, "--internal", "--label", "a=b", name
    ).stdout.strip()
    assert len(net_id) == 64 and int(net_id, 16) >= 0
    view = inspect(eng, name)
    gateway = str(IPv4Network(subnet).network_address + 1)
    assert view["Id"] == net_id and view["Name"] == name
    assert (view["Scope"], view["Driver"], view["Internal"], view["EnableIPv6"]) == (
        "local",
        "bridge",
        True,
        False,
    )
    assert view["IPAM"] == {
        "Driver": "default",
        "Options": {},
        "Config": [{"Subnet": subnet, "Gateway": gateway}],
    }
    assert view["Labels"] == {"a": "b"} and view["Containers"] == {}
    assert view["ConfigFrom"] == {"Network": ""} and view["ConfigOnly"] is False
    device = "dy-" + net_id[:12]
    assert link_exists(device)
    assert inspect(eng, net_id[:10])["Id"] == net_id
    eng.docker("network", "rm", name)
    assert not link_exists(device)


def test_default_bridge_shows_its_device_and_a_free_subnet(eng: EngineProcess) -> None:
    view = inspect(eng, "bridge")
    options = view["Options"]
    assert isinstance(options, dict)
    assert options["com.docker.network.bridge.name"] == eng.bridge
    config = view["IPAM"]["Config"]
    assert len(config) == 1 and IPv4Network(config[0]["Subnet"]).prefixlen <= 20
    assert link_exists(eng.bridge)


def test_ls_filters(eng: EngineProcess) -> None:
    a, b = unique("flt"), unique("flt")
    eng.docker("network", "create", "--subnet", free_subnet(), "--label", "tier=web", a)
    eng.docker("network", "create", "--subnet", free_subnet(), b)

    def names(*filters: str) -> set[str]:
        args = [x for f in filters for x in ("--filter", f)]
        out = eng.docker("network", "ls", "--format", "{{.Name}}", *args).stdout
        return set(out.split())

    assert {a, b} <= names()
    assert names(f"name={a}") == {a}
    assert names("label=tier=web") == {a}
    assert names("label=tier") == {a}
    assert names("type=builtin") == {"bridge", "host", "none"}
    assert names("type=custom", "name=flt-") == {a, b}
    assert names("driver=null") == {"none"}
    assert names("dangling=true", "name=flt-") == {a, b}
    assert not names("dangling=true") & {"bridge", "host", "none"}
    net_id = inspect(eng, b)["Id"]
    assert names(f"id={str(net_id)[:12]}") == {b}
    bad = eng.docker("network", "ls", "--filter", "type=weird", check=False)
    assert bad.returncode != 0 and "custom or builtin" in bad.stderr


def test_duplicates_overlaps_and_drivers_are_refused_and_change_nothing(
    eng: EngineProcess,
) -> None:
    subnet, name = free_subnet(), unique()
    eng.docker("network", "create", "--subnet", subnet, name)
    before = eng.api("GET", "/networks")
    cases = [
        (["--subnet", free_subnet(), name], f"network with name {name} already exists"),
        (["--subnet", subnet, unique()], f"overlaps {subnet} of network {name}"),
        (["--driver", "overlay", unique()], 'network driver "overlay" is not supported'),
        (["--ipv6", unique()], "IPv6 networks are not supported"),
        (["--subnet", "10.1.2.3/24", unique()], "it should be 10.1.2.0/24"),
        (["--subnet", subnet.replace("0/24", "0/28"), "--gateway", "1.2.3.4", unique()], ""),
        (["bridge"], "bridge is a pre-defined network and cannot be created"),
    ]
    for args, words in cases:
        res = eng.docker("network", "create", *args, check=False)
        assert res.returncode != 0, args
        assert words in res.stderr, (args, res.stderr)
    assert eng.api("GET", "/networks") == before


def test_overlap_with_a_host_route_is_refused(eng: EngineProcess) -> None:
    route = next(iter(ipam.host_routes()), None)
    if route is None:
        pytest.skip("no routes on this host")
    res = eng.docker("network", "create", "--subnet", str(route.subnet), unique(), check=False)
    assert res.returncode != 0 and f"the host's route on {route.device}" in res.stderr


def test_builtins_cannot_be_removed(eng: EngineProcess) -> None:
    for name in ("bridge", "host", "none"):
        res = eng.docker("network", "rm", name, check=False)
        assert res.returncode != 0
        assert f"{name} is a pre-defined network and cannot be removed" in res.stderr
    status, body = api_call(eng.socket, "DELETE", "/networks/bridge")
    assert status == 403 and "pre-defined" in body["message"]


def test_rm_unknown_is_404(eng: EngineProcess) -> None:
    status, body = api_call(eng.socket, "DELETE", "/networks/no-such-net")
    assert status == 404 and body["message"] == "network no-such-net not found"


def test_prune_by_label_and_until(eng: EngineProcess) -> None:
    keep, drop = unique("keep"), unique("drop")
    eng.docker("network", "create", "--subnet", free_subnet(), "--label", "keep=1", keep)
    eng.docker("network", "create", "--subnet", free_subnet(), drop)
    assert eng.api("POST", "/networks/prune?filters=" + quote('{"until": ["1h"]}')) == {
        "NetworksDeleted": []
    }
    out = eng.docker("network", "prune", "-f", "--filter", "label!=keep").stdout
    assert drop in out and keep not in out
    names = {n["Name"] for n in eng.api("GET", "/networks")}
    assert keep in names and drop not in names


def test_events_for_create_and_destroy(eng: EngineProcess) -> None:
    name = unique()
    since = int(time.time()) - 1
    net_id = eng.docker("network", "create", "--subnet", free_subnet(), name).stdout.strip()
    eng.docker("network", "rm", name)
    until = str(int(time.time()) + 1)
    out = eng.docker(
        "events",
        "--since",
        str(since),
        "--until",
        until,
        "--filter",
        "type=network",
        "--format",
        "{{json .}}",
    ).stdout
    mine = [json.loads(line) for line in out.splitlines() if net_id in line]
    assert [e["Action"] for e in mine] == ["create", "destroy"]
    assert mine[0]["Actor"]["Attributes"] == {"name": name, "type": "bridge"}


def test_networks_survive_an_engine_restart(engine: EngineProcess) -> None:
    name = unique()
    net_id = engine.docker("network", "create", "--subnet", free_subnet(), name).stdout.strip()
    bridge_id = inspect(engine, "bridge")["Id"]
    engine.restart()
    assert inspect(engine, name)["Id"] == net_id
    assert inspect(engine, "bridge")["Id"] == bridge_id
    assert link_exists("dy-" + net_id[:12])


def test_a_corrupt_network_record_is_skipped(engine: EngineProcess) -> None:
    name = unique()
    net_id = engine.docker("network", "create", "--subnet", free_subnet(), name).stdout.strip()
    engine.stop()
    (engine.root / "networks" / f"{net_id}.json").write_text("{torn")
    engine.start()
    res = engine.docker("network", "inspect", name, check=False)
    assert res.returncode != 0 and "not found" in res.stderr
    assert "skipping unreadable network record" in engine.log_path.read_text()


BAD_CREATES = [
    ({"Name": 5}, "invalid Name: expected a string"),
    ({"Name": "x", "Internal": "yes"}, "invalid Internal: expected true or false"),
    ({"Name": "x", "Labels": {"a": 1}}, "invalid Labels['a']"),
    ({"Name": "x", "IPAM": {"Config": "10.0.0.0/8"}}, "invalid IPAM.Config"),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": 7}]}}, "invalid IPAM.Config[0].Subnet"),
    ({"Name": "x", "IPAM": {"Driver": "dhcp"}}, "IPAM driver 'dhcp' is not supported"),
    ({"Name": "x", "IPAM": {"Config": [{}, {}]}}, "one IPv4 subnet"),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "fd00::/64"}]}}, "IPv6 is not supported"),
    ({"Name": "x", "IPAM": {"Config": [{"Gateway": "10.0.0.1"}]}}, "need a subnet"),
    ({"Name": "x", "EnableIPv4": False}, "without IPv4"),
    ({"Name": "x", "ConfigOnly": True}, "config-only"),
    ({"Name": "x", "Ingress": True}, "swarm"),
    ({"Name": "x", "Scope": "swarm"}, "networks are local"),
    ({"Name": "x", "Driver": "host"}, "bridge driver"),
    ({"Name": ""}, "name is empty"),
    ({"Name": "a b"}, "invalid network name"),
    ({"Name": "x", "Options": {"com.docker.network.driver.mtu": "huge"}}, "mtu"),
    ({"Name": "x", "Options": {"com.docker.network.bridge.name": "much-too-long-name"}}, "15"),
]


@pytest.mark.parametrize(("body", "words"), BAD_CREATES)
def test_bad_create_bodies_are_400_and_store_nothing(
    eng: EngineProcess, body: dict[str, object], words: str
) -> None:
    before = eng.api("GET", "/networks")
    status, reply = api_call(eng.socket, "POST", "/networks/create", body)
    assert status == 400, reply
    assert words in reply["message"]
    assert eng.api("GET", "/networks") == before
    assert not list(eng.root.glob("networks/.*"))  # no temp files left


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/networks/bridge/connect", {}, 400, "Container is missing"),
        ("/networks/bridge/connect", {"Container": 3}, 400, "invalid Container"),
        ("/networks/bridge/connect", {"Container": "x", "EndpointConfig": []}, 400, "object"),
        ("/networks/bridge/disconnect", {"Container": "x", "Force": "y"}, 400, "invalid Force"),
        ("/networks/nope/connect", {"Container": "x"}, 404, "network nope not found"),
        ("/networks/bridge/connect", {"Container": "no-such-ctr"}, 404, "no-such-ctr"),
        (
            "/networks/bridge/connect",
            {"Container": "x", "EndpointConfig": {"IPAMConfig": {"IPv6Address": "fd00::2"}}},
            400,
            "IPv6",
        ),
    ],
)
def test_bad_connect_requests(
    eng: EngineProcess, path: str, body: dict[str, object], status: int, words: str
) -> None:
    got, reply = api_call(eng.socket, "POST", path, body)
    assert got == status, reply
    assert words in reply["message"]


def test_bad_list_filters(eng: EngineProcess) -> None:
    for flt, words in [
        ('{"colour": ["red"]}', "invalid filter 'colour'"),
        ('{"name": ["("]}', "not a regular expression"),
        ("[1]", "invalid filters"),
    ]:
        status, reply = api_call(eng.socket, "GET", "/networks?filters=" + quote(flt))
        assert status == 400 and words in reply["message"], reply
    status, reply = api_call(
        eng.socket, "POST", "/networks/prune?filters=" + quote('{"until": ["soon"]}')
    )
    assert status == 400 and "until" in reply["message"]


def test_sdk_create_get_list_remove(eng: EngineProcess) -> None:
    client = docker.DockerClient(base_url=eng.host, version="auto")
    try:
        subnet, name = free_subnet(), unique("sdk")
        gateway = str(IPv4Network(subnet).network_address + 9)
        pool = IPAMPool(subnet=subnet, gateway=gateway, iprange=subnet.replace("0/24", "128/25"))
        net = client.networks.create(
            name, driver="bridge", ipam=IPAMConfig(pool_configs=[pool]), labels={"k": "v"}
        )
        got = client.networks.get(name)
        assert got.id == net.id and got.attrs["IPAM"]["Config"][0]["Gateway"] == gateway
        assert got.attrs["IPAM"]["Config"][0]["IPRange"] == subnet.replace("0/24", "128/25")
        assert [n.name for n in client.networks.list(names=[name])] == [name]
        with pytest.raises(docker.errors.APIError) as dup:
            client.networks.create(name)
        assert dup.value.status_code == 409
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("no-such-network")
        net.remove()
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(name)
    finally:
        client.close()


def test_attached_containers_show_in_inspect_and_keep_the_network(
    eng: EngineProcess, registry_with_images: str
) -> None:
    image = f"{registry_with_images}/busybox"
    eng.docker("pull", image)
    subnet, name, ctr = free_subnet(), unique(), unique("ctr")
    ip = str(IPv4Network(subnet).network_address + 10)
    eng.docker("network", "create", "--subnet", subnet, name)
    cid = eng.docker(
        "run", "-d", "--name", ctr, "--network", name, "--ip", ip, image, "sleep", "60"
    ).stdout.strip()
    try:
        attached = inspect(eng, name)["Containers"]
        assert isinstance(attached, dict) and list(attached) == [cid]
        entry = attached[cid]
        assert (entry["Name"], entry["IPv4Address"], entry["MacAddress"]) == (
            ctr,
            f"{ip}/24",
            ipam.mac_for(ip),
        )
        assert entry["EndpointID"] and entry["IPv6Address"] == ""
        res = eng.docker("network", "rm", name, check=False)
        assert res.returncode != 0 and "has active endpoints" in res.stderr and ctr in res.stderr
        assert eng.api("POST", "/networks/prune")["NetworksDeleted"] == []
        dangling = eng.docker("network", "ls", "-q", "--filter", "dangling=true").stdout.split()
        assert str(inspect(eng, name)["Id"])[:12] not in dangling
        eng.docker("network", "disconnect", name, ctr)
        assert inspect(eng, name)["Containers"] == {}
        eng.docker("network", "connect", name, ctr)
        assert list(inspect(eng, name)["Containers"]) == [cid]
    finally:
        eng.docker("rm", "-f", ctr)
    eng.docker("network", "rm", name)


def test_a_killed_engines_bridges_and_rules_are_cleaned_up_by_the_test_helper() -> None:
    eng = EngineProcess()
    try:
        eng.start()
        net_id = eng.docker("network", "create", "--subnet", free_subnet(), unique()).stdout
        links = [eng.bridge, "dy-" + net_id.strip()[:12]]
        assert all(link_exists(link) for link in links)
        assert eng.firewall_table() in firewall.detect(eng.firewall_table()).dump()
        eng.kill9()
        assert all(link_exists(link) for link in links)
    finally:
        eng.close()
    assert not any(link_exists(link) for link in links)
    assert eng.firewall_table() not in firewall.detect(eng.firewall_table()).dump()


def test_networks_without_a_subnet_get_free_default_pools(eng: EngineProcess) -> None:
    names = [unique("pool"), unique("pool")]
    subnets = []
    for name in names:
        eng.docker("network", "create", name)
        subnets.append(IPv4Network(inspect(eng, name)["IPAM"]["Config"][0]["Subnet"]))
    bridge = IPv4Network(inspect(eng, "bridge")["IPAM"]["Config"][0]["Subnet"])
    assert all(s in ipam.DEFAULT_POOLS for s in subnets)
    assert not subnets[0].overlaps(subnets[1])
    assert not any(s.overlaps(bridge) for s in subnets)
    ours = {eng.bridge, *("dy-" + str(inspect(eng, n)["Id"])[:12] for n in names)}
    foreign = [r.subnet for r in ipam.host_routes() if r.device not in ours]
    assert not any(s.overlaps(f) for s in subnets for f in foreign)


def test_inspect_in_another_scope_finds_nothing(eng: EngineProcess) -> None:
    status, reply = api_call(eng.socket, "GET", "/networks/bridge?scope=swarm&verbose=1")
    assert status == 404 and "not found in scope swarm" in reply["message"]
    assert eng.api("GET", "/networks/bridge?scope=local&verbose=1")["Name"] == "bridge"
