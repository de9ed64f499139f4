"""The firewall backends for real, as root, with real traffic.

Each test builds its own small world inside a throwaway stand-in for the host's
netns (tests/netsandbox.py): three networks of one engine (two open, one
internal) plus an "outside" bridge the engine does not own, with containers on
them. Rules and sysctls there are the netns's own, so the real host's ruleset
is never touched and before/after listings compare exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.network import datapath
from engine.network.firewall import FirewallNet, NoopFirewall, detect
from engine.network.firewall_common import IP_FORWARD
from tests.netsandbox import Sandbox, blocked, connect, isolated_host, masked, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BACKENDS = ["nft", "iptables"]
TABLE = f"dytest{os.getpid()}"
NETS = [
    FirewallNet("dyf1", "10.31.1.0/24"),
    FirewallNet("dyf2", "10.31.2.0/24"),
    FirewallNet("dyf3", "10.31.3.0/24", internal=True),
]


@dataclass
class Lab:
    box: Sandbox
    a: Path  # on dyf1, 10.31.1.2
    c: Path  # on dyf1, 10.31.1.3
    b: Path  # on dyf2, 10.31.2.2
    d: Path  # on dyf3 (internal), 10.31.3.2
    x: Path  # on dyfx, the outside, 10.31.4.2


@pytest.fixture
def lab() -> Iterator[Lab]:
    with isolated_host() as box:
        for i, br in enumerate(["dyf1", "dyf2", "dyf3", "dyfx"], 1):
            datapath.ensure_bridge(br, f"10.31.{i}.1", 24)
        paths = {}
        for name, br, ip in [
            ("a", "dyf1", "10.31.1.2"),
            ("c", "dyf1", "10.31.1.3"),
            ("b", "dyf2", "10.31.2.2"),
            ("d", "dyf3", "10.31.3.2"),
            ("x", "dyfx", "10.31.4.2"),
        ]:
            paths[name] = box.netns(name)
            gateway = ip.rsplit(".", 1)[0] + ".1"
            datapath.attach(paths[name], br, f"dyv{name}", "eth0", "", ip, 24, gateway)
        # Rules another tool made: they must come through every apply and clear.
        run("iptables", "-w", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT")
        run("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.2", "-j", "RETURN")
        run("nft", "add table inet othertool; add chain inet othertool c")
        yield Lab(box, **paths)


def _rulesets() -> tuple[str, str]:
    return masked(run("nft", "list", "ruleset")), masked(run("iptables-save"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_isolation_nat_and_a_clean_clear(lab: Lab, backend: str) -> None:
    assert connect(lab.a, lab.b, "10.31.2.2") == "10.31.1.2"  # routed, unfiltered, no NAT
    IP_FORWARD.write_text("0\n")
    before = _rulesets()
    fw = detect(TABLE, backend)
    assert fw.name == {"nft": "nftables", "iptables": "iptables"}[backend]
    try:
        fw.apply(NETS)
        dump = fw.dump()
        fw.apply(NETS)
        assert fw.dump() == dump  # replaced, not added to
        assert IP_FORWARD.read_text().strip() == "1"
        assert "10.31.1.0/24" in dump and "10.31.2.0/24" in dump
        assert "10.31.3.0/24" not in dump  # the internal network is not masqueraded
        assert "dyf3" in dump and "dyfx" not in dump

        assert connect(lab.a, lab.c, "10.31.1.3") == "10.31.1.2"  # same bridge
        assert blocked(lab.a, lab.b, "10.31.2.2")  # two bridges of ours
        assert blocked(lab.b, lab.a, "10.31.1.2")
        assert connect(lab.a, lab.x, "10.31.4.2") == "10.31.4.1"  # out, masqueraded
        assert blocked(lab.d, lab.x, "10.31.4.2")  # internal: no way out
        assert blocked(lab.x, lab.d, "10.31.3.2")  # ... and no way in
        assert blocked(lab.a, lab.d, "10.31.3.2")
    finally:
        fw.clear()
    assert _rulesets() == before
    assert fw.dump() == ""
    fw.clear()  # idempotent
    assert connect(lab.a, lab.b, "10.31.2.2") == "10.31.1.2"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forward_policy_of_drop_gets_accepts_for_our_bridges(lab: Lab, backend: str) -> None:
    run("iptables", "-w", "-P", "FORWARD", "DROP")
    before = _rulesets()
    assert blocked(lab.a, lab.x, "10.31.4.2")
    fw = detect(TABLE, backend)
    try:
        fw.apply(NETS)
        fw.apply(NETS)
        assert connect(lab.a, lab.x, "10.31.4.2") == "10.31.4.1"
        assert connect(lab.a, lab.c, "10.31.1.3") == "10.31.1.2"
        assert blocked(lab.a, lab.b, "10.31.2.2")  # the accepts never join networks
        assert blocked(lab.d, lab.x, "10.31.4.2")
        accepts = [ln for ln in fw.dump().splitlines() if "-j ACCEPT" in ln]
        assert len(accepts) == 2 * len(NETS)  # one out, one replies-back, per bridge; once

        run("iptables", "-w", "-P", "FORWARD", "ACCEPT")
        fw.apply(NETS)  # the policy is looked at again: accepts no longer needed
        assert "-j ACCEPT" not in fw.dump()
        run("iptables", "-w", "-P", "FORWARD", "DROP")
        fw.apply(NETS)
    finally:
        fw.clear()
    assert _rulesets() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_rules_follow_the_set_of_networks(lab: Lab, backend: str) -> None:
    before = _rulesets()
    fw = detect(TABLE, backend)
    try:
        fw.apply(NETS)
        fw.apply(NETS[:1])
        dump = fw.dump()
        assert "dyf1" in dump and "dyf2" not in dump and "dyf3" not in dump
        assert connect(lab.a, lab.b, "10.31.2.2") is not None  # dyf2 is no longer ours
        fw.apply([])  # no networks: no rules
        assert fw.dump() == ""
    finally:
        fw.clear()
    assert _rulesets() == before


def test_detect_refuses_bad_names_and_falls_back_to_a_noop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="invalid firewall table name"):
        detect("bad-name;flush ruleset")
    with pytest.raises(ValueError, match="unknown firewall backend 'pf'"):
        detect(TABLE, "pf")
    with pytest.raises(ValueError, match=r"invalid subnet '10\.31\.1\.0/33' for dyf1"):
        FirewallNet("dyf1", "10.31.1.0/33")
    with pytest.raises(OSError, match="invalid interface name"):
        FirewallNet("dy-far-too-long-name", "10.31.1.0/24")
    with pytest.raises(ValueError, match="characters a rule cannot carry"):
        FirewallNet('dy"x', "10.31.1.0/24")
    assert isinstance(detect(TABLE, "none"), NoopFirewall)
    monkeypatch.setenv("PATH", str(tmp_path))  # neither nft nor iptables here
    fw = detect(TABLE)
    assert isinstance(fw, NoopFirewall)
    assert "nft" in fw.reason and "iptables" in fw.reason and "not installed" in fw.reason
    fw.apply(NETS)
    assert fw.dump() == ""


def test_on_the_real_host_our_table_comes_and_goes() -> None:
    """nft for real in the machine's own netns: only our table appears, then goes."""
    fw = detect(TABLE, "nft")
    try:
        fw.apply([FirewallNet(f"dyh{os.getpid() % 100000}", "10.252.99.0/30")])
        assert f"table ip {TABLE}" in run("nft", "list", "tables")
    finally:
        fw.clear()
    assert f"table ip {TABLE}" not in run("nft", "list", "tables")
