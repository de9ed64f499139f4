"""The iptables backend, for hosts whose nft does not work: two chains of our own.

`DOCKYARD-<tag>-FWD` (filter) and `DOCKYARD-<tag>-NAT` (nat) hold every rule
of this engine instance; FORWARD and POSTROUTING each get one jump to them,
first in line. `apply` refills both chains in one `iptables-restore --noflush`
(atomic per table), so other tools' chains and rules are never rewritten.

When the filter FORWARD policy is DROP, our chain ends with ACCEPTs for our
bridges (after the isolation DROPs, so they never let two networks talk).
"""

from __future__ import annotations

from engine.network.firewall_common import (
    FirewallNet,
    chain_tag,
    check_table,
    ensure_ip_forward,
    forward_accept_specs,
    forward_policy_drop,
    iptables_save,
    run_tool,
    subnet_of,
)


def forward_rules(chain: str, nets: list[FirewallNet], policy_drop: bool, tag: str) -> list[str]:
    """The filter chain's rules (pure): isolation first, then the DROP-policy accepts."""
    rules: list[str] = []
    open_nets = [n for n in nets if not n.internal]
    for net in nets:
        br = net.bridge
        if net.internal:
            rules.append(f"-A {chain} -i {br} ! -o {br} -j DROP")
            rules.append(f"-A {chain} -o {br} ! -i {br} -j DROP")
    for a in open_nets:
        for b in open_nets:
            if a.bridge != b.bridge:
                rules.append(f"-A {chain} -i {a.bridge} -o {b.bridge} -j DROP")
    if policy_drop:
        rules += [f"-A {chain} {s}" for s in forward_accept_specs(tag, [n.bridge for n in nets])]
    return rules


def nat_rules(chain: str, nets: list[FirewallNet]) -> list[str]:
    masq = [n for n in nets if not n.internal]
    return [f"-A {chain} -s {subnet_of(n)} ! -o {n.bridge} -j MASQUERADE" for n in masq]


class IptablesFirewall:
    """Our own FORWARD and POSTROUTING chains, named after the table."""

    name = "iptables"

    def __init__(self, table: str) -> None:
        self.table = check_table(table)
        self.tag = chain_tag(self.table)
        self.fwd_chain = f"DOCKYARD-{self.tag}-FWD"
        self.nat_chain = f"DOCKYARD-{self.tag}-NAT"

    def apply(self, nets: list[FirewallNet]) -> None:
        """Refill both chains for `nets`, adding the jumps if they are missing."""
        if not nets:
            self.clear()
            return
        ensure_ip_forward(nets)
        filt = iptables_save("filter") or []
        nat = iptables_save("nat") or []
        script = [
            "*filter",
            f":{self.fwd_chain} - [0:0]",
            *forward_rules(self.fwd_chain, nets, forward_policy_drop(filt), self.tag),
            *self._jump(filt, "FORWARD", self.fwd_chain),
            "COMMIT",
            "*nat",
            f":{self.nat_chain} - [0:0]",
            *nat_rules(self.nat_chain, nets),
            *self._jump(nat, "POSTROUTING", self.nat_chain),
            "COMMIT",
        ]
        self._restore(script, "apply")

    @staticmethod
    def _jump(lines: list[str], parent: str, chain: str) -> list[str]:
        jump = f"-A {parent} -j {chain}"
        return [] if jump in lines else [f"-I {parent} 1 -j {chain}"]

    def clear(self) -> None:
        """Remove the jumps and both chains; nothing of ours remains."""
        script: list[str] = []
        for table, parent, chain in (
            ("filter", "FORWARD", self.fwd_chain),
            ("nat", "POSTROUTING", self.nat_chain),
        ):
            lines = iptables_save(table) or []
            if f":{chain} - [0:0]" not in [_zero(line) for line in lines]:
                continue
            jump = f"-A {parent} -j {chain}"
            script.append(f"*{table}")
            script += ["-D" + line[2:] for line in lines if line == jump]
            script += [f":{chain} - [0:0]", f"-X {chain}", "COMMIT"]
        if script:
            self._restore(script, "clear")

    def dump(self) -> str:
        """Our chains, rules and jumps, in iptables-save form."""
        out: list[str] = []
        for table, chain in (("filter", self.fwd_chain), ("nat", self.nat_chain)):
            lines = iptables_save(table) or []
            mine = [_zero(ln) for ln in lines if ln.startswith(f":{chain} ") or chain in ln.split()]
            if mine:
                out += [f"*{table}", *mine]
        return "\n".join(out) + "\n" if out else ""

    def _restore(self, script: list[str], what: str) -> None:
        run_tool(
            ["iptables-restore", "-w", "--noflush"],
            "\n".join(script) + "\n",
            f"{what} chains {self.fwd_chain}, {self.nat_chain}",
        )


def _zero(line: str) -> str:
    """A chain line with its packet counters zeroed, so dumps compare."""
    if line.startswith(":") and line.endswith("]"):
        return line[: line.rindex("[")] + "[0:0]"
    return line
