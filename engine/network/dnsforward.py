"""Relaying queries the embedded DNS does not own to upstream resolvers, without blocking.

The server's one thread serves every container, so a slow upstream must never
hold it: a query is sent, remembered under a fresh random id, and answered when
the reply arrives or its deadline passes (then the next upstream is tried, and
after the last one the client gets SERVFAIL). Replies are accepted only from
an upstream the query went to, with the id and question it was sent with.

UDP queries go out on one socket per address family; TCP queries get their own
connection, so a client that fell back to TCP for a large answer gets it whole.
Every socket here is made in the engine's own netns (the caller's thread), so a
host resolver on loopback such as 127.0.0.53 is reachable.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import ipaddress
import logging
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.network import dnswire
from engine.network.dnswire import Malformed, Message

log = logging.getLogger("engine.dns")

Upstream = tuple[str, int]
Deliver = Callable[[bytes], None]
Handler = Callable[[int], None]

MAX_PENDING = 1024  # queries in flight at once; beyond this a client gets SERVFAIL
_MAX_MESSAGE = 65535


@dataclass(eq=False)
class _Pending:
    uid: int  # the id the upstream sees
    query: Message  # the client's query, for its id and for a SERVFAIL
    raw: bytes
    upstreams: list[Upstream]
    tcp: bool
    deliver: Deliver
    attempt: int = -1
    timer: int = 0  # the sequence number of this attempt's deadline
    conn: socket.socket | None = None  # this attempt's TCP connection
    outbuf: bytes = b""
    inbuf: bytearray = field(default_factory=bytearray)


def _family(host: str) -> socket.AddressFamily:
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.split("%", 1)[0]) == ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return False


class Forwarder:
    """In-flight upstream queries; driven by the server's selector and timers."""

    def __init__(self, sel: selectors.BaseSelector, timeout: float) -> None:
        self._sel = sel
        self._timeout = timeout
        self._pending: dict[int, _Pending] = {}
        self._timers: list[tuple[float, int, int]] = []  # (deadline, timer seq, uid)
        self._seq = 0
        self._udp: dict[socket.AddressFamily, socket.socket] = {}

    # --- lifecycle ---------------------------------------------------------------

    def open(self) -> None:
        """The UDP sockets, made now, in the calling thread's (the engine's) netns."""
        for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            except OSError as exc:  # no IPv6 in this kernel: IPv4 upstreams still work
                log.info("dns: no %s forwarding socket: %s", family.name, exc)
                continue
            sock.bind((anywhere, 0))
            sock.setblocking(False)
            self._udp[family] = sock
            self._sel.register(sock, selectors.EVENT_READ, self._udp_handler(sock))

    def close(self) -> None:
        for p in list(self._pending.values()):
            self._close_conn(p)
        self._pending.clear()
        self._timers.clear()
        for sock in self._udp.values():
            self._sel.unregister(sock)
            sock.close()
        self._udp.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- forwarding --------------------------------------------------------------

    def forward(
        self, query: Message, raw: bytes, upstreams: list[Upstream], tcp: bool, deliver: Deliver
    ) -> None:
        """Relay `raw` to the first upstream that answers; `deliver` gets the reply bytes."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("dns: %d queries already in flight; answering SERVFAIL", MAX_PENDING)
            deliver(self._servfail(query, tcp))
            return
        p = _Pending(self._new_uid(), query, raw, list(upstreams), tcp, deliver)
        self._pending[p.uid] = p
        self._next_attempt(p)

    def _new_uid(self) -> int:
        while True:
            uid = secrets.randbelow(0x10000)
            if uid not in self._pending:
                return uid

    def _next_attempt(self, p: _Pending) -> None:
        self._close_conn(p)
        while True:
            p.attempt += 1
            if p.attempt >= len(p.upstreams):
                self._finish(p, self._servfail(p.query, p.tcp))
                return
            try:
                self._send(p, p.upstreams[p.attempt])
            except (OSError, ValueError) as exc:
                log.debug("dns: upstream %s unusable: %s", p.upstreams[p.attempt], exc)
                self._close_conn(p)
                continue
            self._seq += 1
            p.timer = self._seq
            heapq.heappush(self._timers, (time.monotonic() + self._timeout, p.timer, p.uid))
            return

    def _send(self, p: _Pending, upstream: Upstream) -> None:
        wire = dnswire.with_id(p.raw, p.uid)
        family = _family(upstream[0])
        if not p.tcp:
            sock = self._udp.get(family)
            if sock is None:
                raise OSError(errno.EAFNOSUPPORT, f"no {family.name} forwarding socket")
            sock.sendto(wire, upstream)
            return
        conn = socket.socket(family, socket.SOCK_STREAM)
        conn.setblocking(False)
        p.conn, p.outbuf = conn, struct.pack(">H", len(wire)) + wire
        rc = conn.connect_ex(upstream)
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, f"connect to {upstream}: {errno.errorcode.get(rc, rc)}")
        self._sel.register(conn, selectors.EVENT_WRITE, self._tcp_handler(p))

    def _finish(self, p: _Pending, data: bytes) -> None:
        self._close_conn(p)
        self._pending.pop(p.uid, None)
        try:
            p.deliver(data)
        except OSError as exc:  # the client went away meanwhile
            log.debug("dns: reply not delivered: %s", exc)

    def _servfail(self, query: Message, tcp: bool) -> bytes:
        limit = _MAX_MESSAGE if tcp else dnswire.udp_limit(query)
        return dnswire.encode(dnswire.reply(query, dnswire.SERVFAIL), limit)

    def _close_conn(self, p: _Pending) -> None:
        if p.conn is not None:
            with contextlib.suppress(KeyError, ValueError):  # failed before registering
                self._sel.unregister(p.conn)
            p.conn.close()
            p.conn = None
        p.outbuf, p.inbuf = b"", bytearray()

    # --- replies -----------------------------------------------------------------

    def _accept(self, data: bytes, source: str, port: int, tcp: bool) -> None:
        """Relay an upstream reply if it answers a query we sent to that upstream."""
        try:
            uid, flags, question = dnswire.parse_question(data)
        except Malformed:
            return
        p = self._pending.get(uid)
        if p is None or p.tcp != tcp or not flags & dnswire.QR:
            return
        tried = p.upstreams[: p.attempt + 1]  # a slow one's late answer is as good
        if not any(_same_host(source, host) and port == want for host, want in tried):
            return
        asked = p.query.questions[0]
        if (question.name.lower(), question.qtype, question.qclass) != (
            asked.name.lower(),
            asked.qtype,
            asked.qclass,
        ):
            return
        self._finish(p, dnswire.with_id(data, p.query.id))

    def _udp_handler(self, sock: socket.socket) -> Handler:
        def handle(mask: int) -> None:
            for _ in range(64):  # a burst, then let the other sockets have a turn
                try:
                    data, addr = sock.recvfrom(_MAX_MESSAGE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    continue  # an ICMP error queued on the socket; the timer retries
                self._accept(data, addr[0], addr[1], tcp=False)

        return handle

    def _tcp_handler(self, p: _Pending) -> Handler:
        def handle(mask: int) -> None:
            conn = p.conn
            if conn is None:
                return
            try:
                if mask & selectors.EVENT_WRITE:
                    self._tcp_write(p, conn)
                elif mask & selectors.EVENT_READ:
                    self._tcp_read(p, conn)
            except OSError as exc:
                log.debug("dns: tcp upstream %s: %s", p.upstreams[p.attempt], exc)
                self._next_attempt(p)

        return handle

    def _tcp_write(self, p: _Pending, conn: socket.socket) -> None:
        err = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, errno.errorcode.get(err, str(err)))
        sent = conn.send(p.outbuf)
        p.outbuf = p.outbuf[sent:]
        if not p.outbuf:
            self._sel.modify(conn, selectors.EVENT_READ, self._tcp_handler(p))

    def _tcp_read(self, p: _Pending, conn: socket.socket) -> None:
        chunk = conn.recv(_MAX_MESSAGE + 2 - len(p.inbuf))
        if not chunk:
            raise OSError(errno.ECONNRESET, "upstream closed the connection")
        p.inbuf += chunk
        if len(p.inbuf) < 2:
            return
        size = struct.unpack_from(">H", p.inbuf)[0]
        if len(p.inbuf) >= 2 + size:
            host, port = p.upstreams[p.attempt]
            self._accept(bytes(p.inbuf[2 : 2 + size]), host, port, tcp=True)
            if p.uid in self._pending:  # not an answer to our question
                raise OSError(errno.EPROTO, "upstream answered another question")

    # --- timers ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def expire(self, now: float) -> None:
        """Move every query whose attempt timed out on to its next upstream."""
        while self._timers and self._timers[0][0] <= now:
            _, seq, uid = heapq.heappop(self._timers)
            p = self._pending.get(uid)
            if p is not None and p.timer == seq:
                log.debug("dns: upstream %s timed out", p.upstreams[p.attempt])
                self._next_attempt(p)
