"""A DNS name outside this machine that its own resolver answers, for forwarding tests.

Why not a fixed name: the tests must not depend on (or name) any particular public host,
and a closed CI network may resolve only a few names. The machine's apt sources name the
mirror its package installs came through, so the resolver answers for that host wherever
`make deps` worked; DOCKYARD_TEST_OUTSIDE_NAME overrides it.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

APT = Path("/etc/apt")


def outside_name() -> str:
    """The first such name the host resolves, or "" when this machine offers none."""
    if os.environ.get("DOCKYARD_TEST_OUTSIDE_NAME"):
        return os.environ["DOCKYARD_TEST_OUTSIDE_NAME"]
    for host in _mirror_hosts():
        try:
            socket.getaddrinfo(host, 80, socket.AF_INET)
        except OSError:
            continue
        return host
    return ""


def _mirror_hosts() -> list[str]:
    """Hosts of the active `deb` and `URIs:` lines (comments left out), in order."""
    hosts: list[str] = []
    for text in _apt_sources():
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith(("deb ", "URIs:")):
                continue
            for url in re.findall(r"https?://[^\s\]]+", line):
                host = urlsplit(url).hostname or ""
                if host and host not in hosts and not host.replace(".", "").isdigit():
                    hosts.append(host)
    return hosts


def _apt_sources() -> list[str]:
    files = [APT / "sources.list", *sorted((APT / "sources.list.d").glob("*"))]
    texts = []
    for f in files:
        try:
            texts.append(f.read_text())
        except OSError:
            continue
    return texts
