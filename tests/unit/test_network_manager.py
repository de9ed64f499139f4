"""NetworkManager rules over a temp root, with recording bridge devices and firewall rules.

The real devices and rules are exercised by tests/integration/test_networks_api.py;
here the records, names, overlaps, persistence and events are checked without root.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from engine.events import EventBus
from engine.network import manager as manager_mod
from engine.network.manager import NetworkManager, bridge_device, firewall_table
from engine.network.model import Endpoint, Network


class RecordingDevices:
    def __init__(self) -> None:
        self.bridges: dict[str, tuple[str, int, int]] = {}

    def ensure_bridge(self, name: str, gateway: str, prefix_len: int, mtu: int = 1500) -> None:
        self.bridges[name] = (gateway, prefix_len, mtu)

    def remove_bridge(self, name: str) -> None:
        self.bridges.pop(name, None)

    def link_names(self) -> list[str]:
        return ["lo", "eth0", *self.bridges]


class RecordingRules:
    def __init__(self) -> None:
        self.applied: list[list[str]] = []

    def apply(self, nets: list[Network]) -> None:
        self.applied.append(sorted(n.name for n in nets))

    def clear(self) -> None:
        self.applied.append([])


@pytest.fixture(autouse=True)
def private_host_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_mod, "HOST_LOCK", tmp_path / "lock" / "subnets.lock")


def make(root: Path, **kw: str) -> tuple[NetworkManager, RecordingDevices, RecordingRules]:
    devices, rules = RecordingDevices(), RecordingRules()
    mgr = NetworkManager(root / "networks", EventBus(), devices, rules, **kw)
    return mgr, devices, rules


def test_builtins_exist_with_stable_ids(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    ids = {n.name: n.id for n in mgr.list()}
    assert set(ids) == {"bridge", "host", "none"}
    again, _, _ = make(tmp_path)
    assert {n.name: n.id for n in again.list()} == ids


def test_setup_brings_up_the_default_bridge_on_a_free_pool(tmp_path: Path) -> None:
    mgr, devices, rules = make(tmp_path, bridge="dyt-unit0", bip="10.239.0.1/24")
    mgr.setup()
    assert devices.bridges == {"dyt-unit0": ("10.239.0.1", 24, 1500)}
    assert rules.applied[-1] == ["bridge"]
    bridge = mgr.get("bridge")
    assert (bridge.subnet, bridge.options["com.docker.network.bridge.name"]) == (
        "10.239.0.0/24",
        "dyt-unit0",
    )


def test_create_persists_and_publishes(tmp_path: Path) -> None:
    mgr, devices, rules = make(tmp_path)
    seen = mgr.events.subscribe(None)[1]
    net = mgr.create("n1", subnet="10.231.0.0/24", internal=True, labels={"a": "b"})
    assert net.bridge == bridge_device(net.id) and len(net.bridge) <= 15
    assert devices.bridges[net.bridge] == ("10.231.0.1", 24, 1500)
    assert rules.applied[-1] == ["n1"]
    event = seen.get_nowait()
    assert (event["Type"], event["Action"], event["Actor"]["Attributes"]) == (
        "network",
        "create",
        {"name": "n1", "type": "bridge"},
    )
    again, _, _ = make(tmp_path)
    assert again.get("n1").to_record() == net.to_record()


def test_lookup_by_id_name_and_unique_prefix(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    net = mgr.create("n1", subnet="10.231.0.0/24")
    assert mgr.get(net.id) is mgr.get("n1") is mgr.get(net.id[:5])
    with pytest.raises(NotFound, match="network nope not found"):
        mgr.get("nope")


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("bridge", Forbidden, "bridge is a pre-defined network and cannot be created"),
        ("default", Forbidden, "pre-defined"),
        ("n1", Conflict, "network with name n1 already exists"),
        ("", InvalidParameter, "name is empty"),
        ("bad name!", InvalidParameter, "only"),
    ],
)
def test_refused_names(tmp_path: Path, name: str, error: type[Exception], message: str) -> None:
    mgr, devices, _ = make(tmp_path)
    mgr.create("n1", subnet="10.231.0.0/24")
    before = sorted(p.name for p in (tmp_path / "networks").iterdir())
    with pytest.raises(error, match=message):
        mgr.create(name, subnet="10.232.0.0/24")
    assert sorted(p.name for p in (tmp_path / "networks").iterdir()) == before
    assert len(devices.bridges) == 1


def test_overlap_with_our_network_names_it(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    mgr.create("n1", subnet="10.231.0.0/16")
    with pytest.raises(Forbidden, match=r"10.231.4.0/24 overlaps 10.231.0.0/16 of network n1"):
        mgr.create("n2", subnet="10.231.4.0/24")


def test_overlap_with_a_host_route_names_the_device(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    route = manager_mod.ipam.host_routes()
    if not route:
        pytest.skip("no routes on this host")
    with pytest.raises(Forbidden, match=f"the host's route on {route[0].device}"):
        mgr.create("n2", subnet=str(route[0].subnet))


def test_gateway_without_subnet_is_refused(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    with pytest.raises(InvalidParameter, match="--subnet"):
        mgr.create("n2", gateway="10.231.0.1")


def test_bad_mtu_and_taken_bridge_name_are_refused(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    with pytest.raises(InvalidParameter, match="mtu"):
        mgr.create("n2", subnet="10.231.0.0/24", options={"com.docker.network.driver.mtu": "9"})
    with pytest.raises(Conflict, match="eth0 already exists"):
        mgr.create("n2", subnet="10.231.0.0/24", options={"com.docker.network.bridge.name": "eth0"})


def test_builtins_cannot_be_removed(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    with pytest.raises(Forbidden, match="bridge is a pre-defined network and cannot be removed"):
        mgr.remove(mgr.get("bridge"))


def test_a_network_in_use_is_not_removed_and_names_its_containers(tmp_path: Path) -> None:
    mgr, devices, _ = make(tmp_path)
    net = mgr.create("n1", subnet="10.231.0.0/24")
    ep = Endpoint(net.id, "n1", ip="10.231.0.2", prefix_len=24)
    mgr.attached = lambda net_id: {"c" * 64: ("web", ep)} if net_id == net.id else {}
    with pytest.raises(Forbidden, match=r'network n1 id .* has active endpoints \(name:"web"'):
        mgr.remove(net)
    assert mgr.prune(lambda _n: True) == []
    assert net.bridge in devices.bridges and mgr.get("n1") is net


def test_remove_and_prune_delete_device_record_and_rules(tmp_path: Path) -> None:
    mgr, devices, rules = make(tmp_path)
    n1 = mgr.create("n1", subnet="10.231.0.0/24", labels={"keep": "1"})
    n2 = mgr.create("n2", subnet="10.232.0.0/24")
    assert mgr.prune(lambda n: "keep" not in n.labels) == ["n2"]
    assert n2.bridge not in devices.bridges and rules.applied[-1] == ["n1"]
    mgr.remove(n1)
    assert devices.bridges == {} and not list((tmp_path / "networks").glob(f"{n1.id}*"))
    with pytest.raises(NotFound):
        mgr.get("n1")


def test_a_corrupt_record_is_skipped(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    net = mgr.create("n1", subnet="10.231.0.0/24")
    (tmp_path / "networks" / f"{net.id}.json").write_text("{torn")
    (tmp_path / "networks" / "x.json").write_text(json.dumps({"id": "y"}))
    again, _, _ = make(tmp_path)
    assert {n.name for n in again.list()} == {"bridge", "host", "none"}


def test_pools_start_from_the_addresses_containers_hold(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    net = mgr.create("n1", subnet="10.231.0.0/24")
    held = Endpoint(net.id, "n1", ip="10.231.0.2", prefix_len=24)
    mgr.attached = lambda _id: {"c" * 64: ("web", held)}
    assert mgr.allocate(net) == "10.231.0.3"
    with pytest.raises(Conflict):
        mgr.allocate(net, "10.231.0.2")
    mgr.release(net, "10.231.0.3")


def test_static_addresses_only_on_user_networks(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path, bip="10.239.0.1/24")
    mgr.setup()
    with pytest.raises(InvalidParameter, match="user defined networks only"):
        mgr.allocate(mgr.get("bridge"), "10.239.0.9")
    assert mgr.allocate(mgr.get("bridge")) == "10.239.0.2"


def test_shutdown_keeps_bridges_with_running_containers(tmp_path: Path) -> None:
    mgr, devices, rules = make(tmp_path, bridge="dyt-unit1", bip="10.239.0.1/24")
    mgr.setup()
    n1 = mgr.create("n1", subnet="10.231.0.0/24")
    ep = Endpoint(n1.id, "n1", ip="10.231.0.2", prefix_len=24)
    mgr.attached = lambda net_id: {"c" * 64: ("web", ep)} if net_id == n1.id else {}
    mgr.shutdown()
    assert list(devices.bridges) == [n1.bridge] and rules.applied[-1] == ["n1"]
    mgr.attached = lambda _id: {}
    mgr.shutdown()
    assert devices.bridges == {} and rules.applied[-1] == []


def test_firewall_table_names() -> None:
    assert firewall_table("dockyard0") == "dockyard"
    assert firewall_table("dyt12-3") == "dockyard_dyt12_3"


def test_a_record_with_impossible_addresses_is_skipped(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    net = mgr.create("n1", subnet="10.231.0.0/24")
    path = tmp_path / "networks" / f"{net.id}.json"
    path.write_text(path.read_text().replace("10.231.0.0/24", "10.231.0.9/99"))
    again, _, _ = make(tmp_path)
    with pytest.raises(NotFound):
        again.get("n1")


def test_bip_overlapping_a_user_network_is_refused_at_setup(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    mgr.create("n1", subnet="10.231.0.0/24")
    again, devices, _ = make(tmp_path, bip="10.231.0.1/16")
    with pytest.raises(Forbidden, match=r"--bip 10\.231\.0\.0/16 overlaps network n1"):
        again.setup()
    assert devices.bridges == {}


def test_bad_engine_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="--bridge"):
        make(tmp_path, bridge="a-bridge-name-too-long")
    with pytest.raises(InvalidParameter, match="--ip"):
        make(tmp_path, host_ip="localhost")
    with pytest.raises(InvalidParameter, match="--bip"):
        make(tmp_path, bip="172.26.0.1")


class FailingRules(RecordingRules):
    def apply(self, nets: list[Network]) -> None:
        raise OSError("nft: Operation not permitted")


def test_a_firewall_failure_at_create_leaves_nothing(tmp_path: Path) -> None:
    devices = RecordingDevices()
    mgr = NetworkManager(tmp_path / "networks", EventBus(), devices, FailingRules())
    with pytest.raises(EngineError, match="cannot set up network n1: nft: Operation not"):
        mgr.create("n1", subnet="10.231.0.0/24")
    assert devices.bridges == {} and {n.name for n in mgr.list()} == {"bridge", "host", "none"}
    again, _, _ = make(tmp_path)
    with pytest.raises(NotFound):
        again.get("n1")
    with pytest.raises(EngineError, match="firewall rules"):
        mgr.setup()


def test_an_ambiguous_id_prefix_is_refused(tmp_path: Path) -> None:
    mgr, _, _ = make(tmp_path)
    for n, net_id in enumerate(("ffffffab" + "0" * 56, "ffffffac" + "0" * 56)):
        mgr.store.save(Network(net_id, f"x{n}", "bridge", "2026-01-01T00:00:00Z"))
    again, _, _ = make(tmp_path)
    with pytest.raises(InvalidParameter, match="network ffffffa is ambiguous \\(2 matches"):
        again.get("ffffffa")
    assert again.get("ffffffab").name == "x0"
