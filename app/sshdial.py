"""Engine connections over SSH, made the way the docker CLI makes them for `ssh://` hosts.

Each HTTP connection is one SSH exec channel running `docker system dial-stdio` on the
remote: that command connects to the engine its own DOCKER_HOST or context names and copies
bytes both ways, so the remote needs sshd and a docker CLI, and no engine port is published.
`ssh://host/path/to/docker.sock` runs `docker --host=unix:///path/to/docker.sock system
dial-stdio` instead, as the CLI does.

Why paramiko and not an `ssh` process per connection (the CLI's way): the app opens a
connection per call and keeps streams open; one SSH transport per host, shared by the whole
process, makes a new connection one channel-open round trip instead of a handshake. A
transport that dropped is replaced at the next connection; when sshd refuses another session
on a transport (MaxSessions, 10 by default) a second transport to the host is opened.

What the user's own `ssh` would use is used: ~/.ssh/config (HostName, Port, User,
IdentityFile, IdentitiesOnly, UserKnownHostsFile, GlobalKnownHostsFile, ConnectTimeout,
ServerAliveInterval, ProxyCommand), ssh-agent, the default keys, and known_hosts. A host key
known_hosts does not list is refused, never added: the first `ssh` to a host is where a
person checks its fingerprint.
"""

from __future__ import annotations

import getpass
import http.client
import io
import os
import shlex
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paramiko

from app.engine_client import EngineError, Unreachable

DEFAULT_PORT = 22
CONNECT_TIMEOUT_S = 30.0  # the docker CLI's ConnectTimeout for ssh://
KEEPALIVE_S = 15
EXIT_WAIT_S = 2.0  # how long a failed connection waits for the remote command's exit status
NO_COMMAND_EXIT = 127  # the remote shell's "command not found"
ADDRESS_FORM = "ssh://[USER@]HOST[:PORT][/path/to/docker.sock]"


@dataclass(frozen=True)
class SshUrl:
    """The parts of an `ssh://` engine address."""

    host: str
    user: str = ""
    port: int | None = None
    path: str = ""

    def remote_command(self) -> str:
        if self.path.strip("/"):
            target = shlex.quote("--host=unix://" + self.path)
            return f"docker {target} system dial-stdio"
        return "docker system dial-stdio"


def parse_url(url: str) -> SshUrl:
    """What the docker CLI accepts: no password, query or fragment, a host name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _bad_url(url, str(e)) from None
    if parts.scheme != "ssh":
        raise _bad_url(url, "the scheme is not ssh://")
    if parts.password is not None:
        raise _bad_url(url, "a password in the address is not supported: use a key or ssh-agent")
    if parts.query or parts.fragment:
        raise _bad_url(url, "query parameters and fragments are not allowed")
    if not parts.hostname:
        raise _bad_url(url, "the host name is empty")
    return SshUrl(parts.hostname, parts.username or "", port, parts.path)


def _bad_url(url: str, why: str) -> EngineError:
    return EngineError(0, f"invalid SSH engine address {url!r}: {why}; the form is {ADDRESS_FORM}")


@dataclass(frozen=True)
class SshSettings:
    """Where and as whom to log in once ~/.ssh/config is applied (the options we honour
    of what `ssh -G` prints). Hashable: the transport pool's key."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    known_hosts: tuple[str, ...] = ()
    connect_timeout: float = CONNECT_TIMEOUT_S
    keepalive: int = KEEPALIVE_S
    proxy_command: str = ""

    @property
    def where(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def settings_for(
    url: SshUrl, config: paramiko.SSHConfig, home: Path, local_user: str
) -> SshSettings:
    """The URL's user and port win over the config's (as `ssh -l/-p` do), the config over
    the defaults. ProxyJump is refused with the ProxyCommand that does the same."""
    opts = config.lookup(url.host)
    if opts.get("proxyjump"):
        raise EngineError(
            0,
            f"ProxyJump ({opts['proxyjump']}) for {url.host} in ~/.ssh/config is not supported "
            f"here: use `ProxyCommand ssh -W %h:%p {opts['proxyjump']}` for that host instead",
        )
    user_files = opts.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")
    global_files = opts.get(
        "globalknownhostsfile", "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
    )
    known = [_expand(p, home) for p in f"{user_files} {global_files}".split()]
    return SshSettings(
        hostname=opts.get("hostname", url.host),
        port=url.port or int(opts.get("port", DEFAULT_PORT)),
        user=url.user or opts.get("user", local_user),
        identity_files=tuple(_expand(p, home) for p in opts.get("identityfile", [])),
        identities_only=opts.get("identitiesonly", "no").lower() == "yes",
        known_hosts=tuple(p for p in known if p != "/dev/null"),
        connect_timeout=float(opts.get("connecttimeout", CONNECT_TIMEOUT_S)),
        keepalive=int(opts.get("serveraliveinterval", KEEPALIVE_S)) or KEEPALIVE_S,
        proxy_command=opts.get("proxycommand", "") if opts.get("proxycommand") != "none" else "",
    )


def _expand(path: str, home: Path) -> str:
    return str(home / path[2:]) if path.startswith("~/") else path


def user_settings(url: SshUrl) -> SshSettings:
    """settings_for() with the user's own ~/.ssh/config (none is an empty one)."""
    home = Path(os.path.expanduser("~"))
    path = home / ".ssh" / "config"
    try:
        config = paramiko.SSHConfig.from_path(str(path)) if path.is_file() else None
    except (OSError, ValueError, paramiko.ConfigParseError) as e:
        raise EngineError(0, f"cannot read {path}: {e}; fix that line and try again") from None
    return settings_for(url, config or paramiko.SSHConfig(), home, getpass.getuser())


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, name: str, key: paramiko.PKey) -> None:
        super().__init__(f"{name} not in known_hosts")
        self.key = key


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """RejectPolicy, keeping the offered key so the error can show its fingerprint."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise _UnknownHostKey(hostname, key)


def login_error(url: str, s: SshSettings, e: BaseException) -> Unreachable:
    """What went wrong logging in, and what the user does about it."""
    ssh_cmd = f"ssh -p {s.port} {s.user}@{s.hostname}"
    if isinstance(e, _UnknownHostKey):
        return Unreachable(
            url,
            f"the SSH host key of {s.hostname}:{s.port} ({e.key.get_name()} "
            f"{e.key.fingerprint}) is not in known_hosts, so the host is not trusted yet",
            f"run `{ssh_cmd}` once, check the fingerprint and accept it, then retry",
        )
    if isinstance(e, paramiko.BadHostKeyException):
        return Unreachable(
            url,
            f"the SSH host key of {s.hostname}:{s.port} is not the one known_hosts lists "
            "(refusing to connect: the host was reinstalled, or something else answers)",
            f"if the change is expected, `ssh-keygen -R {s.hostname}` and run `{ssh_cmd}` "
            "once to accept the new key",
        )
    if isinstance(e, paramiko.PasswordRequiredException):
        return Unreachable(
            url,
            f"an SSH key for {s.where} needs its passphrase",
            "load it into ssh-agent with `ssh-add`, then retry",
        )
    if isinstance(e, paramiko.AuthenticationException) or "authentication methods" in str(e):
        return Unreachable(
            url,
            f"the SSH login as {s.where} was refused ({e})",
            f"authorize your public key there (`ssh-copy-id -p {s.port} {s.user}@{s.hostname}`)"
            " or load the right key into ssh-agent, then check that "
            f"`{ssh_cmd} docker version` works",
        )
    if isinstance(e, socket.gaierror):
        return Unreachable(
            url,
            f"the host name {s.hostname} does not resolve ({e.strerror})",
            "check the name, or set HostName for it in ~/.ssh/config",
        )
    if isinstance(e, OSError | paramiko.ssh_exception.NoValidConnectionsError):
        return Unreachable(
            url,
            f"cannot reach {s.hostname}:{s.port} over SSH ({e.strerror or e})",
            "check that the host is up and its sshd listens on that port",
        )
    return Unreachable(url, f"SSH to {s.where} failed ({e})", f"check that `{ssh_cmd}` works")


def _login(url: str, s: SshSettings) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    for path in s.known_hosts:
        if os.path.isfile(path):
            client.load_system_host_keys(path)  # "system": read, never written back
    client.set_missing_host_key_policy(_RejectUnknown())
    keys = [p for p in s.identity_files if os.path.isfile(p)]
    try:
        client.connect(
            s.hostname,
            port=s.port,
            username=s.user,
            key_filename=keys or None,  # type: ignore[arg-type]  # a list is accepted
            allow_agent=not s.identities_only,
            look_for_keys=not s.identities_only,
            timeout=s.connect_timeout,
            banner_timeout=s.connect_timeout,
            auth_timeout=s.connect_timeout,
            sock=paramiko.ProxyCommand(s.proxy_command) if s.proxy_command else None,
        )
    except Exception as e:
        client.close()
        raise login_error(url, s, e) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(s.keepalive)
    return client


class _Pool:
    """The process's SSH transports, by login; channel() opens a session on one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[SshSettings, list[paramiko.SSHClient]] = {}
        self._dialing: dict[SshSettings, threading.Lock] = {}

    def channel(self, url: str, s: SshSettings) -> paramiko.Channel:
        """A new session channel to `s`: on a live transport when one takes it, else on a
        new one (the first, a replacement for a dropped one, or one more past MaxSessions).
        One login per host at a time, so a burst of calls shares the handshake."""
        with self._lock:
            dialing = self._dialing.setdefault(s, threading.Lock())
        with dialing:
            for client in list(self._clients.get(s, [])):
                channel = self._session(client, s)
                if channel is not None:
                    return channel
            client = _login(url, s)
            try:
                channel = _open_session(client, s)
            except (paramiko.SSHException, EOFError, OSError) as e:
                client.close()  # not kept: every later call would log in again beside it
                raise Unreachable(
                    url,
                    f"sshd on {s.where} refused a session ({e})",
                    "check its MaxSessions and that the account may run commands",
                ) from None
            self._clients.setdefault(s, []).append(client)
            return channel

    def _session(self, client: paramiko.SSHClient, s: SshSettings) -> paramiko.Channel | None:
        """A channel on `client`, None if it is full; a dead transport is forgotten."""
        try:
            return _open_session(client, s)
        except paramiko.ChannelException:
            return None  # alive, but sshd refuses more sessions on this one
        except (paramiko.SSHException, EOFError, OSError):
            group = self._clients.get(s, [])
            if client in group:
                group.remove(client)
            client.close()
            return None

    def close_all(self) -> None:
        with self._lock:
            clients = [c for group in self._clients.values() for c in group]
            self._clients.clear()
        for client in clients:
            client.close()

    def transports(self, s: SshSettings) -> int:
        """How many transports are open to `s` (for tests and diagnostics)."""
        return len(self._clients.get(s, []))


def _open_session(client: paramiko.SSHClient, s: SshSettings) -> paramiko.Channel:
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise EOFError("the SSH connection dropped")
    return transport.open_session(timeout=s.connect_timeout)


POOL = _Pool()


def close_all() -> None:
    """Close every shared transport (the app at exit, tests after their sshd)."""
    POOL.close_all()


def dial(url: str, timeout: float | None) -> paramiko.Channel:
    """A channel whose stdin/stdout are a connection to the remote's engine."""
    target = parse_url(url)
    settings = user_settings(target)
    channel = POOL.channel(url, settings)
    try:
        channel.exec_command(target.remote_command())
    except (paramiko.SSHException, EOFError, OSError) as e:
        channel.close()
        raise Unreachable(url, f"sshd on {settings.where} would not run a command ({e})") from None
    channel.settimeout(timeout)
    return channel


def remote_failure(url: str, exit_status: int, stderr: bytes) -> Unreachable | None:
    """Why the remote `docker system dial-stdio` ended, if it failed (None if it did not)."""
    said = stderr.decode(errors="replace").strip().splitlines()
    last = said[-1] if said else ""
    if exit_status == NO_COMMAND_EXIT:
        return Unreachable(
            url,
            f"the remote has no `docker` command on the PATH of its SSH sessions ({last})",
            "install the docker CLI there: the engine is reached through "
            "`docker system dial-stdio`",
        )
    if exit_status > 0:
        return Unreachable(
            url,
            f"`docker system dial-stdio` on the remote failed with exit status {exit_status}"
            + (f": {last}" if last else ""),
            "the remote docker CLI must reach an engine: check that "
            "`docker version` works in an SSH session there (its DOCKER_HOST or context)",
        )
    return None


class ChannelSocket:
    """What http.client uses of a socket, over a channel. shutdown() wakes a read blocked
    in another thread (StreamConnection.interrupt relies on it); close() waits for the
    response's file to be closed too, as a socket's does, since http.client closes the
    connection while a `Connection: close` response is still being read."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self._lock = threading.Lock()
        self._files = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self.channel.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self.channel.settimeout(timeout)

    def makefile(self, mode: str = "rb", *_args: object, **_kw: object) -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"ChannelSocket.makefile: only 'rb' is supported, not {mode!r}")
        with self._lock:
            self._files += 1
        return io.BufferedReader(_ChannelReader(self))

    def shutdown(self, how: int) -> None:
        if how == socket.SHUT_WR:
            self.channel.shutdown_write()
        else:
            self.channel.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            done = self._files == 0
        if done:
            self._finish()

    def file_closed(self) -> None:
        with self._lock:
            self._files -= 1
            done = self._closed and self._files == 0
        if done:
            self._finish()

    def _finish(self) -> None:
        """Close the channel; if the remote already ended it, first let its exit status
        arrive, since that status is what explains a connection that failed."""
        if self.channel.eof_received:
            self.channel.status_event.wait(EXIT_WAIT_S)
        self.channel.close()


class _ChannelReader(io.RawIOBase):
    def __init__(self, owner: ChannelSocket) -> None:
        super().__init__()
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._owner.channel.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._owner.file_closed()
        super().close()


class SshConnection(http.client.HTTPConnection):
    """An HTTP connection to the engine behind `ssh://...`: its socket is a new dial-stdio
    channel. A connection the remote ended is explained by the remote command's exit."""

    def __init__(self, url: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._url = url
        self._channel: paramiko.Channel | None = None

    def connect(self) -> None:
        self._channel = dial(self._url, self.timeout)
        self.sock = ChannelSocket(self._channel)

    def send(self, data: bytes | bytearray | io.BufferedIOBase) -> None:  # type: ignore[override]
        try:
            super().send(data)
        except OSError as e:
            raise self._explained(e) from None

    def getresponse(self) -> http.client.HTTPResponse:
        try:
            return super().getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise self._explained(e) from None

    def _explained(self, e: Exception) -> Exception:
        channel = self._channel
        if channel is None or not channel.status_event.wait(EXIT_WAIT_S):
            return e  # the remote command still runs: not its failure
        stderr = b""
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(65536)
        return remote_failure(self._url, channel.recv_exit_status(), stderr) or e
