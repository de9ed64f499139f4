"""The published-port proxy against real local servers: TCP, UDP, refusals, bind errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from engine.network import portproxy
from engine.network.portproxy import BindError, PortProxy
from engine.runtime.spec import PublishedPort


class _TcpEchoAfterEof:
    """Reads everything until the client's half-close, then answers with its digest and the data."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = bytearray()
            while chunk := conn.recv(1 << 16):
                data += chunk
            conn.sendall(hashlib.sha256(data).digest() + bytes(data))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class _UdpEcho:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                data, addr = self.sock.recvfrom(65536)
                if data == b"stop":
                    return
                self.sock.sendto(b"echo:" + data, addr)

    def close(self) -> None:
        self.sock.sendto(b"stop", self.sock.getsockname())
        self.thread.join(10)
        self.sock.close()


def _port(proto: str, target: int, host_port: int = 0) -> PublishedPort:
    return PublishedPort(proto, "127.0.0.1", host_port, "127.0.0.1", target)


@contextlib.contextmanager
def _proxy(*ports: PublishedPort) -> Iterator[PortProxy]:
    proxy = PortProxy(list(ports))
    proxy.bind()
    proxy.serve()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def tcp_echo() -> Iterator[_TcpEchoAfterEof]:
    server = _TcpEchoAfterEof()
    yield server
    server.close()


@pytest.fixture
def udp_echo() -> Iterator[_UdpEcho]:
    server = _UdpEcho()
    yield server
    server.close()


def _recv_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(1 << 16):
        data += chunk
    return bytes(data)


def test_tcp_large_transfer_with_half_close(tcp_echo: _TcpEchoAfterEof) -> None:
    payload = os.urandom(24 * 1024 * 1024)
    with _proxy(_port("tcp", tcp_echo.port)) as proxy:
        (bound,) = proxy.ports
        assert bound.host_port != 0
        with socket.create_connection(("127.0.0.1", bound.host_port), timeout=30) as c:
            sender = threading.Thread(
                target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR))
            )
            sender.start()
            reply = _recv_all(c)
            sender.join()
    assert reply[:32] == hashlib.sha256(payload).digest()
    assert reply[32:] == payload


def test_tcp_many_connections_at_once(tcp_echo: _TcpEchoAfterEof) -> None:
    with _proxy(_port("tcp", tcp_echo.port)) as proxy:
        port = proxy.ports[0].host_port
        results: list[bytes] = []

        def one(i: int) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                c.sendall(b"n%d" % i)
                c.shutdown(socket.SHUT_WR)
                results.append(_recv_all(c)[32:])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == sorted(b"n%d" % i for i in range(20))


def test_refused_upstream_closes_the_client_connection() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with _proxy(_port("tcp", dead)) as proxy:
        port = proxy.ports[0].host_port
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            assert c.recv(1) == b""


def test_udp_two_clients_each_get_their_own_replies(udp_echo: _UdpEcho) -> None:
    with _proxy(_port("udp", udp_echo.port)) as proxy:
        port = proxy.ports[0].host_port
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for c in clients:
                c.settimeout(30)
            for round_ in range(3):
                for i, c in enumerate(clients):
                    c.sendto(b"c%d-%d" % (i, round_), ("127.0.0.1", port))
                for i, c in enumerate(clients):
                    data, addr = c.recvfrom(100)
                    assert data == b"echo:c%d-%d" % (i, round_)
                    assert addr == ("127.0.0.1", port)
        finally:
            for c in clients:
                c.close()


def test_udp_sessions_expire_when_idle(udp_echo: _UdpEcho, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portproxy, "UDP_IDLE_SECONDS", 0.0)
    with _proxy(_port("udp", udp_echo.port)) as proxy:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(30)
            c.sendto(b"x", ("127.0.0.1", proxy.ports[0].host_port))
            # The reply may race the expiry; either way no session is kept.
            with contextlib.suppress(TimeoutError):
                c.settimeout(0.5)
                c.recvfrom(100)
        proxy.close()
        assert proxy._udp == {}


def test_a_taken_port_fails_with_dockers_message_and_nothing_stays_bound() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            free_port = free.getsockname()[1]
        proxy = PortProxy([_port("tcp", 1, free_port), _port("tcp", 1, port)])
        allocated = f"Bind for 127.0.0.1:{port} failed: port is already allocated"
        with pytest.raises(BindError, match=re.escape(allocated)):
            proxy.bind()
        with socket.create_server(("127.0.0.1", free_port)):
            pass  # the first listener was closed again


def test_a_host_range_takes_the_next_free_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        p = PublishedPort("tcp", "127.0.0.1", port, "127.0.0.1", 1, host_port_end=port + 5)
        with _proxy(p) as proxy:
            got = proxy.ports[0]
            assert port < got.host_port <= port + 5
            assert got.host_port_end == 0


def test_an_address_not_on_this_host_is_named() -> None:
    with pytest.raises(BindError, match=r"Bind for 192\.0\.2\.1:8080 failed: cannot assign"):
        PortProxy([PublishedPort("tcp", "192.0.2.1", 8080, "127.0.0.1", 1)]).bind()


def test_close_stops_listening_and_ends_live_connections(tcp_echo: _TcpEchoAfterEof) -> None:
    proxy = PortProxy([_port("tcp", tcp_echo.port), _port("udp", 9)])
    proxy.bind()
    proxy.serve()
    tcp_port, udp_port = (p.host_port for p in proxy.ports)
    live = socket.create_connection(("127.0.0.1", tcp_port), timeout=30)
    live.sendall(b"half")  # the echo server is still waiting for EOF
    proxy.close()
    try:
        try:
            ended = live.recv(1) == b""
        except ConnectionResetError:  # closed before the proxy had taken it in
            ended = True
        assert ended
    finally:
        live.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", tcp_port), timeout=30).close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", udp_port))  # the UDP port is free again
