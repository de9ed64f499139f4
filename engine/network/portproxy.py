"""The userland proxy behind published ports, run inside each container's shim.

Why a proxy in the shim rather than DNAT rules: the shim already outlives the
engine, so published ports keep answering while the engine is killed or
restarted, and nothing has to be re-programmed at recovery; the ports go
away exactly when the container does, because their sockets belong to the
process that owns the container; and there is no firewall state to leak when
an engine dies. A bind is also an honest availability check: a port another
program holds fails the start instead of being silently shadowed by NAT.

`bind()` opens every listener before the container exists (a taken port
fails the start with Docker's message and leaves nothing made); `serve()`
then runs one selector thread for accepts and UDP, and two threads per TCP
connection that move bytes with splice(2) through a pipe (no copy through
user space), falling back to recv/send where a socket type cannot splice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import selectors
import socket
import threading
import time
from typing import Any

from engine.runtime.spec import PublishedPort

CONNECT_TIMEOUT = 10.0  # a container that neither accepts nor refuses
UDP_IDLE_SECONDS = 90.0  # a UDP client silent this long loses its upstream socket
MAX_UDP_SESSIONS = 1024  # bounds the fds one flood of source addresses can take
CHUNK = 1 << 16


class BindError(Exception):
    """A published port could not be opened; the message is Docker's."""


def _address(ip: str, port: int | str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _open_listener(p: PublishedPort, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in p.host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:  # "::" means IPv6 only; 0.0.0.0 is its own binding
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:  # rebinding past TIME_WAIT after a restart
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((p.host_ip, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_one(p: PublishedPort) -> tuple[PublishedPort, socket.socket]:
    """Open p's listener (the first free port of a range); the port it got is recorded."""
    last = max(p.host_port, p.host_port_end)
    wanted = _address(p.host_ip, f"{p.host_port}-{last}" if last > p.host_port else p.host_port)
    error = 0
    for port in range(p.host_port, last + 1):
        try:
            sock = _open_listener(p, port)
        except OSError as e:
            error = e.errno or 0
            if error == errno.EADDRINUSE:
                continue
            break
        got = dataclasses.replace(p, host_port=sock.getsockname()[1], host_port_end=0)
        return got, sock
    if error == errno.EADDRINUSE:
        raise BindError(f"Bind for {wanted} failed: port is already allocated")
    raise BindError(f"Bind for {wanted} failed: {os.strerror(error).lower()}")


class _Udp:
    """One UDP client of one listener: its own upstream socket, so replies find it."""

    def __init__(
        self, listener: socket.socket, client: tuple[Any, ...], upstream: socket.socket
    ) -> None:
        self.listener = listener
        self.client = client
        self.upstream = upstream
        self.last = time.monotonic()


class PortProxy:
    def __init__(self, ports: list[PublishedPort]) -> None:
        self.wanted = ports
        self.bound: list[tuple[PublishedPort, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._udp: dict[tuple[int, tuple[Any, ...]], _Udp] = {}
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    @property
    def ports(self) -> list[PublishedPort]:
        """The ports as bound: host_port is the one the kernel gave for 0."""
        return [p for p, _ in self.bound]

    def bind(self) -> list[PublishedPort]:
        """Open every listener, or none: on a failure those already open are closed."""
        try:
            for p in self.wanted:
                self.bound.append(bind_one(p))
        except BaseException:
            self._close_listeners()
            raise
        return self.ports

    def serve(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        thread = threading.Thread(target=self._loop, name="portproxy", daemon=True)
        try:
            thread.start()
        except BaseException:
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise
        self._thread = thread

    def close(self) -> None:
        """Stop listening and end every live connection (the container is gone)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        if self._thread is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
            self._thread.join(5)
            os.close(self._wake_w)
        else:
            self._close_listeners()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _close_listeners(self) -> None:
        for _, sock in self.bound:
            sock.close()

    # -- the selector thread ---------------------------------------------------
    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        for p, sock in self.bound:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, p)
        try:
            while not self._closed:
                for key, _ in sel.select(self._udp_timeout()):
                    try:
                        self._ready(sel, key)
                    except Exception:  # one bad event must not end every port's service
                        continue
                self._expire(sel, time.monotonic() - UDP_IDLE_SECONDS)
        finally:
            self._expire(sel, float("inf"))
            sel.close()
            self._close_listeners()
            os.close(self._wake_r)

    def _ready(self, sel: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
        data = key.data
        if isinstance(data, _Udp):
            self._udp_reply(sel, data)
        elif isinstance(data, PublishedPort):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if data.proto == "tcp":
                self._accept(sock, data)
            else:
                self._udp_request(sel, sock, data)

    def _udp_timeout(self) -> float | None:
        if not self._udp:
            return None
        oldest = min(s.last for s in self._udp.values())
        return max(0.0, oldest + UDP_IDLE_SECONDS - time.monotonic())

    # -- TCP -------------------------------------------------------------------
    def _accept(self, listener: socket.socket, p: PublishedPort) -> None:
        try:
            client, _ = listener.accept()
        except OSError as e:  # the client gave up already, or fds ran out for a moment
            if e.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.05)  # the listener stays readable: do not spin
            return
        client.setblocking(True)
        target = (p.container_ip, p.container_port)
        try:
            threading.Thread(target=self._tcp, args=(client, target), daemon=True).start()
        except RuntimeError:  # no thread to be had: this client is refused, the rest go on
            client.close()

    def _tcp(self, client: socket.socket, target: tuple[str, int]) -> None:
        try:
            upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
        except OSError:  # refused or unreachable: the client learns at once
            client.close()
            return
        upstream.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._conns.update(pair)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        with contextlib.suppress(RuntimeError):  # no second thread: the connection is dropped
            back.start()
            _pump(client, upstream)
            back.join()
        with self._lock:
            self._conns.difference_update(pair)
        client.close()
        upstream.close()

    # -- UDP -------------------------------------------------------------------
    def _udp_request(
        self, sel: selectors.BaseSelector, sock: socket.socket, p: PublishedPort
    ) -> None:
        try:
            data, client = sock.recvfrom(CHUNK)
        except OSError:
            return
        session = self._udp.get((sock.fileno(), client))
        if session is None:
            session = self._udp_session(sel, sock, client, p)
            if session is None:
                return
        session.last = time.monotonic()
        with contextlib.suppress(OSError):  # a full buffer or an unreachable container: dropped
            session.upstream.send(data)

    def _udp_session(
        self,
        sel: selectors.BaseSelector,
        sock: socket.socket,
        client: tuple[Any, ...],
        p: PublishedPort,
    ) -> _Udp | None:
        if len(self._udp) >= MAX_UDP_SESSIONS:
            self._expire(sel, min(s.last for s in self._udp.values()) + 1e-9)
        family = socket.AF_INET6 if ":" in p.container_ip else socket.AF_INET
        upstream = socket.socket(family, socket.SOCK_DGRAM)
        try:
            upstream.connect((p.container_ip, p.container_port))
        except OSError:
            upstream.close()
            return None
        upstream.setblocking(False)
        session = _Udp(sock, client, upstream)
        self._udp[(sock.fileno(), client)] = session
        sel.register(upstream, selectors.EVENT_READ, session)
        return session

    def _udp_reply(self, sel: selectors.BaseSelector, s: _Udp) -> None:
        try:
            data = s.upstream.recv(CHUNK)
        except OSError:  # ICMP port unreachable, reported on the next call: nothing to relay
            return
        s.last = time.monotonic()
        with contextlib.suppress(OSError):
            s.listener.sendto(data, s.client)

    def _expire(self, sel: selectors.BaseSelector, before: float) -> None:
        for key, s in list(self._udp.items()):
            if s.last < before:
                del self._udp[key]
                sel.unregister(s.upstream)
                s.upstream.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """src -> dst until src's EOF, then pass the half-close on; a reset ends both ways."""
    try:
        _splice(src, dst)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _splice(src: socket.socket, dst: socket.socket) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        while True:
            try:
                n = os.splice(src.fileno(), w, CHUNK, flags=os.SPLICE_F_MOVE)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                _copy(src, dst)  # this socket type cannot splice
                return
            if n == 0:
                return
            while n:
                n -= os.splice(r, dst.fileno(), n, flags=os.SPLICE_F_MOVE)
    finally:
        os.close(r)
        os.close(w)


def _copy(src: socket.socket, dst: socket.socket) -> None:
    while data := src.recv(CHUNK):
        dst.sendall(data)
