"""The firewall's pure halves: the nft script and the iptables chains for a set of networks."""

from __future__ import annotations

import pytest

from engine.network.firewall_common import FirewallNet, chain_tag, check_table
from engine.network.firewall_iptables import forward_rules, nat_rules
from engine.network.firewall_nft import ruleset

OPEN1 = FirewallNet("dy-a", "172.18.0.0/16")
OPEN2 = FirewallNet("dy-b", "172.19.0.5/16")  # host bits are dropped
INTERNAL = FirewallNet("dy-c", "172.20.0.0/16", internal=True)


def test_nft_script_replaces_the_table_in_one_transaction() -> None:
    script = ruleset("dy", [OPEN1, OPEN2, INTERNAL]).splitlines()
    assert script[:3] == ["add table ip dy", "delete table ip dy", "table ip dy {"]
    rules = [line.strip() for line in script]
    assert 'ip saddr 172.18.0.0/16 oifname != "dy-a" masquerade' in rules
    assert 'ip saddr 172.19.0.0/16 oifname != "dy-b" masquerade' in rules
    assert not any("172.20.0.0" in r for r in rules)
    assert 'iifname "dy-a" oifname { "dy-b", "dy-c" } drop' in rules
    assert 'iifname "dy-c" oifname != "dy-c" drop' in rules
    assert 'oifname "dy-c" iifname != "dy-c" drop' in rules


def test_a_single_open_network_has_nothing_to_be_isolated_from() -> None:
    rules = ruleset("t", [OPEN1])
    assert "drop" not in rules and "masquerade" in rules


def test_iptables_chains_isolate_pairs_and_accept_only_under_a_drop_policy() -> None:
    nets = [OPEN1, OPEN2, INTERNAL]
    plain = forward_rules("FWD", nets, policy_drop=False, tag="t")
    assert plain == [
        "-A FWD -i dy-c ! -o dy-c -j DROP",
        "-A FWD -o dy-c ! -i dy-c -j DROP",
        "-A FWD -i dy-a -o dy-b -j DROP",
        "-A FWD -i dy-b -o dy-a -j DROP",
    ]
    dropping = forward_rules("FWD", nets, policy_drop=True, tag="t")
    assert dropping[: len(plain)] == plain  # isolation always comes first
    assert len(dropping) == len(plain) + 2 * len(nets)
    assert all('--comment "dockyard:t"' in r for r in dropping[len(plain) :])
    assert nat_rules("NAT", nets) == [
        "-A NAT -s 172.18.0.0/16 ! -o dy-a -j MASQUERADE",
        "-A NAT -s 172.19.0.0/16 ! -o dy-b -j MASQUERADE",
    ]


def test_names() -> None:
    assert chain_tag("dockyard") == "dockyard"
    long = chain_tag("dockyard_some_long_bridge")
    assert len(long) == 15 and long != chain_tag("dockyard_some_long_bridgf")
    assert len(f"DOCKYARD-{long}-FWD") <= 28
    assert check_table("dockyard_dy0") == "dockyard_dy0"
    for bad in ["", "1abc", "a-b", "a b", "x" * 33]:
        with pytest.raises(ValueError, match="invalid firewall table name"):
            check_table(bad)
