"""The embedded DNS for real: listeners inside real network namespaces, queried from
inside them, forwarding to a real local upstream server this module starts.

Root only. Every netns and server a test makes is removed by its fixture even
when the test fails.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import socket
import socketserver
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.network import dnsforward, dnsredirect, dnswire, netns
from engine.network.dns import EmbeddedDns
from engine.network.dnswire import Message, Question

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

NAMES = {
    "c1": {"web": ["10.89.0.2"], "db": ["10.89.0.3", "10.89.0.4"]},
    "c2": {"cache": ["10.89.1.9"]},
}
BIG = [f"10.90.{i // 250}.{i % 250 + 1}" for i in range(60)]


def resolve(cid: str, name: str) -> list[str] | None:
    if name == "boom":
        raise RuntimeError("a bug in the container side")
    if name == "big":
        return BIG
    return NAMES.get(cid, {}).get(name)


def reverse(cid: str, ip: str) -> str | None:
    return "web" if (cid, ip) == ("c1", "10.89.0.2") else None


# --- a local upstream resolver --------------------------------------------------------


class Upstream:
    """Answers example.test (A 192.0.2.1), big.test (60 A), liar.test (with another
    question); everything else NXDOMAIN. Records what it was asked, per transport."""

    def __init__(self, port: int = 0) -> None:
        self.seen: list[tuple[str, Question]] = []
        owner = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = owner.answer(data, "udp")
                if out:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while (head := self.rfile.read(2)) and len(head) == 2:
                    out = owner.answer(self.rfile.read(struct.unpack(">H", head)[0]), "tcp")
                    self.wfile.write(struct.pack(">H", len(out)) + out)

        self.udp, self.tcp = self._bind_both(port, Udp, Tcp)
        self.port = self.udp.server_address[1]
        self.udp.daemon_threads = self.tcp.daemon_threads = True
        self.threads = [
            threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
            for s in (self.udp, self.tcp)
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _bind_both(
        port: int,
        udp: type[socketserver.BaseRequestHandler],
        tcp: type[socketserver.BaseRequestHandler],
    ) -> tuple[socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer]:
        """UDP and TCP on one port: a free UDP port may be a taken TCP one, so try again."""
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        for _ in range(20):
            u = socketserver.ThreadingUDPServer(("127.0.0.1", port), udp)
            try:
                return u, socketserver.ThreadingTCPServer(("127.0.0.1", u.server_address[1]), tcp)
            except OSError:
                u.server_close()
                if port:
                    raise
        raise OSError("no port free for both UDP and TCP")

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def answer(self, data: bytes, transport: str) -> bytes:
        query = dnswire.parse(data)
        q = query.questions[0]
        self.seen.append((transport, q))
        limit = 65535 if transport == "tcp" else dnswire.udp_limit(query)
        if q.name == "example.test":
            reply = dnswire.reply(query, answers=[dnswire.a_record(q.name, "192.0.2.1", 30)])
        elif q.name == "big.test":
            answers = [dnswire.a_record(q.name, ip, 30) for ip in BIG]
            reply = dnswire.reply(query, answers=answers)
        elif q.name == "liar.test":
            reply = dnswire.reply(query, answers=[])
            reply.questions = [Question("other.test", q.qtype)]
        else:
            reply = dnswire.reply(query, dnswire.NXDOMAIN)
        return dnswire.encode(reply, limit)

    def close(self) -> None:
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()


def dead_address() -> tuple[str, int]:
    """A loopback UDP port nobody listens on: queries there are never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return ("127.0.0.1", s.getsockname()[1])


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def made_netns(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / f"ns-{uuid.uuid4().hex[:8]}"
    netns.create(path)
    try:
        yield path
    finally:
        netns.remove(path)


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Path]:
    with made_netns(tmp_path) as path:
        yield path


@pytest.fixture
def resolv_conf(tmp_path: Path) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text("search corp.example\nnameserver 127.0.0.1\n")
    return path


@contextlib.contextmanager
def running(
    upstreams: list[tuple[str, int]],
    resolv_conf: Path,
    timeout: float = 0.3,
    tcp_idle: float = 10.0,
) -> Iterator[EmbeddedDns]:
    dns = EmbeddedDns(
        resolve,
        upstreams=upstreams,
        resolv_conf=resolv_conf,
        timeout=timeout,
        tcp_idle=tcp_idle,
        reverse=reverse,
    )
    dns.start()
    try:
        yield dns
    finally:
        dns.stop()


@pytest.fixture
def dns(ns: Path, upstream: Upstream, resolv_conf: Path) -> Iterator[EmbeddedDns]:
    with running([upstream.address], resolv_conf) as server:
        server.add("c1", ns)
        yield server


# --- clients inside the netns ----------------------------------------------------------


def client(ns: Path, kind: socket.SocketKind) -> socket.socket:
    """A socket made inside the netns (it stays there), connected to 127.0.0.11:53."""
    with netns.entered(ns):
        sock = socket.socket(socket.AF_INET, kind)
    sock.settimeout(10)
    sock.connect(("127.0.0.11", 53))
    return sock


def ask_udp(ns: Path, data: bytes) -> Message:
    with client(ns, socket.SOCK_DGRAM) as sock:
        sock.send(data)
        return dnswire.parse(sock.recv(65535))


def recv_frame(sock: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf

    return exact(struct.unpack(">H", exact(2))[0])


def query(name: str, qtype: int = dnswire.A, ident: int = 4242, udp_size: int = 0) -> bytes:
    return dnswire.make_query(ident, name, qtype, udp_size)


def addresses(msg: Message) -> list[str]:
    return [r.address() for r in msg.answers]


def serving(ns: Path) -> bool:
    """True while a TCP connection to 127.0.0.11:53 in the netns reaches a listener."""
    with netns.entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(10)
        try:
            sock.connect(("127.0.0.11", 53))
        except ConnectionRefusedError:
            return False
        return True


def can_bind_port_53(ns: Path) -> bool:
    """True when a DNS server of the container's own could bind 0.0.0.0:53 (UDP and TCP)."""
    made = []
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with netns.entered(ns):
                made.append(socket.socket(socket.AF_INET, kind))
            made[-1].bind(("0.0.0.0", 53))
    except OSError:
        return False
    finally:
        for sock in made:
            sock.close()
    return True


# --- answers of our own -------------------------------------------------------------------


def test_a_container_name_is_answered_with_its_addresses(dns: EmbeddedDns, ns: Path) -> None:
    out = ask_udp(ns, query("db"))
    assert out.id == 4242 and out.rcode == dnswire.NOERROR and out.flags & dnswire.AA
    assert sorted(addresses(out)) == ["10.89.0.3", "10.89.0.4"]
    assert {r.ttl for r in out.answers} == {600}


@pytest.mark.parametrize("name", ["WEB", "web.", "Web.corp.example", "web.corp.example."])
def test_names_ignore_case_trailing_dot_and_search_domain(
    dns: EmbeddedDns, ns: Path, name: str
) -> None:
    out = ask_udp(ns, query(name))
    assert addresses(out) == ["10.89.0.2"]
    assert out.questions[0].name == name.rstrip(".")  # the question echoed as asked


def test_aaaa_for_a_known_name_is_empty_noerror(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    out = ask_udp(ns, query("web", dnswire.AAAA))
    assert (out.rcode, out.answers) == (dnswire.NOERROR, [])
    assert upstream.seen == []


def test_names_are_scoped_to_the_asking_container(
    dns: EmbeddedDns, ns: Path, tmp_path: Path, upstream: Upstream
) -> None:
    with made_netns(tmp_path) as other:
        dns.add("c2", other)
        assert addresses(ask_udp(other, query("cache"))) == ["10.89.1.9"]
        assert ask_udp(other, query("web")).rcode == dnswire.NXDOMAIN  # forwarded: not c2's
        assert ask_udp(ns, query("cache")).rcode == dnswire.NXDOMAIN
        assert sorted(dns.containers()) == ["c1", "c2"]
        dns.remove("c2")
    assert [q.name for _, q in upstream.seen] == ["web", "cache"]


def test_ptr_for_a_container_address(dns: EmbeddedDns, ns: Path) -> None:
    out = ask_udp(ns, query("2.0.89.10.in-addr.arpa", dnswire.PTR))
    assert [r.target() for r in out.answers] == ["web"]


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp(dns: EmbeddedDns, ns: Path) -> None:
    small = ask_udp(ns, query("big"))
    assert small.flags & dnswire.TC and small.answers == []
    roomy = ask_udp(ns, query("big", udp_size=4096))
    assert sorted(addresses(roomy)) == sorted(BIG) and roomy.edns is not None
    with client(ns, socket.SOCK_STREAM) as sock:
        data = query("big")
        sock.sendall(struct.pack(">H", len(data)) + data)
        whole = addresses(dnswire.parse(recv_frame(sock)))
    assert sorted(whole) == sorted(BIG)
    assert whole != addresses(roomy)  # shuffled each time: load spread over the addresses


# --- forwarding ------------------------------------------------------------------------------


def test_an_unknown_name_is_forwarded_and_relayed_with_the_clients_id(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    out = ask_udp(ns, query("example.test", ident=777))
    assert out.id == 777 and addresses(out) == ["192.0.2.1"]
    assert upstream.seen == [("udp", Question("example.test", dnswire.A))]
    assert ask_udp(ns, query("nowhere.test")).rcode == dnswire.NXDOMAIN


def test_tcp_carries_several_queries_on_one_connection(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    with client(ns, socket.SOCK_STREAM) as sock:
        for ident, name in ((1, "web"), (2, "example.test"), (3, "db")):
            data = query(name, ident=ident)
            sock.sendall(struct.pack(">H", len(data)) + data)
            out = dnswire.parse(recv_frame(sock))
            assert out.id == ident and out.rcode == dnswire.NOERROR and out.answers
    assert upstream.seen == [("tcp", Question("example.test", dnswire.A))]


def test_a_truncated_upstream_answer_is_relayed_then_fetched_over_tcp(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    assert ask_udp(ns, query("big.test")).flags & dnswire.TC
    with client(ns, socket.SOCK_STREAM) as sock:
        data = query("big.test")
        sock.sendall(struct.pack(">H", len(data)) + data)
        assert addresses(dnswire.parse(recv_frame(sock))) == BIG  # relayed as it came
    assert [t for t, _ in upstream.seen] == ["udp", "tcp"]


def test_upstream_down_gives_servfail(ns: Path, resolv_conf: Path) -> None:
    with running([dead_address()], resolv_conf) as dns:
        dns.add("c1", ns)
        out = ask_udp(ns, query("example.test", ident=9))
        assert (out.id, out.rcode) == (9, dnswire.SERVFAIL)
        assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]  # still serving


def test_the_next_upstream_answers_when_the_first_is_down(
    ns: Path, upstream: Upstream, resolv_conf: Path
) -> None:
    with running([dead_address(), upstream.address], resolv_conf) as dns:
        dns.add("c1", ns)
        assert addresses(ask_udp(ns, query("example.test"))) == ["192.0.2.1"]


def test_an_answer_to_another_question_is_not_relayed(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    assert ask_udp(ns, query("liar.test")).rcode == dnswire.SERVFAIL


def test_no_upstream_gives_servfail(ns: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.conf"
    empty.write_text("# nothing\n")
    with running([], empty) as dns:
        dns.add("c1", ns)
        assert ask_udp(ns, query("example.test")).rcode == dnswire.SERVFAIL


def test_upstreams_follow_the_host_resolv_conf(ns: Path, tmp_path: Path) -> None:
    """The server's own netns stands in for the host's: an upstream on its 127.0.0.1:53
    is what a resolv.conf naming 127.0.0.1 means, and is reached from there."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("options ndots:0\n")
    with made_netns(tmp_path) as engine_ns:
        with netns.entered(engine_ns):
            server = Upstream(port=53)
            dns = EmbeddedDns(resolve, resolv_conf=conf, timeout=0.3)
            dns.start()
        try:
            dns.add("c1", ns)
            assert ask_udp(ns, query("example.test")).rcode == dnswire.SERVFAIL
            conf.write_text("nameserver 127.0.0.1\n")
            assert addresses(ask_udp(ns, query("example.test"))) == ["192.0.2.1"]
        finally:
            dns.stop()
            server.close()


def test_per_container_upstreams_override_the_default(
    ns: Path, upstream: Upstream, resolv_conf: Path
) -> None:
    with running([dead_address()], resolv_conf) as dns:
        dns.add("c1", ns, upstreams=[upstream.address])
        assert addresses(ask_udp(ns, query("example.test"))) == ["192.0.2.1"]


def test_a_container_on_internal_networks_only_gets_no_forwarding(
    dns: EmbeddedDns, ns: Path, upstream: Upstream
) -> None:
    dns.add("c1", ns, forward=False)  # same netns: only the setting changes
    out = ask_udp(ns, query("example.test"))
    assert out.rcode == dnswire.REFUSED and not out.flags & dnswire.RA
    assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]  # its own names still work
    assert upstream.seen == []
    dns.set_forwarding("c1", True)  # connected to a network with a way out
    assert addresses(ask_udp(ns, query("example.test"))) == ["192.0.2.1"]
    dns.set_forwarding("unknown", False)


def test_pending_forwards_are_bounded(
    ns: Path, resolv_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dnsforward, "MAX_PENDING", 2)
    with running([dead_address()], resolv_conf, timeout=30) as dns, contextlib.ExitStack() as st:
        dns.add("c1", ns)
        socks = [st.enter_context(client(ns, socket.SOCK_DGRAM)) for _ in range(3)]
        for i, sock in enumerate(socks):
            sock.send(query(f"slow{i}.test", ident=i))
        out = dnswire.parse(socks[2].recv(512))
        assert (out.id, out.rcode) == (2, dnswire.SERVFAIL)


# --- robustness ------------------------------------------------------------------------------


def test_malformed_packets_are_dropped_and_the_server_still_answers(
    dns: EmbeddedDns, ns: Path
) -> None:
    with client(ns, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x01", b"\xff" * 40, query("web")[:-3], query("web") + b"x"):
            sock.send(junk)
        sock.send(query("web", ident=5))
        out = dnswire.parse(sock.recv(512))
        assert out.id == 5 and addresses(out) == ["10.89.0.2"]
    with client(ns, socket.SOCK_STREAM) as sock:
        sock.sendall(b"\x00\x03abc")
        data = query("web", ident=6)
        sock.sendall(struct.pack(">H", len(data)) + data)
        assert dnswire.parse(recv_frame(sock)).id == 6


def test_a_failing_resolve_gives_servfail_and_the_server_goes_on(
    dns: EmbeddedDns, ns: Path
) -> None:
    assert ask_udp(ns, query("boom")).rcode == dnswire.SERVFAIL
    assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]


def test_an_answer_sent_to_the_server_is_not_answered(dns: EmbeddedDns, ns: Path) -> None:
    with client(ns, socket.SOCK_DGRAM) as sock:
        sock.send(dnswire.encode(dnswire.reply(dnswire.parse(query("web", ident=1)))))
        sock.send(query("web", ident=2))
        assert dnswire.parse(sock.recv(512)).id == 2


def test_an_idle_tcp_connection_is_closed(ns: Path, resolv_conf: Path) -> None:
    with running([], resolv_conf, tcp_idle=0.2) as dns:
        dns.add("c1", ns)
        with client(ns, socket.SOCK_STREAM) as sock:
            assert sock.recv(1) == b""


def test_add_without_a_netns_is_a_clear_oserror(dns: EmbeddedDns, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    for path in (tmp_path / "missing", plain):
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.11 in network namespace"):
            dns.add("c9", path)
    assert dns.containers() == ["c1"]


def test_port_53_stays_free_for_the_containers_own_dns_server(dns: EmbeddedDns, ns: Path) -> None:
    """Pi-hole, CoreDNS or dnsmasq in a container bind 0.0.0.0:53; as in Docker, that works
    and 127.0.0.11 still answers (its queries are redirected to the listeners' own ports)."""
    assert can_bind_port_53(ns)
    with netns.entered(ns):
        own_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with own_udp:
        own_udp.bind(("0.0.0.0", 53))
        own_udp.settimeout(0.3)
        assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]
        with pytest.raises(TimeoutError):
            own_udp.recv(512)  # the query to 127.0.0.11 never reached the container's server
    with client(ns, socket.SOCK_STREAM) as sock:
        sock.sendall(struct.pack(">H", len(query("db"))) + query("db"))
        assert sorted(addresses(dnswire.parse(recv_frame(sock)))) == ["10.89.0.3", "10.89.0.4"]


def test_a_new_server_for_the_same_netns_replaces_the_redirect(
    ns: Path, upstream: Upstream, resolv_conf: Path
) -> None:
    """A daemon restart listens on new ports; the one redirect table then points at them."""
    for _restart in range(2):
        with running([upstream.address], resolv_conf) as dns:
            dns.add("c1", ns)
            assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]
    with netns.entered(ns):
        ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
    assert ruleset.stdout.count("table ip dockyard_dns") == 1
    assert ruleset.stdout.count("dnat to 127.0.0.11:") == 2  # one for UDP, one for TCP


def test_without_nftables_nat_it_listens_on_port_53_itself(
    ns: Path, upstream: Upstream, resolv_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def kernel_without_nftables_nat(address: str, udp: int, tcp: int) -> None:
        """Stands in for a kernel built without nf_tables NAT (this one has it)."""
        raise OSError(errno.EPROTONOSUPPORT, "redirect 127.0.0.11:53: no nftables NAT")

    monkeypatch.setattr(dnsredirect, "redirect", kernel_without_nftables_nat)
    with running([upstream.address], resolv_conf) as dns:
        dns.add("c1", ns)
        assert addresses(ask_udp(ns, query("web"))) == ["10.89.0.2"]
        assert not can_bind_port_53(ns)  # the old way: DNS works, port 53 is taken


def test_remove_is_idempotent_and_frees_the_port(dns: EmbeddedDns, ns: Path) -> None:
    dns.add("c1", ns)  # again, same netns: nothing changes
    assert serving(ns)
    dns.remove("c1")
    dns.remove("c1")
    dns.remove("never-added")
    assert not serving(ns) and dns.containers() == []


def test_stop_closes_every_listener(ns: Path, upstream: Upstream, resolv_conf: Path) -> None:
    with running([upstream.address], resolv_conf) as dns:
        dns.add("c1", ns)
        with client(ns, socket.SOCK_STREAM):
            dns.stop()
            dns.stop()
        assert not serving(ns)
        with pytest.raises(RuntimeError):
            dns.add("c1", ns)


def open_fds() -> set[str]:
    gc.collect()  # sockets earlier tests dropped close now, not in the middle of this one
    return set(os.listdir("/proc/self/fd"))


def test_stop_leaves_no_socket_open_even_with_queries_in_flight(
    ns: Path, resolv_conf: Path
) -> None:
    """A TCP upstream that accepts and never answers keeps a forward in flight at stop()."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        before = open_fds()
        dns = EmbeddedDns(
            resolve, upstreams=[silent.getsockname()], resolv_conf=resolv_conf, timeout=30
        )
        dns.start()
        dns.add("c1", ns)
        with client(ns, socket.SOCK_STREAM) as sock, client(ns, socket.SOCK_DGRAM) as udp:
            data = query("example.test")
            sock.sendall(struct.pack(">H", len(data)) + data)
            udp.send(data)
            silent.settimeout(10)
            forwarded, _ = silent.accept()
            with forwarded:
                forwarded.settimeout(10)
                assert recv_frame(forwarded)  # the TCP forward is in flight
                dns.stop()
                assert sock.recv(1) == b""  # closed by the server, unanswered
                assert forwarded.recv(1) == b""  # the forward's connection closed too
        assert open_fds() <= before  # (earlier tests' server threads may close theirs meanwhile)
