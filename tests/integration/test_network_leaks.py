"""Networking leaves nothing behind: after networks, containers (--rm ones too), hot-plugged
endpoints, an engine killed with -9 and restarted, and an engine stopped with SIGTERM, the
host's links, netns files, mounts and firewall rules are exactly what they were before the
engine started (tests/netleaks.py says what counts as ours).
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.network.datapath import veth_name
from engine.network.firewall_common import chain_tag
from engine.network.manager import bridge_device, firewall_table
from tests.engine_process import EngineProcess
from tests.firewall_backends import BACKENDS, BackendEngine
from tests.netleaks import HostState, Owner, assert_no_leaks, leaks

SLEEP = ["busybox", "sleep", "1000"]


@pytest.fixture(params=BACKENDS)
def fresh(
    request: pytest.FixtureRequest, registry_with_images: str
) -> Iterator[tuple[EngineProcess, HostState]]:
    """An engine with busybox that can use only one firewall backend (nft, iptables or
    none), and the host as it was before that engine started."""
    eng = BackendEngine(request.param)
    try:
        before = HostState.take(eng.dir)
        eng.start()
        eng.docker("pull", f"{registry_with_images}/busybox")
        eng.docker("tag", f"{registry_with_images}/busybox", "busybox")
        yield eng, before
    finally:
        eng.close()


def run_d(eng: EngineProcess, owner: Owner, *args: str) -> str:
    cid = eng.docker("run", "-d", *args).stdout.strip()
    owner.add_container(cid)
    owner.observe()
    return cid


def net_id(eng: EngineProcess, name: str) -> str:
    return eng.docker("network", "inspect", "-f", "{{.Id}}", name).stdout.strip()


def netns_files(eng: EngineProcess) -> list[str]:
    return sorted(p.name for p in eng.exec_root.glob("netns/*"))


def test_container_and_network_lifecycle(
    fresh: tuple[EngineProcess, HostState], tmp_path: Path
) -> None:
    eng, before = fresh
    owner = Owner(eng)
    for net in ("leak-a", "leak-b"):
        eng.docker("network", "create", net)
    owner.observe()
    run_d(eng, owner, "--name", "plain", *SLEEP)
    run_d(eng, owner, "--name", "multi", "--network", "leak-a", *SLEEP)
    run_d(eng, owner, "--rm", "--name", "gone", "--network", "leak-b", *SLEEP)
    run_d(eng, owner, "--name", "ported", "-p", "127.0.0.1::80", *SLEEP)
    cidfile = tmp_path / "cid"
    eng.docker("run", "--rm", "--cidfile", str(cidfile), "--network", "leak-a", "busybox", "true")
    owner.add_container(cidfile.read_text())

    eng.docker("network", "connect", "leak-b", "multi")
    eng.docker("network", "connect", "leak-a", "plain")
    owner.observe()
    eng.docker("network", "disconnect", "leak-b", "multi")
    eng.docker("stop", "-t", "1", "gone")  # --rm: removed on exit
    eng.docker("stop", "-t", "1", "multi")
    eng.docker("start", "multi")
    owner.observe()
    eng.docker("rm", "-f", "multi", "plain", "ported")
    eng.docker("network", "rm", "leak-a", "leak-b")
    assert eng.docker("ps", "-aq").stdout.strip() == ""
    assert netns_files(eng) == []
    eng.stop()
    assert eng.proc is not None and eng.proc.returncode == 0, eng.log_tail()
    assert_no_leaks(before, owner)


def test_engine_killed_then_restarted(fresh: tuple[EngineProcess, HostState]) -> None:
    eng, before = fresh
    owner = Owner(eng)
    eng.docker("network", "create", "crash-net")
    run_d(eng, owner, "--name", "survivor", "--network", "crash-net", *SLEEP)
    run_d(eng, owner, "--name", "dflt", "-p", "127.0.0.1::80", *SLEEP)
    eng.kill9()
    eng.start()
    running = eng.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(running) == ["dflt", "survivor"], eng.log_tail()
    eng.docker("rm", "-f", "survivor", "dflt")
    eng.docker("network", "rm", "crash-net")
    assert netns_files(eng) == []
    eng.stop()
    assert_no_leaks(before, owner)


def test_sigterm_keeps_what_running_containers_use(fresh: tuple[EngineProcess, HostState]) -> None:
    """A graceful stop leaves running containers (and so their network) alone, and removes
    the rest; the next engine cleans up after them once they are removed."""
    eng, before = fresh
    owner = Owner(eng)
    eng.docker("network", "create", "kept-net")
    eng.docker("network", "create", "idle-net")
    run_d(eng, owner, "--name", "keeper", "--network", "kept-net", *SLEEP)
    kept, idle = (bridge_device(net_id(eng, n)) for n in ("kept-net", "idle-net"))
    eng.stop()
    links = {p.name for p in Path("/sys/class/net").iterdir()}
    assert len(netns_files(eng)) == 1
    assert kept in links, "a running container's bridge went away with the engine"
    assert idle not in links, "an unused bridge outlived the engine"
    eng.start()
    assert eng.docker("ps", "--format", "{{.Names}}").stdout.split() == ["keeper"]
    eng.docker("rm", "-f", "keeper")
    eng.docker("network", "rm", "kept-net", "idle-net")
    eng.stop()
    assert_no_leaks(before, owner)


def test_the_check_sees_what_an_engine_would_leave(fresh: tuple[EngineProcess, HostState]) -> None:
    """The checker itself: once the engine has stopped, a link, an nft table and an iptables
    chain named as this engine names its own are reported; a link named for another engine
    is not."""
    eng, before = fresh
    owner = Owner(eng)
    owner.observe()
    cid, nid = "f" * 64, next(iter(owner.network_ids))
    mine, other = veth_name(cid, nid), "dyt99999999"
    table = firewall_table(eng.argv()[eng.argv().index("--bridge") + 1])
    chain = f"DOCKYARD-{chain_tag(table)}-FWD"
    owner.add_container(cid)
    eng.stop()
    try:
        for name in (mine, other):
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        subprocess.run(["nft", "add", "table", "ip", table], check=True)
        subprocess.run(["iptables", "-N", chain], check=True)
        found = leaks(before, HostState.take(eng.dir), owner)
        assert found.get("links left") == [mine], found
        assert any(table in line for line in found.get("nft left", [])), found
        assert any(chain in line for line in found.get("iptables left", [])), found
    finally:
        subprocess.run(["iptables", "-X", chain], capture_output=True, check=False)
        for name in (mine, other):
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)


def test_failed_start_leaves_nothing(
    fresh: tuple[EngineProcess, HostState], tmp_path: Path
) -> None:
    """A start that fails after the network is set up (its published port is taken) undoes
    the netns, the veths and the addresses; a later start on a free port works."""
    eng, before = fresh
    owner = Owner(eng)
    eng.docker("network", "create", "fail-net")
    owner.observe()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cidfile = tmp_path / "cid"
        res = eng.docker(
            "run", "-d", "--cidfile", str(cidfile), "--network", "fail-net",
            "-p", f"127.0.0.1:{port}:80", *SLEEP, check=False,
        )  # fmt: skip
        assert res.returncode != 0 and "port is already allocated" in res.stderr, res.stderr
        owner.add_container(cidfile.read_text())
        owner.observe()
        assert netns_files(eng) == []
        links = {p.name for p in Path("/sys/class/net").iterdir()}
        assert not {veth_name(c, n) for c in owner.container_ids for n in owner.network_ids} & links
    # The failed start had the network's first address; it is free again if it was released.
    gateway = eng.docker(
        "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "fail-net"
    )
    first = str(ipaddress.ip_address(gateway.stdout.strip()) + 1)
    cid = eng.docker("run", "-d", "--name", "next", "--network", "fail-net", "--ip", first, *SLEEP)
    owner.add_container(cid.stdout)
    eng.docker("rm", "-f", "next", cidfile.read_text().strip())
    eng.docker("network", "rm", "fail-net")
    eng.stop()
    assert_no_leaks(before, owner)
