"""The engine's firewall: which backend this host can run, behind one interface.

`detect(table)` picks nftables when `nft` works here, else iptables, else a
backend that does nothing and says why (a guest kernel without netfilter still
runs containers; they just cannot reach the outside through NAT). Every
backend owns the rules of one engine instance, named by `table`, and nothing
else: `apply` replaces all of them at once, `clear` removes all of them.

Published ports need no rules here: a userland proxy in each container's shim
carries them (see portproxy), so they survive an engine restart untouched.
"""

from __future__ import annotations

import logging
from typing import Protocol

from engine.network.firewall_common import (
    FirewallError,
    FirewallNet,
    check_table,
    ensure_ip_forward,
    run_tool,
)
from engine.network.firewall_iptables import IptablesFirewall
from engine.network.firewall_nft import NftFirewall

__all__ = ["Firewall", "FirewallError", "FirewallNet", "NoopFirewall", "detect"]

log = logging.getLogger("engine.network")

BACKENDS = ("nft", "iptables", "none")


class Firewall(Protocol):
    """One engine instance's NAT and isolation rules."""

    name: str

    def apply(self, nets: list[FirewallNet]) -> None: ...
    def clear(self) -> None: ...
    def dump(self) -> str: ...


class NoopFirewall:
    """No usable netfilter tool: keep forwarding on, make no rules, say why once."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def apply(self, nets: list[FirewallNet]) -> None:
        ensure_ip_forward(nets)

    def clear(self) -> None:
        pass

    def dump(self) -> str:
        return ""


def detect(table: str, backend: str = "") -> Firewall:
    """The first backend that works here, or `backend` ("nft", "iptables", "none") if given.

    Probing runs each tool once (a listing, which changes nothing); it happens
    at engine start, not per container.
    """
    check_table(table)
    if backend and backend not in BACKENDS:
        raise ValueError(f"unknown firewall backend {backend!r}: use one of {', '.join(BACKENDS)}")
    reasons: list[str] = []
    if backend in ("", "nft"):
        why = _probe(["nft", "list", "tables"])
        if not why:
            return NftFirewall(table)
        reasons.append(f"nft: {why}")
    if backend in ("", "iptables"):
        why = _probe(["iptables-save", "-t", "filter"])
        if not why:
            return IptablesFirewall(table)
        reasons.append(f"iptables: {why}")
    reason = "; ".join(reasons) or "disabled by configuration"
    log.warning("no firewall backend (%s): containers get no NAT or network isolation", reason)
    return NoopFirewall(reason)


def _probe(argv: list[str]) -> str:
    """Why `argv` does not work here ("" when it does)."""
    try:
        run_tool(argv)
    except FirewallError as e:
        return e.strerror or str(e)
    return ""
