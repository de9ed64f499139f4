"""An isolated stand-in for the host's network namespace, for datapath and firewall tests.

Bridges, veths, sysctls and netfilter rules are all per network namespace, so
a test that runs inside a fresh netns exercises the real kernel paths while
the real host (and other people's engines and tests running meanwhile) sees
nothing, and a plain before/after comparison of `ip -o link`, `nft list
ruleset` or `iptables-save` is exact. `isolated_host()` enters one on the
calling thread; child tools (nft, iptables, ip) started from that thread run
in it too. Every netns made through `Sandbox.netns()` is removed at the end,
whatever happened, and so is the stand-in host itself (taking its links and
rules with it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.network import netns


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[Path] = []

    def netns(self, name: str) -> Path:
        """A fresh container-like netns (removed when the sandbox ends)."""
        path = self.root / name
        self.made.append(path)
        netns.create(path)
        return path


@contextlib.contextmanager
def isolated_host() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix=f"dynet{os.getpid()}-"))
    box = Sandbox(root)
    host = root / "host"
    try:
        netns.create(host)
        with netns.entered(host):
            yield box
    finally:
        for path in [*box.made, host]:
            netns.remove(path)
        shutil.rmtree(root, ignore_errors=True)


def run(*argv: str) -> str:
    """A tool's stdout, run in the calling thread's netns; fails the test on error."""
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"{argv}: {res.stderr}"
    return res.stdout


def inside(path: Path, *argv: str) -> str:
    """A tool's stdout, run inside the netns at `path`."""
    return run("nsenter", f"--net={path}", *argv)


def link_names() -> list[str]:
    """`ip -o link` names, sorted."""
    return sorted(
        line.split(": ")[1].split("@")[0] for line in run("ip", "-o", "link").splitlines()
    )


def masked(text: str) -> str:
    """A ruleset listing with its counters masked (traffic changes them)."""
    text = re.sub(r"packets \d+ bytes \d+", "packets - bytes -", text)
    text = re.sub(r"\[\d+:\d+\]", "[-:-]", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def connect(src: Path, dst: Path, ip: str, port: int = 7000, timeout: float = 3.5) -> str | None:
    """Open a TCP connection from netns `src` to ip:port served in netns `dst`.

    Returns the client address the server saw (so NAT shows), or None when the
    connection never got through. The timeout outlasts one lost SYN or ARP
    request (both are sent again after 1 s), which a loaded host can cause.
    """
    with netns.entered(dst):
        srv = socket.create_server((ip, port))
    with netns.entered(src):
        cli = socket.socket()
    with srv, cli:
        cli.settimeout(timeout)
        srv.settimeout(timeout)
        try:
            cli.connect((ip, port))
        except (TimeoutError, ConnectionRefusedError, OSError):
            return None
        conn, peer = srv.accept()
        conn.close()
        return str(peer[0])


def blocked(src: Path, dst: Path, ip: str, port: int = 7000) -> bool:
    """No connection from `src` reaches ip:port in `dst` within a second (a firewall
    rule drops it). Only ever asserted where the same path is shown open elsewhere."""
    return connect(src, dst, ip, port, timeout=1.0) is None
