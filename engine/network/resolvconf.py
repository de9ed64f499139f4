"""The host's /etc/resolv.conf, read when it changes.

The embedded DNS forwards names it does not own to the host's nameservers and
tries the host's search domains when matching container names; both follow the
file as DHCP or a VPN rewrites it, without an engine restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HOST_RESOLV = Path("/etc/resolv.conf")
DNS_PORT = 53


@dataclass(frozen=True)
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse(text: str) -> ResolvConf:
    """resolv.conf(5): nameserver lines add up; the last search or domain line wins."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver":
            servers.append(values[0])
        elif key in ("search", "domain"):
            search = [v.lower().rstrip(".") for v in values]
        elif key == "options":
            options.extend(values)
    return ResolvConf(servers, search, options)


class HostResolvConf:
    """The parsed file, re-read only when its inode, size or mtime changed."""

    def __init__(self, path: Path = HOST_RESOLV) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._conf = ResolvConf()

    def current(self) -> ResolvConf:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._conf = None, ResolvConf()
            return self._conf
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            try:
                self._conf = parse(self.path.read_text(errors="replace"))
            except OSError:
                self._conf = ResolvConf()
            self._stamp = stamp
        return self._conf

    def upstreams(self) -> list[tuple[str, int]]:
        return [(ip, DNS_PORT) for ip in self.current().nameservers]
