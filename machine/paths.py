"""Where a machine lives on each host OS, and the address its engine answers on.

Layout: `<data dir>/<machine>/` holds everything of one machine (machine/filenames.py),
with the engine socket at `<data dir>/<machine>/docker.sock`. The data dir is the
platform's user data directory (platformdirs), or `$DOCKYARD_HOME` when set (tests, and
users who want it elsewhere). Its path must stay short: macOS caps a unix socket path at
104 bytes, Linux at 108, so the machine name is capped too (machine/config.py).

Windows: the docker CLI there dials named pipes (`npipe://`) natively, and Python on
Windows has no AF_UNIX sockets, so the host end of the engine forward is the named pipe
`\\\\.\\pipe\\dockyard-<machine>`, created with a DACL for the current user only, and the
docker context points at `npipe:////./pipe/dockyard-<machine>`. Loopback TCP was the
alternative and is refused: any local user or process can connect to 127.0.0.1, the
engine's API is root inside the VM, and securing it would need per-machine TLS
certificates. The pipe has no file in the machine dir; everything else stays there.

The path logic is pure (a `Host` value in, paths out), so a test can ask for Windows
answers on Linux with a fake `Host`; only `Host.current()` looks at the real machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

import platformdirs

from machine import filenames

APP_NAME = "dockyard"
HOME_ENV = "DOCKYARD_HOME"
MAX_SOCKET_PATH = 104  # macOS's sun_path; Linux allows 108


@dataclass(frozen=True)
class Host:
    """What path logic needs to know about a host: its OS (a `sys.platform` value), its
    environment, and the platform's user data directory for Dockyard."""

    system: str
    user_data_dir: PurePath
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def current(cls) -> Host:
        return cls(
            sys.platform, platformdirs.user_data_path(APP_NAME, appauthor=False), dict(os.environ)
        )

    @property
    def windows(self) -> bool:
        return self.system == "win32"

    def path(self, text: str) -> PurePath:
        """A path of this host's flavour (Windows paths parse differently)."""
        return PureWindowsPath(text) if self.windows else PurePosixPath(text)


def data_dir(host: Host) -> PurePath:
    override = host.env.get(HOME_ENV, "")
    return host.path(override) if override else host.user_data_dir


def machine_dir(host: Host, name: str) -> PurePath:
    return data_dir(host) / name


def socket_path(host: Host, name: str) -> PurePath:
    """The unix socket the engine answers on (not used on Windows: see pipe_name)."""
    return machine_dir(host, name) / filenames.SOCKET


def pipe_name(name: str) -> str:
    """The Windows named pipe of a machine's engine, as Win32 APIs spell it."""
    return rf"\\.\pipe\{APP_NAME}-{name}"


def engine_endpoint(host: Host, name: str) -> str:
    """The DOCKER_HOST value (and docker context endpoint) of a machine's engine."""
    if host.windows:
        return f"npipe:////./pipe/{APP_NAME}-{name}"
    return f"unix://{socket_path(host, name)}"


def socket_too_long(host: Host, name: str) -> str:
    """Why the socket path cannot work on this host, or "" when it can."""
    if host.windows:
        return ""
    sock = str(socket_path(host, name))
    if len(sock.encode()) < MAX_SOCKET_PATH:
        return ""
    return (
        f"the engine socket path {sock} is {len(sock.encode())} bytes; unix sockets allow "
        f"fewer than {MAX_SOCKET_PATH}"
    )


def local(path: PurePath) -> Path:
    """A pure path of the running host as a concrete Path (for the effectful callers)."""
    return Path(path)
