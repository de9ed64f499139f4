"""Port 53 of 127.0.0.11 redirected to the embedded DNS's own ports, in a container's netns.

Why not listen on 127.0.0.11:53 itself: a socket there takes port 53 from the
container, whose own DNS server (Pi-hole, CoreDNS, dnsmasq, bind) then fails to
bind 0.0.0.0:53 with "Address already in use". Docker listens on two random
ports instead and redirects 53 to them with NAT rules in the container's
netns; this does the same with one nftables table, `ip dockyard_dns`, whose
output chain rewrites the destination of queries to 127.0.0.11:53 (conntrack
rewrites the answers back).

The table is written over netlink, not by running `nft`: this is on the path of
every container start, where a process would cost more than the rest of the
network setup. A container's fresh netns gets the table created (~0.3 ms). Only
when one is there already (a restarted daemon listens on new ports) is it
replaced: deleting rules makes the kernel wait for an RCU grace period (~10 ms).
Either batch is applied whole or not at all.
"""

from __future__ import annotations

import socket
import struct

from engine.network.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    Netlink,
    attr,
    attr_str,
    ipv4_bytes,
)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWTABLE = 0
NFT_MSG_DELTABLE = 2
NFT_MSG_NEWCHAIN = 3
NFT_MSG_NEWRULE = 6
NLM_F_APPEND = 0x800
NLA_F_NESTED = 0x8000
NFPROTO_IPV4 = 2
NF_INET_LOCAL_OUT = 3
NF_ACCEPT = 1
NAT_OUTPUT_PRIORITY = -100  # nftables' "dstnat" for the output hook

# attribute numbers (linux/netfilter/nf_tables.h)
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY = 1, 3, 4, 5
NFTA_CHAIN_TYPE = 7
NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY = 1, 2
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS = 1, 2, 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_DATA_VALUE = 1
NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_OFFSET, NFTA_PAYLOAD_LEN = 1, 2, 3, 4
NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER = 1, 2
NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA = 1, 2, 3
NFT_CMP_EQ = 0
NFTA_META_DREG, NFTA_META_KEY = 1, 2
NFT_META_L4PROTO = 16
NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA = 1, 2
NFTA_NAT_TYPE, NFTA_NAT_FAMILY, NFTA_NAT_REG_ADDR_MIN, NFTA_NAT_REG_PROTO_MIN = 1, 2, 3, 5
NFT_NAT_DNAT = 1
NFT_REG_1, NFT_REG_2 = 1, 2

TABLE = "dockyard_dns"
CHAIN = "output"
DNS_PORT = 53


def redirect(address: str, udp_port: int, tcp_port: int) -> None:
    """In the calling thread's netns: `address`:53 over UDP goes to `udp_port`, over
    TCP to `tcp_port`, both on `address`. OSError (with the kernel's reason) if the
    kernel has no nftables NAT; nothing is changed then."""
    ip = ipv4_bytes(address)
    table = attr_str(NFTA_TABLE_NAME, TABLE)
    append = NLM_F_CREATE | NLM_F_APPEND
    content = [
        _msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE, _nat_output_chain()),
        _msg(NFT_MSG_NEWRULE, append, _dnat_rule(ip, socket.IPPROTO_UDP, udp_port)),
        _msg(NFT_MSG_NEWRULE, append, _dnat_rule(ip, socket.IPPROTO_TCP, tcp_port)),
    ]
    what = f"redirect {address}:{DNS_PORT} to the embedded DNS (nftables NAT)"
    try:
        _apply([_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, table), *content], what)
    except FileExistsError:
        replace = [
            _msg(NFT_MSG_NEWTABLE, NLM_F_CREATE, table),  # so the delete finds it
            _msg(NFT_MSG_DELTABLE, 0, table),
            _msg(NFT_MSG_NEWTABLE, NLM_F_CREATE, table),
        ]
        _apply([*replace, *content], what)


def _apply(batch: list[tuple[int, int, bytes]], what: str) -> None:
    begin_end = _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES)
    with Netlink(NETLINK_NETFILTER) as nl:
        nl.transaction(
            [(NFNL_MSG_BATCH_BEGIN, 0, begin_end), *batch, (NFNL_MSG_BATCH_END, 0, begin_end)],
            what,
        )


def _nfgen(family: int, res_id: int = 0) -> bytes:
    return struct.pack("!BBH", family, 0, res_id)


def _msg(kind: int, flags: int, attrs: bytes) -> tuple[int, int, bytes]:
    return (NFNL_SUBSYS_NFTABLES << 8) | kind, flags | NLM_F_ACK, _nfgen(NFPROTO_IPV4) + attrs


def _nested(kind: int, payload: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, payload)


def _be32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!i" if value < 0 else "!I", value))


def _nat_output_chain() -> bytes:
    hook = _be32(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT) + _be32(
        NFTA_HOOK_PRIORITY, NAT_OUTPUT_PRIORITY
    )
    return (
        attr_str(NFTA_CHAIN_TABLE, TABLE)
        + attr_str(NFTA_CHAIN_NAME, CHAIN)
        + _nested(NFTA_CHAIN_HOOK, hook)
        + _be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
        + attr_str(NFTA_CHAIN_TYPE, "nat")
    )


def _dnat_rule(ip: bytes, proto: int, port: int) -> bytes:
    """`ip daddr IP meta l4proto PROTO th dport 53 dnat to IP:port`."""
    exprs = [
        _payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),  # IPv4 destination address
        _cmp(ip),
        _expr("meta", _be32(NFTA_META_DREG, NFT_REG_1) + _be32(NFTA_META_KEY, NFT_META_L4PROTO)),
        _cmp(bytes([proto])),
        _payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),  # destination port
        _cmp(struct.pack("!H", DNS_PORT)),
        _immediate(NFT_REG_1, ip),
        _immediate(NFT_REG_2, struct.pack("!H", port)),
        _expr(
            "nat",
            _be32(NFTA_NAT_TYPE, NFT_NAT_DNAT)
            + _be32(NFTA_NAT_FAMILY, NFPROTO_IPV4)
            + _be32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1)
            + _be32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2),
        ),
    ]
    return (
        attr_str(NFTA_RULE_TABLE, TABLE)
        + attr_str(NFTA_RULE_CHAIN, CHAIN)
        + _nested(NFTA_RULE_EXPRESSIONS, b"".join(_nested(NFTA_LIST_ELEM, e) for e in exprs))
    )


def _expr(name: str, data: bytes) -> bytes:
    return attr_str(NFTA_EXPR_NAME, name) + _nested(NFTA_EXPR_DATA, data)


def _payload(base: int, offset: int, length: int) -> bytes:
    return _expr(
        "payload",
        _be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
        + _be32(NFTA_PAYLOAD_BASE, base)
        + _be32(NFTA_PAYLOAD_OFFSET, offset)
        + _be32(NFTA_PAYLOAD_LEN, length),
    )


def _cmp(value: bytes) -> bytes:
    data = _nested(NFTA_CMP_DATA, attr(NFTA_DATA_VALUE, value))
    return _expr("cmp", _be32(NFTA_CMP_SREG, NFT_REG_1) + _be32(NFTA_CMP_OP, NFT_CMP_EQ) + data)


def _immediate(reg: int, value: bytes) -> bytes:
    data = _nested(NFTA_IMMEDIATE_DATA, attr(NFTA_DATA_VALUE, value))
    return _expr("immediate", _be32(NFTA_IMMEDIATE_DREG, reg) + data)
