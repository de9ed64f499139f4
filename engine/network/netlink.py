"""A small rtnetlink client: links, addresses and routes without an `ip` subprocess.

Container start sits on this path, and forking `ip` a handful of times per
container would cost more than the whole rest of the start. The kernel speaks
rtnetlink over a plain `AF_NETLINK` socket, so `struct` is all it takes.

A socket is bound to the network namespace of the thread that made it, for its
whole life: open one inside `netns.entered(...)` to talk to that namespace,
then use it from anywhere. Every request asks for an ACK, and a refusal raises
`OSError` carrying the kernel's errno, what was being done, to which interface,
and the kernel's own explanation when it gives one (extended ACK).
"""

from __future__ import annotations

import errno as _errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# message types
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25

# header flags
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # on an NLMSG_ERROR: extended-ACK attributes follow
NLMSGERR_ATTR_MSG = 1

# link attributes
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFF_UP = 0x1
IF_OPER_UP = 6  # RFC 2863 operational state: passes traffic

# address and route attributes
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

IFNAMSIZ = 16  # names are at most 15 bytes plus the NUL

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
)  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_RTATTR = struct.Struct("=HH")  # len, type


@dataclass(frozen=True)
class Link:
    """What a link dump says about one interface (only what the engine reads)."""

    index: int
    name: str
    kind: str  # "bridge", "veth", ... ; "" for a physical or unknown device
    master: int  # index of the bridge this link is enslaved to; 0 if none
    flags: int
    mtu: int
    mac: str
    operstate: int = 0

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def operational(self) -> bool:
        """The kernel has seen its carrier and activated its queue: until then,
        packets sent through it are dropped, not queued."""
        return self.operstate == IF_OPER_UP


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr: header, payload, padding to 4 bytes."""
    size = _RTATTR.size + len(payload)
    return _RTATTR.pack(size, kind) + payload + b"\0" * (_align(size) - size)


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Attributes by type (the last one wins; the engine never asks for repeats)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + _RTATTR.size <= len(data):
        size, kind = _RTATTR.unpack_from(data, pos)
        if size < _RTATTR.size:
            break
        out[kind & 0x3FFF] = data[pos + _RTATTR.size : pos + size]  # drop NLA_F_NESTED & co
        pos += _align(size)
    return out


def check_ifname(name: str) -> bytes:
    """The name as the kernel takes it, or EINVAL naming the rule it breaks."""
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ or b"/" in raw or b"\0" in raw or raw.isspace():
        raise OSError(
            _errno.EINVAL,
            f"invalid interface name {name!r}: use 1 to {IFNAMSIZ - 1} bytes, no '/' or spaces",
        )
    return raw


def mac_bytes(mac: str) -> bytes:
    try:
        raw = bytes(int(part, 16) for part in mac.split(":"))
    except ValueError:
        raw = b""
    if len(raw) != 6:
        raise OSError(
            _errno.EINVAL, f"invalid MAC address {mac!r}: use six hex pairs like 02:42:ac:11:00:02"
        )
    return raw


def ipv4_bytes(ip: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET, ip)
    except OSError:
        raise OSError(_errno.EINVAL, f"invalid IPv4 address {ip!r}") from None


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def _link_from(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload[_IFINFOMSG.size :])
    kind = parse_attrs(attrs.get(IFLA_LINKINFO, b"")).get(IFLA_INFO_KIND, b"")
    mac = attrs.get(IFLA_ADDRESS, b"")
    return Link(
        index=index,
        name=attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace"),
        kind=kind.rstrip(b"\0").decode(errors="replace"),
        master=struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0,
        flags=flags,
        mtu=struct.unpack("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0,
        mac=":".join(f"{b:02x}" for b in mac),
        operstate=attrs[IFLA_OPERSTATE][0] if IFLA_OPERSTATE in attrs else 0,
    )


class Netlink:
    """One NETLINK_ROUTE socket, in the netns of the thread that opened it.

    Not thread-safe: give each thread (or each operation) its own; they are
    cheap (one socket(2) and one bind(2)).
    """

    def __init__(self, protocol: int = NETLINK_ROUTE) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol
        )
        try:
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:
            pass  # older kernels: errors come without the kernel's message
        self._sock.bind((0, 0))
        self._seq = itertools.count(1)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------

    def _frame(self, kind: int, flags: int, payload: bytes) -> tuple[int, bytes]:
        """(its sequence number, one request message padded to 4 bytes)."""
        seq = next(self._seq)
        size = _NLMSGHDR.size + len(payload)
        header = _NLMSGHDR.pack(size, kind, flags | NLM_F_REQUEST, seq, 0)
        return seq, header + payload + b"\0" * (_align(size) - size)

    def _send(self, kind: int, flags: int, payload: bytes) -> int:
        seq, frame = self._frame(kind, flags, payload)
        self._sock.send(frame)
        return seq

    def _replies(self, seq: int) -> Iterator[tuple[int, int, bytes]]:
        """(type, flags, payload) of each reply to `seq`, up to the ACK or DONE."""
        while True:
            data = self._sock.recv(1 << 16)
            pos = 0
            while pos + _NLMSGHDR.size <= len(data):
                size, kind, flags, mseq, _pid = _NLMSGHDR.unpack_from(data, pos)
                payload = data[pos + _NLMSGHDR.size : pos + size]
                pos += _align(size)
                if mseq != seq:
                    continue  # a late answer to an earlier request; not ours now
                yield kind, flags, payload
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return

    def transaction(self, messages: list[tuple[int, int, bytes]], what: str) -> None:
        """Send (type, flags, payload) messages in one datagram, as a netfilter batch is
        sent; wait for the ACK of each one that asks for it (NLM_F_ACK); raise the first
        NACK. The kernel applies such a batch whole or not at all."""
        frames, pending = b"", set()
        for kind, flags, payload in messages:
            seq, frame = self._frame(kind, flags, payload)
            frames += frame
            if flags & NLM_F_ACK:
                pending.add(seq)
        self._sock.send(frames)
        while pending:
            data = self._sock.recv(1 << 16)
            pos = 0
            while pos + _NLMSGHDR.size <= len(data):
                size, kind, flags, mseq, _pid = _NLMSGHDR.unpack_from(data, pos)
                if kind == NLMSG_ERROR and mseq in pending:
                    _raise_nack(data[pos + _NLMSGHDR.size : pos + size], flags, what)
                    pending.discard(mseq)
                pos += _align(size)

    def request(self, kind: int, flags: int, payload: bytes, what: str) -> list[bytes]:
        """Send one request; return the payloads of the data replies; raise on a NACK."""
        seq = self._send(kind, flags | NLM_F_ACK, payload)
        out: list[bytes] = []
        for rkind, rflags, body in self._replies(seq):
            if rkind == NLMSG_ERROR:
                _raise_nack(body, rflags, what)
            elif rkind != NLMSG_DONE:
                out.append(body)
        return out

    # -- links ---------------------------------------------------------------

    def links(self) -> list[Link]:
        return [
            _link_from(p) for p in self.request(RTM_GETLINK, NLM_F_DUMP, ifinfo(), "list links")
        ]

    def link(self, name: str) -> Link | None:
        """The link called `name`, or None when there is none."""
        payload = ifinfo() + attr(IFLA_IFNAME, check_ifname(name) + b"\0")
        try:
            replies = self.request(RTM_GETLINK, 0, payload, f"look up {name}")
        except OSError as e:
            if e.errno == _errno.ENODEV:
                return None
            raise
        return _link_from(replies[0]) if replies else None

    def require_link(self, name: str) -> Link:
        found = self.link(name)
        if found is None:
            raise OSError(_errno.ENODEV, f"no network interface named {name!r}")
        return found

    def create_bridge(self, name: str, mtu: int, mac: str = "", up: bool = True) -> None:
        attrs = attr(IFLA_IFNAME, check_ifname(name) + b"\0") + attr_u32(IFLA_MTU, mtu)
        if mac:
            attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
        attrs += attr(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
        self._new_link(attrs, up, f"create bridge {name}")

    def create_veth(
        self,
        name: str,
        peer: str,
        *,
        peer_netns_fd: int = -1,
        master: int = 0,
        mtu: int = 0,
        peer_mac: str = "",
        up: bool = True,
    ) -> None:
        """One veth pair; the peer is born in `peer_netns_fd`'s netns (so its name
        never meets the host's own eth0) with its MAC set, but down."""
        peer_attrs = attr(IFLA_IFNAME, check_ifname(peer) + b"\0")
        if peer_mac:
            peer_attrs += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        if mtu:
            peer_attrs += attr_u32(IFLA_MTU, mtu)
        if peer_netns_fd >= 0:
            peer_attrs += attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        # The peer cannot be born up: the kernel opens it before the pair is
        # joined (ENOTCONN). Bring it up afterwards, from its own netns.
        peer_msg = attr(VETH_INFO_PEER, ifinfo() + peer_attrs)
        linkinfo = attr_str(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, peer_msg)
        attrs = attr(IFLA_IFNAME, check_ifname(name) + b"\0")
        if mtu:
            attrs += attr_u32(IFLA_MTU, mtu)
        if master:
            attrs += attr_u32(IFLA_MASTER, master)
        attrs += attr(IFLA_LINKINFO, linkinfo)
        self._new_link(attrs, up, f"create veth {name}")

    def _new_link(self, attrs: bytes, up: bool, what: str) -> None:
        """Create the link `attrs` describe; an existing one of that name is an error
        (EEXIST), never silently reused."""
        flags = IFF_UP if up else 0
        self.request(
            RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo(flags=flags, change=IFF_UP) + attrs, what
        )

    def set_link(
        self,
        index: int,
        *,
        up: bool | None = None,
        mtu: int = 0,
        master: int | None = None,
        name: str = "",
        mac: str = "",
        netns_fd: int = -1,
        label: str = "",
    ) -> None:
        """Change what is given, leave the rest; `label` names the link in errors."""
        attrs = b""
        if name:
            attrs += attr(IFLA_IFNAME, check_ifname(name) + b"\0")
        if mtu:
            attrs += attr_u32(IFLA_MTU, mtu)
        if master is not None:
            attrs += attr_u32(IFLA_MASTER, master)
        if mac:
            attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
        if netns_fd >= 0:
            attrs += attr_u32(IFLA_NET_NS_FD, netns_fd)
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        what = f"configure {label or f'link #{index}'}"
        self.request(RTM_NEWLINK, 0, ifinfo(index, flags, change) + attrs, what)

    def delete_link(self, name: str) -> bool:
        """Delete `name` (a veth takes its peer along); False if it was not there."""
        payload = ifinfo() + attr(IFLA_IFNAME, check_ifname(name) + b"\0")
        try:
            self.request(RTM_DELLINK, 0, payload, f"delete {name}")
        except OSError as e:
            if e.errno == _errno.ENODEV:
                return False
            raise
        return True

    # -- addresses and routes ------------------------------------------------

    def add_address(self, index: int, ip: str, prefix_len: int, label: str = "") -> None:
        """Add ip/prefix_len (with its broadcast); adding it again is not an error."""
        raw = ipv4_bytes(ip)
        if not 0 < prefix_len <= 32:
            raise OSError(_errno.EINVAL, f"invalid prefix length /{prefix_len} for {ip}")
        host_mask = (1 << (32 - prefix_len)) - 1
        brd = struct.pack("!I", struct.unpack("!I", raw)[0] | host_mask)
        payload = _IFADDRMSG.pack(socket.AF_INET, prefix_len, 0, RT_SCOPE_UNIVERSE, index)
        payload += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
        if prefix_len < 31:
            payload += attr(IFA_BROADCAST, brd)
        what = f"add address {ip}/{prefix_len} to {label or f'link #{index}'}"
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, payload, what)

    def addresses(self, index: int) -> list[tuple[str, int]]:
        """(ip, prefix_len) of each IPv4 address on link `index`."""
        out: list[tuple[str, int]] = []
        dump = _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        for body in self.request(RTM_GETADDR, NLM_F_DUMP, dump, "list addresses"):
            _fam, plen, _fl, _scope, idx = _IFADDRMSG.unpack_from(body)
            local = parse_attrs(body[_IFADDRMSG.size :]).get(IFA_LOCAL)
            if idx == index and local is not None:
                out.append((socket.inet_ntop(socket.AF_INET, local), plen))
        return out

    def replace_default_route(self, index: int, gateway: str, label: str = "") -> None:
        """The main table's default route, via `gateway` on link `index` (replacing any)."""
        payload = _RTMSG.pack(
            socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
        )
        payload += attr(RTA_GATEWAY, ipv4_bytes(gateway)) + attr_u32(RTA_OIF, index)
        what = f"add default route via {gateway} on {label or f'link #{index}'}"
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, payload, what)


def _raise_nack(body: bytes, flags: int, what: str) -> None:
    """An NLMSG_ERROR with error 0 is the ACK; anything else becomes an OSError."""
    (err,) = struct.unpack_from("=i", body)
    if err == 0:
        return
    code = -err
    message = f"{what}: {os.strerror(code)}"
    if flags & NLM_F_ACK_TLVS:
        # With NETLINK_CAP_ACK the echoed request is only its header.
        tlvs = parse_attrs(body[4 + _NLMSGHDR.size :])
        detail = tlvs.get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0").decode(errors="replace")
        if detail:
            message += f" ({detail})"
    raise OSError(code, message)
