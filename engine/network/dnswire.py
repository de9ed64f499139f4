"""DNS messages on the wire (RFC 1035): what the embedded resolver reads and writes.

The embedded DNS answers containers' names itself and relays everything else
byte for byte, so this module needs only: the header, the question, the record
types it answers or inspects (A, AAAA, CNAME, PTR; the names inside NS, MX and
SOA data are expanded too, so a parsed record never holds a compression pointer
into a message it no longer belongs to), EDNS's OPT record (kept, so a reply can
tell a client which UDP size we accept) and truncation for UDP. Every malformed
input raises `Malformed`, the one error a server catches to drop a packet.

Names are `str`, dotted, without the trailing dot ("" is the root). Label bytes
are decoded as latin-1 with "." and "\\" escaped, so any name round-trips
exactly, case included (clients that randomise case check the echo).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field, replace

A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
MX = 15
TXT = 16
AAAA = 28
OPT = 41
ANY = 255
CLASS_IN = 1

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
OPCODE_QUERY = 0

UDP_LIMIT = 512  # RFC 1035's UDP size when the query carries no EDNS
EDNS_SIZE = 1232  # the UDP size we advertise: fits any path MTU without fragments
MAX_UDP = 4096  # never answer a larger UDP datagram, whatever a client offers
MAX_NAME = 255
MAX_LABEL = 63

_HEADER = struct.Struct(">HHHHHH")
_QFIXED = struct.Struct(">HH")
_RFIXED = struct.Struct(">HHIH")
_NAME_ONLY = (NS, CNAME, PTR)


class Malformed(ValueError):
    """The bytes are not a DNS message we can read; the server drops them."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    """One resource record; for OPT, `rclass` is the UDP size and `ttl` the extended flags."""

    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes

    def address(self) -> str:
        """The IP address an A or AAAA record holds."""
        if self.rtype == A and len(self.rdata) == 4:
            return str(ipaddress.IPv4Address(self.rdata))
        if self.rtype == AAAA and len(self.rdata) == 16:
            return str(ipaddress.IPv6Address(self.rdata))
        raise Malformed(f"record type {self.rtype} with {len(self.rdata)} bytes is no address")

    def target(self) -> str:
        """The name a CNAME, PTR or NS record points at."""
        if self.rtype not in _NAME_ONLY:
            raise Malformed(f"record type {self.rtype} holds no single name")
        name, _ = read_name(self.rdata, 0)
        return name


@dataclass
class Message:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def edns(self) -> Record | None:
        return next((r for r in self.additional if r.rtype == OPT), None)


# --- names -------------------------------------------------------------------


def _decode_label(raw: bytes) -> str:
    return raw.decode("latin-1").replace("\\", "\\\\").replace(".", "\\.")


def split_name(name: str) -> list[bytes]:
    """The labels of a dotted name (escapes undone); a trailing dot is allowed."""
    if name in ("", "."):
        return []
    labels: list[bytes] = []
    cur: list[str] = []
    chars = iter(name)
    for ch in chars:
        if ch == "\\":
            cur.append(next(chars, "\\"))
        elif ch == ".":
            labels.append("".join(cur).encode("latin-1"))
            cur = []
        else:
            cur.append(ch)
    if cur:
        labels.append("".join(cur).encode("latin-1"))
    if any(not label or len(label) > MAX_LABEL for label in labels):
        raise Malformed(f"bad name {name!r}: empty label or label over {MAX_LABEL} bytes")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise Malformed(f"bad name {name!r}: longer than {MAX_NAME} bytes")
    return labels


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at `pos` and the offset just past it, following compression pointers.

    Each pointer must point before the previous one's target (compressors only
    point back at names already written), which rules out loops; the expanded
    name is held to 255 bytes.
    """
    labels: list[str] = []
    end = -1
    size = 1
    ceiling = pos
    while True:
        if pos >= len(data):
            raise Malformed("name runs past the end of the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise Malformed("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= ceiling:
                raise Malformed("compression pointer does not point backwards")
            end = pos + 2 if end < 0 else end
            pos = ceiling = target
            continue
        if length & 0xC0:
            raise Malformed(f"unknown label type 0x{length:02x}")
        if length == 0:
            return ".".join(labels), (pos + 1 if end < 0 else end)
        size += length + 1
        if size > MAX_NAME or pos + 1 + length > len(data):
            raise Malformed("name too long or past the end of the message")
        labels.append(_decode_label(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length


class _Writer:
    """Appends a message's sections, compressing names against earlier ones."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._offsets: dict[tuple[bytes, ...], int] = {}

    def name(self, name: str) -> None:
        labels = split_name(name)
        for i in range(len(labels)):
            key = tuple(labels[i:])  # exact case: a pointer must not change a name's case
            if key in self._offsets:
                self.buf += struct.pack(">H", 0xC000 | self._offsets[key])
                return
            if len(self.buf) < 0x4000:
                self._offsets[key] = len(self.buf)
            self.buf += bytes([len(labels[i])]) + labels[i]
        self.buf.append(0)

    def question(self, q: Question) -> None:
        self.name(q.name)
        self.buf += _QFIXED.pack(q.qtype, q.qclass)

    def record(self, r: Record) -> None:
        self.name(r.name)
        self.buf += _RFIXED.pack(r.rtype, r.rclass, r.ttl, len(r.rdata)) + r.rdata


def encode_name(name: str) -> bytes:
    """A name in uncompressed wire form, as record data holds it."""
    return b"".join(bytes([len(label)]) + label for label in split_name(name)) + b"\0"


# --- parsing ------------------------------------------------------------------


def _read_question(data: bytes, pos: int) -> tuple[Question, int]:
    name, pos = read_name(data, pos)
    if pos + _QFIXED.size > len(data):
        raise Malformed("truncated question")
    qtype, qclass = _QFIXED.unpack_from(data, pos)
    return Question(name, qtype, qclass), pos + _QFIXED.size


def _expand_rdata(data: bytes, rtype: int, start: int, end: int) -> bytes:
    """Record data with its embedded names decompressed, so it stands on its own."""
    if rtype in _NAME_ONLY:
        name, after = read_name(data, start)
        fixed = b""
    elif rtype == MX:
        name, after = read_name(data, start + 2)
        fixed = data[start : start + 2]
    elif rtype == SOA:
        mname, pos = read_name(data, start)
        rname, pos = read_name(data, pos)
        if pos + 20 != end:
            raise Malformed("SOA data has the wrong length")
        return encode_name(mname) + encode_name(rname) + data[pos:end]
    else:
        return data[start:end]
    if after != end:
        raise Malformed(f"record type {rtype} data has the wrong length")
    return fixed + encode_name(name)


def _read_record(data: bytes, pos: int) -> tuple[Record, int]:
    name, pos = read_name(data, pos)
    if pos + _RFIXED.size > len(data):
        raise Malformed("truncated record")
    rtype, rclass, ttl, rdlength = _RFIXED.unpack_from(data, pos)
    start = pos + _RFIXED.size
    end = start + rdlength
    if end > len(data):
        raise Malformed("record data runs past the end of the message")
    return Record(name, rtype, rclass, ttl, _expand_rdata(data, rtype, start, end)), end


def parse_header(data: bytes) -> tuple[int, int, tuple[int, int, int, int]]:
    """(id, flags, (qdcount, ancount, nscount, arcount)) of a message."""
    if len(data) < _HEADER.size:
        raise Malformed(f"{len(data)} bytes is shorter than a DNS header")
    ident, flags, *counts = _HEADER.unpack_from(data)
    return ident, flags, (counts[0], counts[1], counts[2], counts[3])


def parse(data: bytes) -> Message:
    """A whole message; trailing bytes after the last record are refused."""
    ident, flags, (qd, an, ns, ar) = parse_header(data)
    msg = Message(ident, flags)
    pos = _HEADER.size
    for _ in range(qd):
        q, pos = _read_question(data, pos)
        msg.questions.append(q)
    for section, count in ((msg.answers, an), (msg.authority, ns), (msg.additional, ar)):
        for _ in range(count):
            rec, pos = _read_record(data, pos)
            section.append(rec)
    if pos != len(data):
        raise Malformed(f"{len(data) - pos} stray bytes after the last record")
    return msg


def parse_question(data: bytes) -> tuple[int, int, Question]:
    """(id, flags, question) of a message with exactly one question, records unread.

    Enough to match an upstream's answer to the query it answers without
    parsing (or trusting) the rest of it.
    """
    ident, flags, (qd, _, _, _) = parse_header(data)
    if qd != 1:
        raise Malformed(f"{qd} questions, expected 1")
    q, _ = _read_question(data, _HEADER.size)
    return ident, flags, q


# --- building -----------------------------------------------------------------


def _encode_all(msg: Message) -> bytes:
    w = _Writer()
    w.buf += _HEADER.pack(
        msg.id,
        msg.flags,
        len(msg.questions),
        len(msg.answers),
        len(msg.authority),
        len(msg.additional),
    )
    for q in msg.questions:
        w.question(q)
    for rec in (*msg.answers, *msg.authority, *msg.additional):
        w.record(rec)
    return bytes(w.buf)


def encode(msg: Message, limit: int = 65535) -> bytes:
    """The message's bytes; over `limit`, the records are dropped and TC set.

    A truncated reply keeps its question and OPT record, so the client retries
    over TCP knowing what we accept (RFC 2181 section 9: no partial RRsets).
    """
    data = _encode_all(msg)
    if len(data) <= limit:
        return data
    opt = [r for r in msg.additional if r.rtype == OPT]
    cut = replace(msg, flags=msg.flags | TC, answers=[], authority=[], additional=opt)
    return _encode_all(cut)


def udp_limit(query: Message) -> int:
    """The largest UDP reply this query's sender accepts (RFC 6891 section 6.2.5)."""
    opt = query.edns
    if opt is None:
        return UDP_LIMIT
    return max(UDP_LIMIT, min(opt.rclass, MAX_UDP))


def reply(
    query: Message,
    rcode: int = NOERROR,
    answers: list[Record] | None = None,
    recursion: bool = True,
) -> Message:
    """An answer from us: the query's id, question and RD; RA unless `recursion` is off
    (we will not forward for this client); OPT if the query had one."""
    flags = QR | (RA if recursion else 0) | (query.flags & RD) | (query.opcode << 11)
    flags |= rcode & 0xF
    if answers:
        flags |= AA
    additional = [Record("", OPT, EDNS_SIZE, 0, b"")] if query.edns is not None else []
    return Message(query.id, flags, list(query.questions), list(answers or []), [], additional)


def a_record(name: str, ip: str, ttl: int) -> Record:
    return Record(name, A, CLASS_IN, ttl, ipaddress.IPv4Address(ip).packed)


def aaaa_record(name: str, ip: str, ttl: int) -> Record:
    return Record(name, AAAA, CLASS_IN, ttl, ipaddress.IPv6Address(ip).packed)


def cname_record(name: str, target: str, ttl: int) -> Record:
    return Record(name, CNAME, CLASS_IN, ttl, encode_name(target))


def ptr_record(name: str, target: str, ttl: int) -> Record:
    return Record(name, PTR, CLASS_IN, ttl, encode_name(target))


def make_query(ident: int, name: str, qtype: int, udp_size: int = 0) -> bytes:
    """A recursive query as a stub resolver sends it; `udp_size` > 0 adds EDNS."""
    additional = [Record("", OPT, udp_size, 0, b"")] if udp_size else []
    return encode(Message(ident, RD, [Question(name, qtype)], additional=additional))


def with_id(data: bytes, ident: int) -> bytes:
    """The same message under another id: how a forwarder relays without re-encoding."""
    if len(data) < 2:
        raise Malformed("no room for an id")
    return struct.pack(">H", ident) + data[2:]


def reverse_ipv4(name: str) -> str | None:
    """The IPv4 address a "d.c.b.a.in-addr.arpa" name stands for, or None."""
    labels = name.lower().rstrip(".").split(".")
    if len(labels) != 6 or labels[4:] != ["in-addr", "arpa"]:
        return None
    if not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in labels[:4]):
        return None
    return ".".join(reversed(labels[:4]))
