"""Acceptance: user-defined networks isolate their members, and an --internal network has no
way out.

Topology (one engine per firewall backend, nft then iptables: tests/firewall_backends.py):
networks `red` and `blue`, and `vault` (--internal).
Each holds httpd containers; `outside` is an HTTP server in a network namespace this test
makes, joined to the host by a veth pair, standing in for "the world" (this machine has no
internet). A container of a normal network reaches it through the engine's gateway and NAT;
a container of the internal network must not, which proves the internal network's isolation
rather than the absence of a route anywhere.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.network.firewall_common import chain_tag
from engine.network.manager import firewall_table
from tests.engine_process import EngineProcess, kill_quietly, wait_for
from tests.firewall_backends import BackendEngine

SERVE = ["httpd", "-f", "-p", "80", "-h", "/etc"]  # serves /etc/hostname: who answered
NETWORKS = {"red": [], "blue": [], "vault": ["--internal"]}
MEMBERS = {"red1": "red", "red2": "red", "blue1": "blue", "vault1": "vault", "vault2": "vault"}


@dataclass
class Outside:
    """An HTTP server in a namespace of our own, at `ip`:`port`."""

    ip: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/hostname"


def _accepts(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
    except OSError:
        return False
    return True


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def outside_host() -> Iterator[Outside]:
    """Netns `dyt-out-<pid>` with eth0 198.18.<n>.2/24, its peer `dyto<pid>` 198.18.<n>.1 on
    the host, a default route back to the host, and an HTTP server; all removed after.
    198.18.0.0/15 is reserved for benchmarking, so it collides with no real network."""
    pid = os.getpid()
    ns, host_if, n = f"dyt-out-{pid}", f"dyto{pid}"[:15], pid % 250 + 1
    ip, port = f"198.18.{n}.2", 8000
    docroot = Path(tempfile.mkdtemp(prefix="dyt-out-"))
    (docroot / "hostname").write_text("outside\n")
    server: subprocess.Popen[bytes] | None = None
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"198.18.{n}.1/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"],
            ["ip", "link", "set", "eth0", "up"],
            ["ip", "route", "add", "default", "via", f"198.18.{n}.1"],
        ):
            sh("ip", "netns", "exec", ns, *cmd)
        # busybox httpd, not http.server: that one resolves its own address at bind time,
        # which waits on DNS timeouts in a namespace whose default route leads nowhere.
        serve = ["busybox", "httpd", "-f", "-p", f"{ip}:{port}", "-h", str(docroot)]
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, *serve],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: _accepts(ip, port)), "the outside server did not start"
        yield Outside(ip, port)
    finally:
        if server is not None:
            kill_quietly(server.pid)
            server.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for f in docroot.iterdir():
            f.unlink()
        docroot.rmdir()


def started(backend: str, registry: str) -> BackendEngine:
    """An engine that can use only `backend`, with busybox (closed by the caller)."""
    eng = BackendEngine(backend)
    eng.start()
    eng.docker("pull", f"{registry}/busybox")
    eng.docker("tag", f"{registry}/busybox", "busybox")
    return eng


def rules_in_use(eng: EngineProcess) -> str:
    """Which backend holds this engine's rules: its nft table, or its iptables chains."""
    table = firewall_table(eng.argv()[eng.argv().index("--bridge") + 1])
    nft = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, check=False)
    chain = f"DOCKYARD-{chain_tag(table)}-FWD"
    ipt = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return ("nft " if nft.returncode == 0 else "") + ("iptables" if chain in ipt else "")


@pytest.fixture(scope="module", params=["nft", "iptables"])
def net(request: pytest.FixtureRequest, registry_with_images: str) -> Iterator[EngineProcess]:
    """The topology on an engine that uses the nft backend, then on one that uses iptables."""
    eng = started(request.param, registry_with_images)
    try:
        for name, opts in NETWORKS.items():
            eng.docker("network", "create", *opts, name)
        for name, network in MEMBERS.items():
            eng.docker("run", "-d", "--name", name, "--hostname", name,
                       "--network", network, "busybox", *SERVE)  # fmt: skip
        assert rules_in_use(eng).strip() == request.param, eng.log_tail()
        yield eng
    finally:
        eng.close()


def ip_of(eng: EngineProcess, name: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return eng.docker("inspect", "-f", fmt, name).stdout.strip()


def fetch(eng: EngineProcess, client: str, url: str) -> tuple[int, str]:
    """wget from inside `client` with a short timeout: (exit code, body or error). The
    timeout applet, not wget -T, which crashes Debian's busybox 1.35."""
    res = eng.docker("exec", client, "timeout", "3", "wget", "-q", "-O-", url, check=False)
    return res.returncode, (res.stdout + res.stderr).strip()


def test_same_network_reaches_by_ip_and_name(net: EngineProcess) -> None:
    assert fetch(net, "red2", f"http://{ip_of(net, 'red1')}/hostname") == (0, "red1")
    assert fetch(net, "red2", "http://red1/hostname") == (0, "red1")
    ping = net.docker("exec", "red2", "ping", "-c", "1", "-W", "3", ip_of(net, "red1"), check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_other_network_is_unreachable(net: EngineProcess) -> None:
    red1 = ip_of(net, "red1")
    code, out = fetch(net, "blue1", f"http://{red1}/hostname")
    assert code != 0, f"blue1 reached red1 at {red1}: {out}"
    ping = net.docker("exec", "blue1", "ping", "-c", "1", "-W", "2", red1, check=False)
    assert ping.returncode != 0, ping.stdout
    code, out = fetch(net, "red1", f"http://{ip_of(net, 'blue1')}/hostname")
    assert code != 0, f"red1 reached blue1: {out}"


def test_names_of_other_networks_do_not_resolve(net: EngineProcess) -> None:
    code, out = fetch(net, "blue1", "http://red1/hostname")
    assert code != 0, out


def test_internal_network_members_reach_each_other(net: EngineProcess) -> None:
    assert fetch(net, "vault2", "http://vault1/hostname") == (0, "vault1")


def test_internal_network_cannot_reach_outside(net: EngineProcess) -> None:
    with outside_host() as world:
        assert fetch(net, "red1", world.url) == (0, "outside"), "the control must get out"
        code, out = fetch(net, "vault1", world.url)
        assert code != 0, f"an internal network reached {world.url}: {out}"
        routes = net.docker("exec", "vault1", "ip", "route").stdout
        assert "default" not in routes, routes


def test_internal_network_is_not_reachable_from_other_networks(net: EngineProcess) -> None:
    code, out = fetch(net, "red1", f"http://{ip_of(net, 'vault1')}/hostname")
    assert code != 0, out


def test_without_a_firewall_names_and_published_ports_work(registry_with_images: str) -> None:
    """No nft, no iptables: the engine says so, makes no rules, and containers still reach
    each other by name and through a published port (the proxy needs no rules)."""
    eng = started("none", registry_with_images)
    try:
        eng.docker("network", "create", "plain")
        for name in ("one", "two"):
            eng.docker("run", "-d", "--name", name, "--hostname", name, "--network", "plain",
                       "-p", "127.0.0.1::80", "busybox", *SERVE)  # fmt: skip
        assert "no firewall backend" in eng.log_path.read_text()
        assert rules_in_use(eng) == ""
        assert fetch(eng, "two", "http://one/hostname") == (0, "one")
        host_port = int(eng.docker("port", "one", "80").stdout.split(":")[-1])
        conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=10)
        conn.request("GET", "/hostname")
        assert conn.getresponse().read() == b"one\n"
        conn.close()
    finally:
        eng.close()
