"""Per-container supervisor: `python3 -m engine.runtime.shim STATE_DIR READY_FD`.

It outlives the daemon (detached: own session, reparented to init), so a
daemon restart or crash never kills a container (live-restore). It is the
parent of the container's PID 1, owns the container's stdio (pipes, or the
pty master), writes the json-file log, serves STATE_DIR/shim.sock and records
STATE_DIR/exit.json when the container ends. Poll-driven in one thread; only
published ports add threads (engine/network/portproxy.py): their listeners are
bound before the container exists, recorded in STATE_DIR/ports.json, and
closed the moment the container exits.

Socket protocol (one text line from the client, then per command):
  "attach I O E\\n"  -> "ok\\n", then output (Docker frames unless tty); client
                       bytes go to stdin; a half-close ends stdin if stdin_once
  "go\\n"            -> "ok\\n" | "exec CODE MESSAGE\\n"   (release the held init)
  "resize H W\\n"    -> "ok\\n"
  "signal N\\n"      -> "ok\\n" | "gone\\n"
  "monitor\\n"       -> "ok\\n", then nothing; EOF when the container has exited
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import time
from typing import TYPE_CHECKING

from engine.runtime.logwriter import LogWriter, rfc3339_nano
from engine.runtime.spec import ContainerSpec
from engine.streamframe import frame

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from engine.cgroups.manager import CgroupManager
    from engine.network.portproxy import PortProxy
    from engine.runtime.syscalls import LinuxSyscalls

    _T = TypeVar("_T")

SOCK = "shim.sock"
SPEC = "spec.json"
EXIT = "exit.json"
INFO = "shim.json"
PORTS = "ports.json"
CLIENT_BUFFER_LIMIT = 8 * 1024 * 1024
DRAIN_SECONDS = 2.0


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _nonblock(fd: int) -> None:
    os.set_blocking(fd, False)


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.mode = ""  # "" until the handshake line; then "attach" / "monitor"
        self.stdin = self.stdout = self.stderr = False
        self.read_closed = False


class Shim:
    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.spec = ContainerSpec.from_json(_read_json(os.path.join(state_dir, SPEC)))
        self.pid = -1
        self.chan: socket.socket | None = None
        self.out_fds: dict[int, int] = {}  # fd -> stream number (1 stdout, 2 stderr)
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.pty = -1
        self.clients: dict[int, Client] = {}
        self.status: int | None = None
        self.exec_error = ""
        self.listener: socket.socket | None = None
        self.log: LogWriter | None = None
        self.pidfd = -1
        self.drain_until = 0.0
        self.cgroups: CgroupManager | None = None
        self.proxy: PortProxy | None = None

    # -- start ---------------------------------------------------------------
    def start(self) -> None:
        """Fork the init first, then make and join its cgroup while it builds its rootfs.

        On cgroup v1 and v2 alike, the first write to a cgroup.procs after a
        quiet spell waits for an RCU grace period (~10 ms here). The init's
        mounts need no cgroup, so they run meanwhile; the init waits for
        "joined" before it enters its cgroup namespace and long before exec.
        """
        spec = self.spec
        self._bind_ports()  # first: a taken port fails the start before anything is made
        child_stdio, keep = self._make_stdio()
        from engine.runtime.syscalls import CLONE_NEWPID, LinuxSyscalls

        sc = LinuxSyscalls()
        # Our next child is PID 1 of a new PID namespace; the shim stays outside.
        sc.unshare(CLONE_NEWPID)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the container
            try:
                parent.close()
                for target, fd in enumerate(child_stdio):
                    os.dup2(fd, target)
                _close_all_but(child.fileno())
                from engine.runtime import init

                init.run(spec, sc, child)
            finally:
                os._exit(1)
        self.pid = pid
        self.chan = parent
        if self.proxy is not None:
            _threads_allowed_again(sc)
        child.close()
        for fd in set(child_stdio):
            os.close(fd)
        self.out_fds = keep
        try:
            self.pidfd = os.pidfd_open(pid)
            cgroups = _cgroups(spec)
            cgroups.create(spec.id, spec.resources)
            self.cgroups = cgroups
            cgroups.join(spec.id, pid)
            if spec.log_path:
                self.log = LogWriter(spec.log_path, spec.log_max_size, spec.log_max_file)
        except BaseException as exc:
            reason = _early_error(parent)  # the init may have failed first, and said why
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            if reason:
                raise RuntimeError(reason) from exc
            raise
        with contextlib.suppress(OSError):  # an init that already failed has told us why
            parent.send(b"joined")
        parent.settimeout(60)
        msg, fds, _flags, _addr = _past_reset(lambda: socket.recv_fds(parent, 65536, 1))
        parent.settimeout(None)
        if msg != b"ready":
            os.waitpid(pid, 0)
            for fd in fds:
                os.close(fd)
            reason = msg[6:].decode(errors="replace") if msg.startswith(b"error:") else ""
            raise RuntimeError(reason or "container init died during setup")
        if spec.tty:
            self.pty = fds[0]
            _nonblock(self.pty)
            self.out_fds = {self.pty: 1}
            self.stdin_fd = self.pty if spec.open_stdin else -1
        self._listen()
        _write_json_atomic(
            os.path.join(self.dir, INFO), f'{{"shim_pid": {os.getpid()}, "pid": {pid}}}'
        )
        if self.proxy is not None:
            self.proxy.serve()

    def _bind_ports(self) -> None:
        """Open the published ports and record the ones the kernel chose for port 0."""
        if not self.spec.ports:
            return
        import json
        from dataclasses import asdict

        from engine.network.portproxy import PortProxy

        proxy = PortProxy(self.spec.ports)
        bound = proxy.bind()
        self.proxy = proxy
        _write_json_atomic(os.path.join(self.dir, PORTS), json.dumps([asdict(p) for p in bound]))

    def _make_stdio(self) -> tuple[list[int], dict[int, int]]:
        """(child's fds 0,1,2; our read ends -> stream). A tty's pty comes later."""
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        if self.spec.tty:
            return [null, null, null], {}
        if self.spec.open_stdin:
            stdin_r, stdin_w = os.pipe()
            _nonblock(stdin_w)
            self.stdin_fd = stdin_w
        else:
            stdin_r = os.dup(null)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        _nonblock(out_r)
        _nonblock(err_r)
        os.close(null)
        return [stdin_r, out_w, err_w], {out_r: 1, err_r: 2}

    def _listen(self) -> None:
        path = os.path.join(self.dir, SOCK)
        if os.path.lexists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # 0600: only root may attach
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(64)
        sock.setblocking(False)
        self.listener = sock

    # -- loop ----------------------------------------------------------------
    def loop(self) -> None:
        while self.status is None or (self.out_fds and time.monotonic() < self.drain_until):
            poller = select.poll()
            self._register(poller)
            timeout = None if self.status is None else 100
            for fd, ev in poller.poll(timeout):
                self._dispatch(fd, ev)
        self._finish()

    def _register(self, poller: select.poll) -> None:
        if self.status is None:
            assert self.listener is not None
            poller.register(self.listener.fileno(), select.POLLIN)
            poller.register(self.pidfd, select.POLLIN)
        for fd in self.out_fds:
            poller.register(fd, select.POLLIN)
        if self.stdin_fd >= 0 and self.stdin_buf and self.stdin_fd != self.pty:
            poller.register(self.stdin_fd, select.POLLOUT)
        for fd, c in self.clients.items():
            mask = 0 if c.read_closed else select.POLLIN
            if c.outbuf:
                mask |= select.POLLOUT
            poller.register(fd, mask)
        if self.pty >= 0 and self.stdin_buf:
            poller.modify(self.pty, select.POLLIN | select.POLLOUT)

    def _dispatch(self, fd: int, ev: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif fd == self.pidfd:
            self._reap()
        else:
            if fd in self.out_fds and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read_output(fd)
            if fd == self.stdin_fd and ev & select.POLLOUT:
                self._write_stdin()
            if fd in self.clients:
                c = self.clients[fd]
                if ev & select.POLLOUT:
                    self._flush_client(c)
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and fd in self.clients:
                    self._read_client(c)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = Client(sock)

    def _reap(self) -> None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return
        self.status = status
        os.close(self.pidfd)
        if self.proxy is not None:  # before exit.json: a stopped container's ports are closed
            self.proxy.close()
        self.drain_until = time.monotonic() + DRAIN_SECONDS

    # -- container output / input -------------------------------------------
    def _read_output(self, fd: int) -> None:
        stream = self.out_fds[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: a pty whose slave side is all closed
            data = b""
        if not data:
            del self.out_fds[fd]
            if fd != self.pty:
                os.close(fd)
            return
        name = "stdout" if stream == 1 else "stderr"
        if self.log is not None:
            self.log.write(name, data)
        payload = data if self.spec.tty else frame(stream, data)
        for c in list(self.clients.values()):
            if c.mode == "attach" and (c.stdout if stream == 1 else c.stderr):
                c.outbuf += payload
                if len(c.outbuf) > CLIENT_BUFFER_LIMIT:
                    self._drop(c)  # a client this slow must not stall the container

    def _write_stdin(self) -> None:
        try:
            n = os.write(self.stdin_fd, self.stdin_buf)
        except BlockingIOError:
            return
        except OSError:
            self.stdin_buf.clear()
            self._close_stdin()
            return
        del self.stdin_buf[:n]
        if not self.stdin_buf and self.stdin_closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        if self.stdin_fd == self.pty:
            with contextlib.suppress(OSError):
                os.write(self.pty, b"\x04")  # a tty has no EOF but ^D
        else:
            os.close(self.stdin_fd)
        self.stdin_fd = -1

    # -- clients -------------------------------------------------------------
    def _read_client(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            c.read_closed = True
            if c.mode == "attach" and c.stdin and self.spec.stdin_once:
                self._end_stdin()
            if c.mode != "attach" or (not c.stdout and not c.stderr):
                self._drop(c)
            return
        if c.mode:
            self._client_input(c, data)
            return
        c.inbuf += data
        if b"\n" in c.inbuf:
            line, _, rest = c.inbuf.partition(b"\n")
            c.inbuf = b""
            attached = self._command(c, line.decode(errors="replace").split(" ", 2))
            if rest and attached:
                self._client_input(c, rest)

    def _client_input(self, c: Client, data: bytes) -> None:
        if c.mode == "attach" and c.stdin and self.stdin_fd >= 0:
            self.stdin_buf += data
            if self.stdin_fd == self.pty:
                self._write_pty()

    def _write_pty(self) -> None:
        try:
            n = os.write(self.pty, self.stdin_buf)
            del self.stdin_buf[:n]
        except OSError:
            pass

    def _end_stdin(self) -> None:
        self.stdin_closing = True
        if not self.stdin_buf:
            self._close_stdin()

    def _command(self, c: Client, words: list[str]) -> bool:
        """Run one handshake line; True when the client is now attached."""
        cmd = words[0]
        if cmd == "attach" and len(words) == 3:
            flags = (words[1] + " " + words[2]).split()
            c.stdin, c.stdout, c.stderr = (f == "1" for f in flags[:3])
            c.mode = "attach"
            self._reply(c, "ok")
            return True
        elif cmd == "monitor":
            c.mode = "monitor"
            self._reply(c, "ok")
        elif cmd == "go":
            self._reply(c, self._go(), close=True)
        elif cmd == "resize" and len(words) == 3:
            self._resize(int(words[1]), int(words[2]))
            self._reply(c, "ok", close=True)
        elif cmd == "signal" and len(words) == 2:
            gone = self.status is not None
            if not gone:
                os.kill(self.pid, int(words[1]))
            self._reply(c, "gone" if gone else "ok", close=True)
        else:
            self._reply(c, "error unknown command", close=True)
        return False

    def _reply(self, c: Client, text: str, close: bool = False) -> None:
        try:
            c.sock.setblocking(True)
            c.sock.settimeout(5)
            c.sock.sendall(text.encode() + b"\n")
            c.sock.setblocking(False)
        except OSError:
            close = True
        if close:
            self._drop(c)

    def _go(self) -> str:
        """Release the held init; EOF on the CLOEXEC channel means exec succeeded."""
        chan = self.chan
        if chan is None:
            return "ok"
        self.chan = None
        try:
            chan.send(b"go")
            chan.settimeout(60)
            msg = chan.recv(65536)
        except OSError:
            msg = b""
        finally:
            chan.close()
        if not msg.startswith(b"exec:"):
            return "ok"
        code, _, text = msg[5:].decode(errors="replace").partition(":")
        self.exec_error = text
        return f"exec {code} {text}"

    def _resize(self, height: int, width: int) -> None:
        if self.pty >= 0:
            fcntl.ioctl(self.pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def _flush_client(self, c: Client) -> None:
        try:
            n = c.sock.send(c.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        del c.outbuf[:n]

    def _drop(self, c: Client) -> None:
        self.clients.pop(c.sock.fileno(), None)
        c.sock.close()

    # -- the end -------------------------------------------------------------
    def _finish(self) -> None:
        """Record the exit only once the cgroup is gone, then let clients see EOF."""
        assert self.status is not None
        if self.log is not None:
            self.log.close()
        oom = False
        if self.cgroups is not None:
            try:
                oom = self.cgroups.oom_killed(self.spec.id)
            except Exception:
                oom = False
            _remove_cgroup(self.cgroups, self.spec.id)
        code = exit_code(self.status)
        err = _quote(self.exec_error)
        _write_json_atomic(
            os.path.join(self.dir, EXIT),
            f'{{"exit_code": {code}, "oom_killed": {"true" if oom else "false"}, '
            f'"error": {err}, "finished_at": "{rfc3339_nano()}"}}',
        )
        if self.listener is not None:
            self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.dir, SOCK))
        for c in list(self.clients.values()):
            if c.outbuf:
                try:
                    c.sock.setblocking(True)
                    c.sock.settimeout(5)
                    c.sock.sendall(c.outbuf)
                except OSError:
                    pass
            c.sock.close()
        self.clients.clear()


def _threads_allowed_again(sc: LinuxSyscalls) -> None:
    """Point our children's PID namespace back at our own, now that the init exists.

    After unshare(CLONE_NEWPID) Linux refuses to create threads (EINVAL) while
    the namespace for children differs from the caller's own, and the proxy of
    published ports runs in threads. The shim forks no other child.
    """
    from engine.runtime.syscalls import CLONE_NEWPID

    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, CLONE_NEWPID)
    finally:
        os.close(fd)


def _early_error(chan: socket.socket) -> str:
    """The reason an init sent before dying, if it has (does not wait)."""
    try:
        msg = _past_reset(lambda: chan.recv(65536, socket.MSG_DONTWAIT))
    except OSError:
        return ""
    return msg[6:].decode(errors="replace") if msg.startswith(b"error:") else ""


def _past_reset(read: Callable[[], _T]) -> _T:
    """`read()` from the init's channel, once more if it reports a reset first.

    An init that fails before it reads our "joined" exits with it unread, which
    marks our end ECONNRESET. On a SEQPACKET socket the kernel reports that once,
    ahead of the messages still queued (one holds the init's reason); the next
    read returns them, or EOF.
    """
    try:
        return read()
    except ConnectionResetError:
        return read()


def _quote(text: str) -> str:
    from _json import encode_basestring

    return encode_basestring(text)


def _read_json(path: str) -> dict[str, object]:
    import json

    with open(path, "rb") as f:
        data = json.loads(f.read())
    assert isinstance(data, dict)
    return data


def _write_json_atomic(path: str, text: str) -> None:
    """temp + rename: a reader sees the whole record or none, even if we die mid-write.

    No fsync: these files live in the exec root (/run, tmpfs), and a power
    loss takes this shim and its container with it, so there is nothing a
    sync could save. The daemon copies what must last into its own records.
    """
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _cgroups(spec: ContainerSpec) -> CgroupManager:
    """Imported here: the cgroup package is the shim's heaviest import."""
    from engine.cgroups.manager import detect

    return detect(spec.cgroup_parent)


def _remove_cgroup(mgr: CgroupManager, cid: str) -> None:
    for _ in range(50):
        try:
            mgr.remove(cid)
            return
        except Exception:
            time.sleep(0.02)


def _close_all_but(keep: int) -> None:
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def _report(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, line.replace("\n", " ").encode() + b"\n")


def main(argv: list[str]) -> None:
    state_dir, ready_fd = argv[0], int(argv[1])
    # Detach: the launcher (child of the daemon) exits now and is reaped at
    # once; we are adopted by init, so a daemon SIGKILL cannot take us along.
    if os.fork() != 0:
        os._exit(0)
    run(state_dir, ready_fd)


def run(state_dir: str, ready_fd: int) -> None:
    """Be the shim in this (already detached) process; never returns."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    shim = Shim(state_dir)
    try:
        shim.start()
    except BaseException as e:  # report every setup failure to the launcher
        if shim.cgroups is not None:  # before reporting: the caller may check at once
            _remove_cgroup(shim.cgroups, shim.spec.id)
        if shim.proxy is not None:  # so is a port: a retry may bind it at once
            shim.proxy.close()
        _report(ready_fd, f"error {e}")
        os._exit(1)
    _report(ready_fd, f"ok {shim.pid}")
    os.close(ready_fd)
    try:
        shim.loop()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
