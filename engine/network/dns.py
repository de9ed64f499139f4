"""The embedded DNS server: 127.0.0.11 inside every container on a user network.

Containers find each other by name the way Docker's do: each container's
resolv.conf points at 127.0.0.11, where the engine answers the names of the
container's networks (container names, aliases, compose service names) itself
and relays every other query to the host's resolvers.

Each container gets a UDP and a TCP socket bound to 127.0.0.11 *inside its own
netns* (a socket keeps the netns it was made in), so one thread in the engine
serves every container through one selector, and a listener costs two fds
rather than a process. The socket a query arrives on says which container
asked, which is what scopes the answer to that container's networks. As in
Docker, they listen on random ports that 127.0.0.11:53 is redirected to
(dnsredirect.py), so port 53 stays free for the container's own DNS server.

`resolve(container_id, name)` is called on the server's thread with the name in
lower case, without the trailing dot; it returns the IPv4 addresses the name has
for that container (an empty list: known, but no IPv4) or None (not ours).
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.network import dnsredirect, dnswire, netns
from engine.network.dnsforward import Forwarder, Upstream
from engine.network.dnswire import Malformed, Message
from engine.network.resolvconf import HostResolvConf

log = logging.getLogger("engine.dns")

ADDRESS = "127.0.0.11"
PORT = 53
TTL = 600  # Docker's TTL for container names
MAX_TCP_PER_CONTAINER = 16  # open TCP connections; more are closed on accept
MAX_TCP_BACKLOG = 1 << 20  # bytes of unread replies before a TCP client is dropped

Resolve = Callable[[str, str], list[str] | None]
Reverse = Callable[[str, str], str | None]
Handler = Callable[[int], None]
T = TypeVar("T")


@dataclass(eq=False)
class _Listener:
    cid: str
    netns_path: Path
    udp: socket.socket
    tcp: socket.socket
    upstreams: list[Upstream] | None
    forward: bool  # False: only internal networks, so nothing leaves through us
    conns: set[_Conn] = field(default_factory=set)


@dataclass(eq=False)
class _Conn:
    """A TCP client: length-prefixed queries in, replies out, closed when idle."""

    sock: socket.socket
    listener: _Listener
    deadline: float
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    closed: bool = False


@dataclass(eq=False)
class _Job:
    fn: Callable[[], object]
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed back to the calling thread
            self.error = exc
        self.done.set()


def listen(netns_path: Path) -> tuple[socket.socket, socket.socket]:
    """Non-blocking UDP and TCP sockets inside the netns at `netns_path` that receive
    what is sent to 127.0.0.11:53 there."""
    made: list[socket.socket] = []
    try:
        with netns.entered(netns_path):
            _bind_both(made, 0)
            udp_port, tcp_port = (sock.getsockname()[1] for sock in made)
            try:
                dnsredirect.redirect(ADDRESS, udp_port, tcp_port)
            except OSError as exc:
                _close(made)
                log.warning("%s; listening on port %d itself instead", exc, PORT)
                _bind_both(made, PORT)
            made[1].listen(64)
    except OSError as exc:
        _close(made)
        reason = exc.strerror or str(exc)
        raise OSError(
            exc.errno,
            f"cannot listen on {ADDRESS} in network namespace {netns_path}: "
            f"{reason} (is the netns still there, with lo up?)",
        ) from exc
    return made[0], made[1]


def _bind_both(made: list[socket.socket], port: int) -> None:
    """A UDP then a TCP socket on ADDRESS:port, appended to `made` as each is opened
    (so a failure leaves the caller everything to close)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        sock = socket.socket(socket.AF_INET, kind)
        made.append(sock)
        if kind == socket.SOCK_STREAM:  # not UDP: two listeners would share queries
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ADDRESS, port))
        sock.setblocking(False)


def _close(made: list[socket.socket]) -> None:
    for sock in made:
        sock.close()
    made.clear()


class EmbeddedDns:
    """One thread, one selector, every container's listeners and the upstream queries."""

    def __init__(
        self,
        resolve: Resolve,
        upstreams: list[Upstream] | None = None,
        resolv_conf: Path | None = None,
        timeout: float = 2.0,
        tcp_idle: float = 10.0,
        reverse: Reverse | None = None,
    ) -> None:
        """`upstreams` overrides the host's nameservers; `timeout` is per upstream tried.

        `reverse(container_id, ip)` names a container address for PTR queries
        (None: not ours, forwarded).
        """
        self._resolve = resolve
        self._reverse = reverse
        self._fixed_upstreams = upstreams
        self._host = HostResolvConf(resolv_conf) if resolv_conf else HostResolvConf()
        self._tcp_idle = tcp_idle
        self._sel = selectors.DefaultSelector()
        self._fwd = Forwarder(self._sel, timeout)
        self._listeners: dict[str, _Listener] = {}
        self._conns: set[_Conn] = set()  # every listener's TCP clients
        self._lock = threading.Lock()
        self._jobs: list[_Job] = []
        self._running = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._warned_no_upstream = False

    # --- public API --------------------------------------------------------------

    def start(self) -> None:
        """Serve on a daemon thread; forwarding sockets are made in the caller's netns."""
        with self._lock:
            if self._running or self._stopping:
                return
            self._fwd.open()
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="embedded-dns", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Close every listener, connection and upstream query; idempotent."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join()
        with self._lock:
            for cid in list(self._listeners):
                self._drop(cid)
            self._fwd.close()
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def add(
        self,
        container_id: str,
        netns_path: Path,
        upstreams: list[Upstream] | None = None,
        forward: bool = True,
    ) -> None:
        """Listen on 127.0.0.11:53 in the container's netns; OSError if that cannot be done.

        `upstreams` (the container's --dns servers) replaces the host's for this
        container. `forward=False` is for a container on internal networks only:
        its queries would leave from the engine's netns, a way out its networks
        deny it (Docker's CVE-2024-29018), so names not ours get REFUSED. Adding
        a container again with the same netns only updates those two settings;
        with another netns, the old listeners are closed first.
        """
        current = self._call(lambda: self._listeners.get(container_id))
        if current is not None and current.netns_path == netns_path:
            self._call(lambda: self._configure(current, upstreams, forward))
            return
        self.remove(container_id)
        udp, tcp = listen(netns_path)
        entry = _Listener(container_id, netns_path, udp, tcp, upstreams, forward)
        try:
            self._call(lambda: self._register(entry))
        except BaseException:
            udp.close()
            tcp.close()
            raise

    def set_forwarding(self, container_id: str, forward: bool) -> None:
        """Allow or deny forwarding as a connect or disconnect changes whether the
        container has a network with a way out; unknown ids are ignored."""

        def update() -> None:
            entry = self._listeners.get(container_id)
            if entry is not None:
                entry.forward = forward

        self._call(update)

    def remove(self, container_id: str) -> None:
        """Close the container's listeners and TCP connections; unknown ids are fine."""
        self._call(lambda: self._drop(container_id))

    def containers(self) -> list[str]:
        return self._call(lambda: sorted(self._listeners))

    # --- running work on the loop's thread ------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` where the selector's state may be touched, and return its result.

        While the loop runs that is the loop's thread (queued, then woken); before
        start and after stop, it is the caller's, under the lock (after stop,
        `_register` refuses and everything else finds nothing to do).
        """
        with self._lock:
            if not self._running or threading.current_thread() is self._thread:
                return fn()
            job = _Job(fn)
            self._jobs.append(job)
        self._wake()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already woken (buffer full), or closed
            self._wake_w.send(b"\0")

    def _on_wake(self, mask: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        self._run_jobs()

    def _run_jobs(self) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.run()

    def _loop(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._sel.select(self._timeout()):
                    self._dispatch(key.data, mask)
                now = time.monotonic()
                self._fwd.expire(now)
                self._expire_conns(now)
        finally:
            with self._lock:
                self._running = False
                jobs, self._jobs = self._jobs, []
            for job in jobs:  # queued while stopping: run here, not lost
                job.run()

    def _dispatch(self, handler: Handler, mask: int) -> None:
        try:
            handler(mask)
        except Exception:  # one bad packet or socket must not end every container's DNS
            log.exception("dns: handler failed")

    def _timeout(self) -> float | None:
        deadlines = [c.deadline for c in self._conns]
        nxt = self._fwd.next_deadline()
        if nxt is not None:
            deadlines.append(nxt)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    # --- listeners -----------------------------------------------------------------

    def _register(self, entry: _Listener) -> None:
        if self._stopping:
            raise RuntimeError("the embedded DNS server is stopped")
        self._sel.register(entry.udp, selectors.EVENT_READ, self._udp_handler(entry))
        self._sel.register(entry.tcp, selectors.EVENT_READ, self._accept_handler(entry))
        self._listeners[entry.cid] = entry

    def _configure(self, entry: _Listener, upstreams: list[Upstream] | None, forward: bool) -> None:
        entry.upstreams, entry.forward = upstreams, forward

    def _drop(self, cid: str) -> None:
        entry = self._listeners.pop(cid, None)
        if entry is None:
            return
        for conn in list(entry.conns):
            self._close_conn(conn)
        for sock in (entry.udp, entry.tcp):
            self._sel.unregister(sock)
            sock.close()

    def _udp_handler(self, entry: _Listener) -> Handler:
        def handle(mask: int) -> None:
            for _ in range(64):  # a burst, then let the other sockets have a turn
                try:
                    data, addr = entry.udp.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    continue

                def send(reply: bytes, addr: tuple[str, int] = addr) -> None:
                    entry.udp.sendto(reply, addr)

                self._query(entry, data, tcp=False, send=send)

        return handle

    def _accept_handler(self, entry: _Listener) -> Handler:
        def handle(mask: int) -> None:
            try:
                sock, _ = entry.tcp.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            if len(entry.conns) >= MAX_TCP_PER_CONTAINER:
                log.warning(
                    "dns: %s has %d TCP connections open; refusing another",
                    entry.cid[:12],
                    len(entry.conns),
                )
                sock.close()
                return
            sock.setblocking(False)
            conn = _Conn(sock, entry, time.monotonic() + self._tcp_idle)
            entry.conns.add(conn)
            self._conns.add(conn)
            self._sel.register(sock, selectors.EVENT_READ, self._conn_handler(conn))

        return handle

    # --- TCP clients -----------------------------------------------------------------

    def _conn_handler(self, conn: _Conn) -> Handler:
        def handle(mask: int) -> None:
            try:
                if mask & selectors.EVENT_WRITE:
                    self._flush(conn)
                if mask & selectors.EVENT_READ and not conn.closed:
                    self._read_conn(conn)
            except OSError:
                self._close_conn(conn)

        return handle

    def _read_conn(self, conn: _Conn) -> None:
        chunk = conn.sock.recv(65537)
        if not chunk:
            self._close_conn(conn)
            return
        conn.inbuf += chunk
        conn.deadline = time.monotonic() + self._tcp_idle
        while len(conn.inbuf) >= 2 and not conn.closed:
            size = struct.unpack_from(">H", conn.inbuf)[0]
            if len(conn.inbuf) < 2 + size:
                return
            data = bytes(conn.inbuf[2 : 2 + size])
            del conn.inbuf[: 2 + size]
            self._query(conn.listener, data, tcp=True, send=self._tcp_sender(conn))

    def _tcp_sender(self, conn: _Conn) -> Callable[[bytes], None]:
        def send(reply: bytes) -> None:
            if conn.closed:
                return
            conn.outbuf += struct.pack(">H", len(reply)) + reply
            if len(conn.outbuf) > MAX_TCP_BACKLOG:
                log.warning(
                    "dns: a TCP client of %s reads no replies; closing it", conn.listener.cid[:12]
                )
                self._close_conn(conn)
                return
            self._flush(conn)

        return send

    def _flush(self, conn: _Conn) -> None:
        if conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except BlockingIOError:
                sent = 0
            del conn.outbuf[:sent]
            conn.deadline = time.monotonic() + self._tcp_idle
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self._sel.modify(conn.sock, events, self._conn_handler(conn))

    def _close_conn(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.listener.conns.discard(conn)
        self._conns.discard(conn)
        self._sel.unregister(conn.sock)
        conn.sock.close()

    def _expire_conns(self, now: float) -> None:
        for conn in [c for c in self._conns if c.deadline <= now]:
            self._close_conn(conn)

    # --- answering -------------------------------------------------------------------

    def _query(
        self, entry: _Listener, data: bytes, tcp: bool, send: Callable[[bytes], None]
    ) -> None:
        """Answer one query, or forward it; malformed ones and stray answers are dropped."""
        try:
            msg = dnswire.parse(data)
        except Malformed as exc:
            log.debug("dns: dropped a malformed packet for %s: %s", entry.cid[:12], exc)
            return
        if msg.is_response:
            return  # answering answers could loop between two resolvers
        limit = 65535 if tcp else dnswire.udp_limit(msg)
        answer = self._local(entry.cid, msg)
        if answer is not None:
            self._send(send, dnswire.encode(answer, limit))
            return
        if not entry.forward:
            refused = dnswire.reply(msg, dnswire.REFUSED, recursion=False)
            self._send(send, dnswire.encode(refused, limit))
            return
        upstreams = self._upstreams(entry)
        if not upstreams:
            self._send(send, dnswire.encode(dnswire.reply(msg, dnswire.SERVFAIL), limit))
            return
        self._fwd.forward(msg, data, upstreams, tcp, lambda reply: self._send(send, reply))

    def _send(self, send: Callable[[bytes], None], reply: bytes) -> None:
        try:
            send(reply)
        except OSError as exc:  # the client is gone, or its socket buffer is full
            log.debug("dns: reply dropped: %s", exc)

    def _local(self, cid: str, msg: Message) -> Message | None:
        """Our own answer (refusals, container names), or None to forward the query."""
        if msg.opcode != dnswire.OPCODE_QUERY:
            return dnswire.reply(msg, dnswire.NOTIMP)
        if len(msg.questions) != 1:
            return dnswire.reply(msg, dnswire.FORMERR)
        q = msg.questions[0]
        if q.qclass not in (dnswire.CLASS_IN, dnswire.ANY):
            return None
        try:
            if q.qtype == dnswire.PTR:
                return self._local_ptr(cid, msg)
            return self._local_name(cid, msg)
        except Exception:  # a bug in resolve, or an address it made up
            log.exception("dns: resolving %r for %s failed", q.name, cid[:12])
            return dnswire.reply(msg, dnswire.SERVFAIL)

    def _local_name(self, cid: str, msg: Message) -> Message | None:
        q = msg.questions[0]
        ips = self._lookup(cid, q.name)
        if ips is None:
            return None
        if q.qtype not in (dnswire.A, dnswire.ANY):
            return dnswire.reply(msg, dnswire.NOERROR)  # AAAA: a known name with no records
        ips = list(ips)
        random.shuffle(ips)  # several containers behind one alias share the load, as Docker's
        answers = [dnswire.a_record(q.name, ip, TTL) for ip in ips]
        return dnswire.reply(msg, dnswire.NOERROR, answers)

    def _local_ptr(self, cid: str, msg: Message) -> Message | None:
        q = msg.questions[0]
        ip = dnswire.reverse_ipv4(q.name)
        if ip is None or self._reverse is None:
            return None
        name = self._reverse(cid, ip)
        if name is None:
            return None
        return dnswire.reply(msg, dnswire.NOERROR, [dnswire.ptr_record(q.name, name, TTL)])

    def _lookup(self, cid: str, qname: str) -> list[str] | None:
        """Ask `resolve` for the name, then for it without each host search domain."""
        name = qname.lower().rstrip(".")
        ips = self._resolve(cid, name)
        if ips is not None:
            return ips
        for domain in self._host.current().search:
            if domain and name.endswith("." + domain):
                ips = self._resolve(cid, name[: -len(domain) - 1])
                if ips is not None:
                    return ips
        return None

    def _upstreams(self, entry: _Listener) -> list[Upstream]:
        ups = entry.upstreams or self._fixed_upstreams
        if ups is None:
            ups = self._host.upstreams()
        if not ups and not self._warned_no_upstream:
            log.warning(
                "dns: no upstream nameserver (%s lists none); answering SERVFAIL "
                "for names that are not containers'",
                self._host.path,
            )
        self._warned_no_upstream = not ups
        return ups
