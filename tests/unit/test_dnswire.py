"""DNS wire format: hand-built packets parsed, replies built, malformed input refused."""

from __future__ import annotations

import struct

import pytest

from engine.network import dnswire
from engine.network.dnswire import Malformed, Message, Question, Record


def header(ident: int, flags: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def wname(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def rr(name: bytes, rtype: int, rdata: bytes, ttl: int = 60) -> bytes:
    return name + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


QUERY_WEB = header(0x1234, 0x0100) + wname(b"web", b"svc") + b"\x00\x01\x00\x01"


def test_parses_a_stub_resolvers_query() -> None:
    msg = dnswire.parse(QUERY_WEB)
    assert (msg.id, msg.is_response, msg.opcode, msg.flags & dnswire.RD) == (0x1234, False, 0, 256)
    assert msg.questions == [Question("web.svc", dnswire.A)]
    assert msg.edns is None


def test_parses_an_answer_with_compressed_names() -> None:
    # www.example.com CNAME web.example.com (suffix compressed), web.example.com A 10.0.0.7
    q = wname(b"www", b"example", b"com")  # at offset 12
    cname_rdata = b"\x03web\xc0\x10"  # "web" + pointer to "example.com" (offset 16)
    answer1 = rr(b"\xc0\x0c", dnswire.CNAME, cname_rdata)
    # the second answer's name points at the CNAME's data
    cname_data_offset = 12 + len(q) + 4 + 2 + 10
    answer2 = rr(struct.pack(">H", 0xC000 | cname_data_offset), dnswire.A, bytes([10, 0, 0, 7]))
    data = header(7, 0x8180, qd=1, an=2) + q + b"\x00\x01\x00\x01" + answer1 + answer2
    msg = dnswire.parse(data)
    assert msg.is_response and msg.rcode == dnswire.NOERROR
    cname, a = msg.answers
    assert (cname.name, cname.target()) == ("www.example.com", "web.example.com")
    assert (a.name, a.address(), a.ttl) == ("web.example.com", "10.0.0.7", 60)


def test_aaaa_and_ptr_records_read_back() -> None:
    v6 = bytes(15) + b"\x01"
    ptr = wname(b"db", b"local")
    data = (
        header(1, 0x8400, qd=0, an=2)
        + rr(wname(b"x"), dnswire.AAAA, v6)
        + rr(wname(b"1", b"0", b"0", b"10", b"in-addr", b"arpa"), dnswire.PTR, ptr)
    )
    aaaa, p = dnswire.parse(data).answers
    assert aaaa.address() == "::1"
    assert (p.name, p.target()) == ("1.0.0.10.in-addr.arpa", "db.local")


def test_edns_opt_record_is_kept_and_sets_the_udp_limit() -> None:
    opt = b"\x00" + struct.pack(">HHIH", dnswire.OPT, 1232, 0, 0)
    msg = dnswire.parse(header(9, 0x0100, ar=1)[:12] + QUERY_WEB[12:] + opt)
    assert msg.edns is not None and msg.edns.rclass == 1232
    assert dnswire.udp_limit(msg) == 1232
    assert dnswire.udp_limit(dnswire.parse(QUERY_WEB)) == 512


@pytest.mark.parametrize(
    ("offered", "limit"), [(100, 512), (512, 512), (1400, 1400), (65000, dnswire.MAX_UDP)]
)
def test_udp_limit_is_clamped(offered: int, limit: int) -> None:
    query = dnswire.parse(dnswire.make_query(1, "a", dnswire.A, udp_size=offered))
    assert dnswire.udp_limit(query) == limit


BAD_PACKETS = {
    "empty": b"",
    "short header": b"\x12\x34\x01",
    "question missing": header(1, 0x0100),
    "name past the end": header(1, 0x0100) + b"\x05ab",
    "no type and class": header(1, 0x0100) + wname(b"a") + b"\x00",
    "pointer forward": header(1, 0x0100) + b"\xc0\x20" + b"\x00\x01\x00\x01",
    "pointer to itself": header(1, 0x0100) + b"\xc0\x0c" + b"\x00\x01\x00\x01",
    "truncated pointer": header(1, 0x0100) + b"\xc0",
    "label type 0x40": header(1, 0x0100) + b"\x41a\x00\x00\x01\x00\x01",
    "name over 255": header(1, 0x0100) + (b"\x3f" + b"a" * 63) * 5 + b"\0\0\1\0\1",
    "record past the end": header(1, 0x8000, qd=0, an=1) + rr(wname(b"a"), 1, b"\1\2\3\4")[:-2],
    "stray trailing bytes": QUERY_WEB + b"\x00",
    "counts lie": header(1, 0x0100, qd=3) + QUERY_WEB[12:],
    "cname data too long": header(1, 0x8000, qd=0, an=1)
    + rr(wname(b"a"), dnswire.CNAME, wname(b"b") + b"xx"),
}


@pytest.mark.parametrize("data", BAD_PACKETS.values(), ids=BAD_PACKETS.keys())
def test_malformed_packets_raise_malformed(data: bytes) -> None:
    with pytest.raises(Malformed):
        dnswire.parse(data)


def test_a_pointer_loop_is_refused() -> None:
    # a name whose pointer goes back to a label that points at itself again
    data = header(1, 0x0100) + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(Malformed):
        dnswire.parse(data)


def test_reply_echoes_id_question_and_rd_and_sets_aa_for_answers() -> None:
    query = dnswire.parse(QUERY_WEB)
    out = dnswire.parse(
        dnswire.encode(dnswire.reply(query, answers=[dnswire.a_record("web.svc", "10.1.2.3", 600)]))
    )
    assert out.id == 0x1234 and out.is_response
    assert out.flags & (dnswire.AA | dnswire.RA | dnswire.RD) == dnswire.AA | dnswire.RA | 256
    assert out.questions == query.questions
    assert [(r.name, r.address(), r.ttl) for r in out.answers] == [("web.svc", "10.1.2.3", 600)]
    assert out.edns is None


def test_reply_to_an_edns_query_carries_our_opt() -> None:
    query = dnswire.parse(dnswire.make_query(5, "x.y", dnswire.AAAA, udp_size=4096))
    out = dnswire.parse(dnswire.encode(dnswire.reply(query, dnswire.NXDOMAIN)))
    assert out.rcode == dnswire.NXDOMAIN and not out.flags & dnswire.AA
    assert out.edns is not None and out.edns.rclass == dnswire.EDNS_SIZE


def test_names_are_compressed_when_written() -> None:
    query = dnswire.parse(QUERY_WEB)
    answers = [dnswire.a_record("web.svc", f"10.0.0.{i}", 600) for i in range(3)]
    data = dnswire.encode(dnswire.reply(query, answers=answers))
    assert data.count(b"\x03web\x03svc\x00") == 1
    assert len(data) == 12 + 13 + 3 * (2 + 10 + 4)


def test_a_udp_reply_over_512_bytes_is_truncated_with_tc() -> None:
    query = dnswire.parse(QUERY_WEB)
    many = [dnswire.a_record("web.svc", f"10.0.{i // 256}.{i % 256}", 600) for i in range(40)]
    data = dnswire.encode(dnswire.reply(query, answers=many), dnswire.udp_limit(query))
    out = dnswire.parse(data)
    assert len(data) <= 512
    assert out.flags & dnswire.TC and out.answers == [] and out.questions == query.questions
    whole = dnswire.parse(dnswire.encode(dnswire.reply(query, answers=many)))
    assert len(whole.answers) == 40 and not whole.flags & dnswire.TC


def test_case_and_odd_labels_round_trip() -> None:
    data = header(3, 0x0100) + wname(b"WeB", b"a.b", b"c\\d") + b"\x00\x01\x00\x01"
    msg = dnswire.parse(data)
    assert msg.questions[0].name == "WeB.a\\.b.c\\\\d"
    assert dnswire.encode(msg) == data


@pytest.mark.parametrize("name", ["a..b", "x" * 64, ".".join(["abcdefghi"] * 26)])
def test_bad_names_are_refused_when_encoding(name: str) -> None:
    with pytest.raises(Malformed):
        dnswire.encode_name(name)


@pytest.mark.parametrize(("name", "wire"), [("", b"\0"), (".", b"\0"), ("a.b.", b"\1a\1b\0")])
def test_root_and_trailing_dot(name: str, wire: bytes) -> None:
    assert dnswire.encode_name(name) == wire


def test_with_id_rewrites_only_the_id() -> None:
    assert dnswire.with_id(QUERY_WEB, 0xBEEF) == b"\xbe\xef" + QUERY_WEB[2:]
    with pytest.raises(Malformed):
        dnswire.with_id(b"\x01", 1)


def test_parse_question_reads_only_the_question() -> None:
    tail = rr(wname(b"junk"), 1, b"\1\2\3\4")
    ident, flags, q = dnswire.parse_question(header(8, 0x8180, an=5) + QUERY_WEB[12:] + tail)
    assert (ident, flags, q) == (8, 0x8180, Question("web.svc", dnswire.A))
    with pytest.raises(Malformed):
        dnswire.parse_question(header(8, 0x8180, qd=0))


@pytest.mark.parametrize(
    ("name", "ip"),
    [
        ("4.3.2.1.in-addr.arpa", "1.2.3.4"),
        ("4.3.2.1.IN-ADDR.ARPA.", "1.2.3.4"),
        ("3.2.1.in-addr.arpa", None),
        ("256.3.2.1.in-addr.arpa", None),
        ("a.3.2.1.in-addr.arpa", None),
        ("4.3.2.1.ip6.arpa", None),
    ],
)
def test_reverse_ipv4(name: str, ip: str | None) -> None:
    assert dnswire.reverse_ipv4(name) == ip


def test_mx_and_soa_data_are_expanded() -> None:
    q = wname(b"example", b"com")
    mx = rr(b"\xc0\x0c", dnswire.MX, b"\x00\x0a\x04mail\xc0\x0c")
    soa = rr(b"\xc0\x0c", dnswire.SOA, b"\x02ns\xc0\x0c\x04host\xc0\x0c" + bytes(20))
    data = header(2, 0x8180, an=2) + q + b"\x00\x0f\x00\x01" + mx + soa
    mx_rec, soa_rec = dnswire.parse(data).answers
    assert mx_rec.rdata == b"\x00\x0a" + wname(b"mail", b"example", b"com")
    assert soa_rec.rdata == wname(b"ns", b"example", b"com") + wname(
        b"host", b"example", b"com"
    ) + bytes(20)
    # stand-alone data re-encodes inside any other message
    again = dnswire.parse(dnswire.encode(Message(2, 0x8180, answers=[mx_rec, soa_rec])))
    assert again.answers == [mx_rec, soa_rec]


def test_address_and_target_refuse_other_types() -> None:
    with pytest.raises(Malformed):
        Record("a", dnswire.TXT, 1, 0, b"\x01x").address()
    with pytest.raises(Malformed):
        Record("a", dnswire.A, 1, 0, b"\x01\x02\x03\x04").target()
