"""The nftables backend: one table per engine instance, replaced in one transaction.

Each `apply` feeds `nft -f -` a script that declares the table, deletes it and
defines it again, so the kernel swaps the old rules for the new ones
atomically: no moment with half the rules, and nothing left over from a
network that was removed. Other tables (the host's, iptables-nft's, another
engine's) are never named, so they are never touched.
"""

from __future__ import annotations

from engine.network.firewall_common import (
    FirewallError,
    FirewallNet,
    chain_tag,
    check_table,
    ensure_ip_forward,
    forward_accepts_dump,
    run_tool,
    subnet_of,
    sync_forward_accepts,
)

_NAT_HOOK = "priority srcnat; policy accept;"
_FILTER_HOOK = "priority filter; policy accept;"


def ruleset(table: str, nets: list[FirewallNet]) -> str:
    """The whole `nft -f` script for these networks (pure, for tests and dump)."""
    lines = [f"add table ip {table}", f"delete table ip {table}", f"table ip {table} {{"]
    lines += ["\tchain postrouting {", f"\t\ttype nat hook postrouting {_NAT_HOOK}"]
    for net in nets:
        if not net.internal:
            lines.append(f'\t\tip saddr {subnet_of(net)} oifname != "{net.bridge}" masquerade')
    lines += ["\t}", "\tchain forward {", f"\t\ttype filter hook forward {_FILTER_HOOK}"]
    lines += _forward_rules(nets)
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def _forward_rules(nets: list[FirewallNet]) -> list[str]:
    rules: list[str] = []
    bridges = [n.bridge for n in nets]
    for net in nets:
        br = net.bridge
        if net.internal:
            rules.append(f'\t\tiifname "{br}" oifname != "{br}" drop')
            rules.append(f'\t\toifname "{br}" iifname != "{br}" drop')
            continue
        others = [b for b in bridges if b != br]
        if others:
            names = ", ".join(f'"{b}"' for b in others)
            rules.append(f'\t\tiifname "{br}" oifname {{ {names} }} drop')
    return rules


class NftFirewall:
    """`table ip <table>` owned by this engine instance."""

    name = "nftables"

    def __init__(self, table: str) -> None:
        self.table = check_table(table)

    def apply(self, nets: list[FirewallNet]) -> None:
        """Replace all of this instance's rules with the ones for `nets`."""
        if not nets:
            self.clear()
            return
        ensure_ip_forward(nets)
        run_tool(["nft", "-f", "-"], ruleset(self.table, nets), f"apply table ip {self.table}")
        sync_forward_accepts(chain_tag(self.table), [n.bridge for n in nets])

    def clear(self) -> None:
        """Delete the table (and any FORWARD accepts); nothing of ours remains."""
        sync_forward_accepts(chain_tag(self.table), [])
        script = f"add table ip {self.table}\ndelete table ip {self.table}\n"
        run_tool(["nft", "-f", "-"], script, f"delete table ip {self.table}")

    def dump(self) -> str:
        """Our table as `nft list table` prints it, then any iptables FORWARD
        accepts of ours; "" when there is neither."""
        try:
            text = run_tool(["nft", "list", "table", "ip", self.table])
        except FirewallError:
            text = ""
        accepts = forward_accepts_dump(chain_tag(self.table))
        if accepts:
            text += "\n".join(["# iptables", "*filter", *accepts]) + "\n"
        return text
