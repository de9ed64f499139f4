"""What every firewall backend shares: the per-network input, the tool runner,
IP forwarding, and the iptables FORWARD policy check.

The rules themselves are simple and the same for every backend:
- a non-internal network's subnet is masqueraded when it leaves its bridge;
- traffic between two different bridges of this engine is dropped (networks
  are isolated from each other, as Docker's are);
- an internal network's bridge talks only to itself, in both directions.
Everything else (replies, traffic to the host, to the outside) is left to the
host's own policy.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.network.netlink import check_ifname

log = logging.getLogger("engine.network")

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class FirewallError(OSError):
    """A firewall tool refused our rules; the message carries its own words."""


@dataclass(frozen=True)
class FirewallNet:
    """One bridge network as the firewall sees it."""

    bridge: str  # Linux bridge device
    subnet: str  # "172.18.0.0/16"
    internal: bool = False

    def __post_init__(self) -> None:
        check_ifname(self.bridge)
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", self.bridge):
            raise ValueError(f"bridge name {self.bridge!r} has characters a rule cannot carry")
        try:
            ipaddress.IPv4Network(self.subnet, strict=False)
        except ValueError as e:
            raise ValueError(f"invalid subnet {self.subnet!r} for {self.bridge}: {e}") from None


def check_table(table: str) -> str:
    """The engine instance's firewall name: a letter, then letters, digits, '_'."""
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(
            f"invalid firewall table name {table!r}: use up to 32 letters, digits or '_',"
            " starting with a letter"
        )
    return table


def chain_tag(table: str) -> str:
    """A short form of the table name for iptables chain names (28-byte limit)."""
    if len(table) <= 15:
        return table
    return table[:9] + hashlib.sha256(table.encode()).hexdigest()[:6]


def subnet_of(net: FirewallNet) -> str:
    return str(ipaddress.IPv4Network(net.subnet, strict=False))


def run_tool(argv: list[str], stdin: str = "", what: str = "") -> str:
    """Run a firewall tool; its stdout, or FirewallError with its stderr."""
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, check=False, close_fds=True
        )
    except FileNotFoundError:
        raise FirewallError(errno.ENOENT, f"{argv[0]} is not installed") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise FirewallError(errno.EIO, f"{what or ' '.join(argv)}: {argv[0]} failed: {detail}")
    return proc.stdout


def ensure_ip_forward(nets: list[FirewallNet]) -> None:
    """Turn on IPv4 forwarding when some network is meant to reach the outside.

    Without it a non-internal network's traffic stops at its bridge. It is
    never turned off again: other software on the host may rely on it by then.
    """
    if not any(not n.internal for n in nets):
        return
    try:
        if IP_FORWARD.read_text().strip() == "1":
            return
        IP_FORWARD.write_text("1\n")
    except OSError as e:
        log.warning("cannot enable net.ipv4.ip_forward (%s): containers cannot reach out", e)
        return
    log.info("enabled net.ipv4.ip_forward so bridge networks can reach the outside")


def iptables_save(table: str) -> list[str] | None:
    """`iptables-save -t table` lines; None when iptables is not there or refuses."""
    try:
        return run_tool(["iptables-save", "-t", table]).splitlines()
    except FirewallError:
        return None


def forward_policy_drop(filter_lines: list[str]) -> bool:
    """True when the filter table's FORWARD chain drops by default.

    Another tool (an older Docker, a hardening script, ufw) may have set it;
    then our bridges' traffic needs explicit ACCEPTs in iptables, because an
    accept in our own table cannot overrule a drop in another one.
    """
    return any(line.startswith(":FORWARD DROP") for line in filter_lines)


def forward_accept_specs(tag: str, bridges: list[str]) -> list[str]:
    """ACCEPTs for our bridges in a FORWARD chain whose policy is DROP, as
    iptables-save prints them: out of a bridge, and replies back into it."""
    mark = f'-m comment --comment "dockyard:{tag}"'
    specs: list[str] = []
    for br in bridges:
        specs.append(f"-i {br} {mark} -j ACCEPT")
        specs.append(f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED {mark} -j ACCEPT")
    return specs


def sync_forward_accepts(tag: str, bridges: list[str]) -> None:
    """Keep iptables' FORWARD ACCEPTs for our bridges exactly when its policy is DROP.

    Looked at on every apply; rules of ours that are no longer wanted (policy
    back to ACCEPT, bridge gone) are deleted. Nothing is touched when iptables
    is missing or its filter table holds nothing (policy ACCEPT).
    """
    lines = iptables_save("filter")
    if lines is None:
        return
    want = [f"-A FORWARD {spec}" for spec in forward_accept_specs(tag, bridges)]
    if not forward_policy_drop(lines):
        want = []
    have = [line for line in lines if _ours(line, tag)]
    if have == want:
        return
    script = ["*filter"]
    script += ["-D" + line[2:] for line in have]
    script += [f"-I FORWARD {i} {line[len('-A FORWARD ') :]}" for i, line in enumerate(want, 1)]
    script.append("COMMIT")
    run_tool(["iptables-restore", "-w", "--noflush"], "\n".join(script) + "\n", "FORWARD accepts")
    if want:
        log.info("iptables FORWARD policy is DROP: accepted traffic of bridges %s", bridges)


def forward_accepts_dump(tag: str) -> list[str]:
    """Our FORWARD accepts as iptables-save prints them ([] when there are none)."""
    return [line for line in iptables_save("filter") or [] if _ours(line, tag)]


def _ours(line: str, tag: str) -> bool:
    return line.startswith("-A FORWARD ") and f'--comment "dockyard:{tag}" ' in line
