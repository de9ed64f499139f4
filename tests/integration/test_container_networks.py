"""Acceptance: containers on networks, through the real docker CLI and busybox.

Two containers of a user network reach each other by name and alias (embedded DNS), names
the engine does not own are forwarded, the default bridge gives addresses but no names,
`--link` and `container:<id>` work, endpoints are hot-plugged into running containers, and
nothing (veth, netns file) outlives a container. An engine killed with -9 comes back with
its running containers' endpoints and DNS intact.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.network import dnswire, netns
from engine.network.datapath import veth_name
from tests.engine_process import EngineProcess, api_call, wait_for
from tests.outside_name import outside_name

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]  # /hostname says who answered
NET = "n3-app"


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    shared_engine.docker("network", "create", NET)
    yield shared_engine


def run_d(eng: EngineProcess, *args: str) -> str:
    return eng.docker("run", "-d", *args).stdout.strip()


def rm(eng: EngineProcess, *names: str) -> None:
    eng.docker("rm", "-f", *names, check=False)


def inspect(eng: EngineProcess, name: str) -> dict[str, Any]:
    return dict(json.loads(eng.docker("inspect", name).stdout)[0])


def ip_on(eng: EngineProcess, name: str, net: str) -> str:
    return str(inspect(eng, name)["NetworkSettings"]["Networks"][net]["IPAddress"])


def fetch(eng: EngineProcess, net: str, url: str, *extra: str) -> str:
    res = eng.docker(
        "run",
        "--rm",
        "--network",
        net,
        *extra,
        "busybox",
        # busybox's `wget -T` crashes (SIGSEGV) in the test image: `timeout` bounds it instead.
        "timeout",
        "5",
        "wget",
        "-qO-",
        url,
        check=False,
    )
    if res.returncode:
        return f"failed ({res.returncode}): {res.stderr.strip()}"
    return res.stdout.strip()


def veths(eng: EngineProcess, cid: str) -> list[str]:
    """Host links named after this container (the engine's rule, for each of its networks)."""
    ids = eng.docker("network", "ls", "-q", "--no-trunc").stdout.split()
    names = {veth_name(cid, nid) for nid in ids}
    return sorted(n for n in os.listdir("/sys/class/net") if n in names)


def netns_file(eng: EngineProcess, cid: str) -> Path:
    return eng.exec_root / "netns" / cid[:16]


# -- user networks: names, aliases, forwarding ---------------------------------------


def test_user_network_reaches_members_by_name_and_alias(eng: EngineProcess) -> None:
    run_d(
        eng,
        "--name",
        "n3web",
        "--hostname",
        "webhost",
        "--network",
        NET,
        "--network-alias",
        "site",
        "busybox",
        *HTTPD,
    )
    try:
        assert fetch(eng, NET, "http://n3web/hostname") == "webhost"
        assert fetch(eng, NET, "http://site/hostname") == "webhost"
        ping = eng.docker("run", "--rm", "--network", NET, "busybox", "ping", "-c1", "-W3", "n3web")
        assert "1 packets received" in ping.stdout
        ep = inspect(eng, "n3web")["NetworkSettings"]["Networks"][NET]
        subnet = json.loads(eng.docker("network", "inspect", NET).stdout)[0]["IPAM"]["Config"][0]
        assert ipaddress.IPv4Address(ep["IPAddress"]) in ipaddress.IPv4Network(subnet["Subnet"])
        assert ep["Aliases"] == ["site"]
        assert ep["DNSNames"][:2] == ["n3web", "site"] and "webhost" in ep["DNSNames"]
        members = json.loads(eng.docker("network", "inspect", NET).stdout)[0]["Containers"]
        assert [m["Name"] for m in members.values()] == ["n3web"]
        assert eng.docker("ps", "-q", "--filter", f"network={NET}").stdout.split() == [
            inspect(eng, "n3web")["Id"][:12]
        ]
    finally:
        rm(eng, "n3web")


def test_resolv_conf_and_hosts_inside(eng: EngineProcess) -> None:
    out = eng.docker(
        "run",
        "--rm",
        "--network",
        NET,
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; ip -o -4 addr show eth0; cat /etc/hosts",
    ).stdout
    assert "nameserver 127.0.0.11" in out
    ip = out.split(" inet ")[1].split("/")[0]
    assert f"{ip}\tbox" in out


def test_a_container_can_serve_dns_on_port_53_and_still_resolve_names(eng: EngineProcess) -> None:
    """A DNS server in a container (Pi-hole, CoreDNS) binds port 53 on a user network, where
    127.0.0.11 answers names on redirected ports, as in Docker; its peers reach it on :53."""
    run_d(eng, "--name", "n3dns", "--network", NET, "busybox", "sh", "-c",
          "while true; do echo served | nc -l -p 53; done")  # fmt: skip
    try:
        script = "nc n3dns 53 </dev/null; nslookup n3dns >/dev/null && echo named"
        out = eng.docker("run", "--rm", "--network", NET, "busybox", "sh", "-c", script).stdout
        assert out.split() == ["served", "named"]
        inside = eng.docker("exec", "n3dns", "nslookup", "n3dns").stdout
        assert ip_on(eng, "n3dns", NET) in inside  # its own 127.0.0.11 still answers
    finally:
        rm(eng, "n3dns")


def test_outside_names_are_forwarded_to_the_hosts_resolver(eng: EngineProcess) -> None:
    """The host's resolver answers for this name here; the container must get the same."""
    name = outside_name()
    if not name:
        pytest.skip("the host's own resolver answers nothing here (see the --dns test)")
    want = {a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET)}
    out = eng.docker("run", "--rm", "--network", NET, "busybox", "nslookup", name).stdout
    assert want & set(out.split()), out


class StubDns:
    """A DNS server for one name (stub.test A 192.0.2.77) on 127.53.x.y:53 of the host:
    the upstream a container's --dns names, so forwarding is tested without the internet."""

    def __init__(self) -> None:
        for last in range(2, 250):
            self.ip = f"127.53.{last}.{last}"
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.sock.bind((self.ip, 53))
                break
            except OSError:
                self.sock.close()
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            query = dnswire.parse(data)
            q = query.questions[0]
            if q.name == "stub.test":
                answers = (
                    [dnswire.a_record(q.name, "192.0.2.77", 30)] if q.qtype == dnswire.A else []
                )
                reply = dnswire.reply(query, answers=answers)
            else:
                reply = dnswire.reply(query, dnswire.NXDOMAIN)
            self.sock.sendto(dnswire.encode(reply, 512), addr)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.sock.close()


def test_forwarding_uses_the_containers_dns_servers(eng: EngineProcess) -> None:
    stub = StubDns()
    try:
        for net in (NET, "bridge"):
            out = eng.docker(
                "run",
                "--rm",
                "--network",
                net,
                "--dns",
                stub.ip,
                "busybox",
                "nslookup",
                "stub.test",
            ).stdout
            assert "192.0.2.77" in out, (net, out)
    finally:
        stub.close()


def test_internal_only_containers_get_no_forwarding_until_connected(eng: EngineProcess) -> None:
    eng.docker("network", "create", "--internal", "n3-vault")
    stub = StubDns()
    try:
        run_d(
            eng,
            "--name",
            "n3v",
            "--network",
            "n3-vault",
            "--dns",
            stub.ip,
            "busybox",
            "sleep",
            "1000",
        )
        ask = ["exec", "n3v", "nslookup", "stub.test"]
        assert "192.0.2.77" not in eng.docker(*ask, check=False).stdout
        assert "default" not in eng.docker("exec", "n3v", "ip", "route").stdout
        eng.docker("network", "connect", NET, "n3v")
        assert "192.0.2.77" in eng.docker(*ask, check=False).stdout
        assert "default via" in eng.docker("exec", "n3v", "ip", "route").stdout  # the way out
    finally:
        rm(eng, "n3v")
        eng.docker("network", "rm", "n3-vault", check=False)
        stub.close()


def test_reverse_lookup_and_network_events(eng: EngineProcess) -> None:
    since = time.time()
    cid = run_d(eng, "--name", "n3ptr", "--network", NET, "busybox", "sleep", "1000")
    ip = ip_on(eng, "n3ptr", NET)
    out = eng.docker("run", "--rm", "--network", NET, "busybox", "nslookup", ip, check=False)
    assert f"n3ptr.{NET}" in out.stdout
    rm(eng, "n3ptr")
    until = time.time() + 1
    lines = eng.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "type=network",
        "--format",
        "{{json .}}",
    ).stdout.splitlines()
    seen = [
        (e["Action"], e["Actor"]["Attributes"].get("name"))
        for e in map(json.loads, lines)
        if e["Actor"]["Attributes"].get("container") == cid
    ]
    assert seen == [("connect", NET), ("disconnect", NET)]


# -- the default bridge, links, container:<id> ----------------------------------------


def test_default_bridge_gives_addresses_but_no_names(eng: EngineProcess) -> None:
    run_d(eng, "--name", "n3b1", "--hostname", "b1", "busybox", *HTTPD)
    try:
        ip = ip_on(eng, "n3b1", "bridge")
        subnet = json.loads(eng.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]
        cidr = subnet["Config"][0]["Subnet"]
        assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr)
        top = inspect(eng, "n3b1")["NetworkSettings"]
        assert top["IPAddress"] == ip and top["Gateway"] and top["MacAddress"].startswith("02:42")
        assert fetch(eng, "bridge", f"http://{ip}/hostname") == "b1"
        assert fetch(eng, "bridge", "http://n3b1/hostname").startswith("failed")
    finally:
        rm(eng, "n3b1")


def test_link_on_the_default_bridge(eng: EngineProcess) -> None:
    run_d(eng, "--name", "n3linked", "--hostname", "lk", "busybox", *HTTPD)
    try:
        assert fetch(eng, "bridge", "http://db/hostname", "--link", "n3linked:db") == "lk"
        hosts = eng.docker("run", "--rm", "--link", "n3linked:db", "busybox", "cat", "/etc/hosts")
        assert f"{ip_on(eng, 'n3linked', 'bridge')}\tdb lk n3linked" in hosts.stdout
    finally:
        rm(eng, "n3linked")
    bad = eng.docker("run", "--rm", "--link", "n3ghost:db", "busybox", "true", check=False)
    assert "could not get container for n3ghost" in bad.stderr


def test_container_mode_shares_the_netns(eng: EngineProcess) -> None:
    run_d(eng, "--name", "n3owner", "busybox", "sleep", "1000")
    try:
        ip = ip_on(eng, "n3owner", "bridge")
        out = eng.docker(
            "run", "--rm", "--network", "container:n3owner", "busybox", "ip", "-o", "-4", "addr"
        ).stdout
        assert f"inet {ip}/" in out
        eng.docker("stop", "-t", "0", "n3owner")
        res = eng.docker(
            "run", "--rm", "--network", "container:n3owner", "busybox", "true", check=False
        )
        assert "cannot join network of a non running container: n3owner" in res.stderr
    finally:
        rm(eng, "n3owner")


# -- hot-plug and cleanup ---------------------------------------------------------------


def test_connect_and_disconnect_a_running_container(eng: EngineProcess) -> None:
    cid = run_d(eng, "--name", "n3plug", "--hostname", "plug", "busybox", *HTTPD)
    try:
        eng.docker("network", "connect", "--alias", "plugged", NET, "n3plug")
        addrs = eng.docker("exec", "n3plug", "ip", "-o", "-4", "addr").stdout
        assert f"eth1    inet {ip_on(eng, 'n3plug', NET)}/" in addrs
        assert fetch(eng, NET, "http://plugged/hostname") == "plug"
        again = eng.docker("network", "connect", NET, "n3plug", check=False)
        assert "endpoint with name n3plug already exists in network n3-app" in again.stderr
        assert len(veths(eng, cid)) == 2
        eng.docker("network", "disconnect", NET, "n3plug")
        assert "eth1" not in eng.docker("exec", "n3plug", "ip", "-o", "addr").stdout
        assert NET not in inspect(eng, "n3plug")["NetworkSettings"]["Networks"]
        assert len(veths(eng, cid)) == 1
        res = eng.docker("network", "disconnect", NET, "n3plug", check=False)
        assert "is not connected to network n3-app" in res.stderr
    finally:
        rm(eng, "n3plug")


def test_connect_a_stopped_container_takes_effect_at_start(eng: EngineProcess) -> None:
    eng.docker("create", "--name", "n3later", "busybox", "sleep", "1000")
    try:
        eng.docker("network", "connect", NET, "n3later")
        assert inspect(eng, "n3later")["NetworkSettings"]["Networks"][NET]["IPAddress"] == ""
        eng.docker("start", "n3later")
        assert ip_on(eng, "n3later", NET)
        assert ip_on(eng, "n3later", "bridge")
    finally:
        rm(eng, "n3later")


def test_stop_and_rm_leave_no_veth_or_netns(eng: EngineProcess) -> None:
    cid = run_d(eng, "--name", "n3clean", "--network", NET, "busybox", "sleep", "1000")
    eng.docker("network", "connect", "bridge", "n3clean")
    assert len(veths(eng, cid)) == 2 and netns_file(eng, cid).exists()
    eng.docker("stop", "-t", "0", "n3clean")
    assert not netns_file(eng, cid).exists()
    assert wait_for(lambda: veths(eng, cid) == [], 10)  # deleted off the exit path
    ep = inspect(eng, "n3clean")["NetworkSettings"]["Networks"][NET]
    assert ep["IPAddress"] == "" and ep["EndpointID"] == ""
    eng.docker("start", "n3clean")
    assert len(veths(eng, cid)) == 2
    eng.docker("restart", "-t", "0", "n3clean")  # down and up at once: the same veth names
    assert len(veths(eng, cid)) == 2 and ip_on(eng, "n3clean", NET)
    eng.docker("rm", "-f", "n3clean")
    assert not netns_file(eng, cid).exists()
    assert wait_for(lambda: veths(eng, cid) == [], 10)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"HostConfig": {"NetworkMode": "n3-nope"}}, 404, "network n3-nope not found"),
        (
            {"NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}},
            400,
            "network-scoped alias is supported only",
        ),
        (
            {
                "NetworkingConfig": {
                    "EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.30.0.9"}}}
                }
            },
            400,
            "user specified IP address is supported on user defined networks only",
        ),
        ({"HostConfig": {"NetworkMode": "container:n3-ghost"}}, 404, "n3-ghost"),
        (
            {
                "HostConfig": {"NetworkMode": "host"},
                "NetworkingConfig": {"EndpointsConfig": {NET: {}}},
            },
            400,
            "connected to host network",
        ),
        ({"HostConfig": {"Links": ["n3-ghost:db"]}}, 400, "could not get container for n3-ghost"),
        ({"NetworkingConfig": {"EndpointsConfig": []}}, 400, "EndpointsConfig must be"),
    ],
)
def test_refused_network_options(
    eng: EngineProcess, body: dict[str, Any], status: int, message: str
) -> None:
    """Through the API: the CLI refuses some of these itself, and answers a create's 404
    by pulling the image (which cannot work here)."""
    before = eng.docker("ps", "-aq").stdout
    got, reply = api_call(
        eng.socket, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body}
    )
    assert (got, message in reply["message"]) == (status, True), reply
    assert eng.docker("ps", "-aq").stdout == before


def test_start_after_its_network_was_removed_names_it(eng: EngineProcess) -> None:
    eng.docker("network", "create", "n3-gone")
    eng.docker("create", "--name", "n3orphan", "--network", "n3-gone", "busybox", "true")
    try:
        eng.docker("network", "rm", "n3-gone")
        res = eng.docker("start", "n3orphan", check=False)
        assert "network n3-gone not found: it was removed" in res.stderr
        assert inspect(eng, "n3orphan")["State"]["Status"] == "created"
        assert not netns_file(eng, inspect(eng, "n3orphan")["Id"]).exists()
    finally:
        rm(eng, "n3orphan")


# -- engine crash ---------------------------------------------------------------------------


def test_engine_kill9_keeps_endpoints_and_dns(
    engine: EngineProcess, registry_with_images: str
) -> None:
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    engine.docker("network", "create", "n3-crash")
    run_d(
        engine, "--name", "n3srv", "--hostname", "srv", "--network", "n3-crash", "busybox", *HTTPD
    )
    run_d(engine, "--name", "n3cli", "--network", "n3-crash", "busybox", "sleep", "1000")
    ips = {n: ip_on(engine, n, "n3-crash") for n in ("n3srv", "n3cli")}
    engine.kill9()
    stale = engine.exec_root / "netns" / "0123456789abcdef"  # as if it died mid-removal
    netns.create(stale)
    engine.start()
    assert not stale.exists()
    assert {n: ip_on(engine, n, "n3-crash") for n in ips} == ips
    wget = ["exec", "n3cli", "timeout", "5", "wget", "-qO-", "http://n3srv/hostname"]
    assert wait_for(lambda: engine.docker(*wget, check=False).stdout.strip() == "srv", 10)
    fresh = run_d(engine, "--network", "n3-crash", "busybox", "sleep", "1000")
    assert ip_on(engine, fresh, "n3-crash") not in ips.values()  # IPAM knew the old ones
