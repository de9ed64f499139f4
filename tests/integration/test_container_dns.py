"""Containers resolve each other through the embedded DNS, asked by busybox's own nslookup.

One engine for the module; the network and containers each test makes are removed after it
even when it fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.engine_process import EngineProcess


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> EngineProcess:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    return shared_engine


@pytest.fixture
def net(eng: EngineProcess) -> Iterator[str]:
    name = f"dns-{uuid.uuid4().hex[:8]}"
    eng.docker("network", "create", name)
    server = f"{name}-srv"
    try:
        eng.docker(
            "run",
            "-d",
            "--name",
            server,
            "--network",
            name,
            "--network-alias",
            "db",
            "busybox",
            "sleep",
            "300",
        )
        yield name
    finally:
        eng.docker("rm", "-f", server, check=False)
        eng.docker("network", "rm", name, check=False)


def ip_of(eng: EngineProcess, name: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return eng.docker("inspect", "-f", fmt, name).stdout.strip()


def nslookup(eng: EngineProcess, net: str, name: str) -> str:
    res = eng.docker("run", "--rm", "--network", net, "busybox", "nslookup", name, check=False)
    return res.stdout + res.stderr


def test_resolv_conf_points_at_the_embedded_dns(eng: EngineProcess, net: str) -> None:
    out = eng.docker("run", "--rm", "--network", net, "busybox", "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in out.stdout.splitlines()


@pytest.mark.parametrize("which", ["name", "alias", "upper case"])
def test_nslookup_finds_a_container_by_name_and_alias(
    eng: EngineProcess, net: str, which: str
) -> None:
    server = f"{net}-srv"
    name = {"name": server, "alias": "db", "upper case": server.upper()}[which]
    out = nslookup(eng, net, name)
    assert "127.0.0.11" in out and ip_of(eng, server) in out, out


def test_nslookup_of_a_name_on_no_network_of_ours_fails(eng: EngineProcess, net: str) -> None:
    out = nslookup(eng, net, f"{uuid.uuid4().hex[:12]}.invalid")
    assert "can't find" in out.lower() or "nxdomain" in out.lower(), out


def test_a_container_on_an_internal_network_gets_no_forwarding(eng: EngineProcess) -> None:
    """Names outside are REFUSED, not relayed from the engine's netns; its network's
    names still resolve."""
    name = f"dns-int-{uuid.uuid4().hex[:8]}"
    eng.docker("network", "create", "--internal", name)
    try:
        eng.docker(
            "run", "-d", "--name", f"{name}-srv", "--network", name, "busybox", "sleep", "300"
        )
        assert ip_of(eng, f"{name}-srv") in nslookup(eng, name, f"{name}-srv")
        out = nslookup(eng, name, "example.invalid")
        assert "REFUSED" in out, out
    finally:
        eng.docker("rm", "-f", f"{name}-srv", check=False)
        eng.docker("network", "rm", name, check=False)
