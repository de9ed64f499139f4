"""The engine's embedded DNS made on demand, for real: nothing exists until the first
listener, which then answers inside a real netns; after stop nothing can be added.

Root only. Every netns a test makes is removed even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.network import netns
from engine.network.dnsondemand import DnsOnDemand

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


def resolve(cid: str, name: str) -> list[str] | None:
    return ["10.89.0.2"] if (cid, name) == ("c1", "web") else None


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / f"ns-{uuid.uuid4().hex[:8]}"
    netns.create(path)
    try:
        yield path
    finally:
        netns.remove(path)


@contextlib.contextmanager
def started() -> Iterator[DnsOnDemand]:
    dns = DnsOnDemand(resolve)
    dns.start()
    try:
        yield dns
    finally:
        dns.stop()


def ask(ns: Path, name: str) -> list[str]:
    """An A query from inside the netns, over UDP to 127.0.0.11:53."""
    from engine.network import dnswire  # the test may import it; the engine must not

    with netns.entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(10)
        sock.connect(("127.0.0.11", 53))
        sock.send(dnswire.make_query(7, name, dnswire.A, 0))
        return [r.address() for r in dnswire.parse(sock.recv(65535)).answers]


def test_nothing_is_made_before_the_first_listener() -> None:
    with started() as dns:
        dns.remove("c1")  # unknown ids are fine, as with the server itself
        dns.set_forwarding("c1", False)
        assert dns.containers() == []


def test_the_first_listener_makes_a_started_server_that_answers(ns: Path) -> None:
    with started() as dns:
        dns.add("c1", ns)
        assert dns.containers() == ["c1"]
        assert ask(ns, "web") == ["10.89.0.2"]
        dns.remove("c1")
        assert dns.containers() == []


def test_a_listener_after_stop_is_refused_with_a_reason(ns: Path) -> None:
    dns = DnsOnDemand(resolve)
    dns.start()
    dns.stop()
    with pytest.raises(OSError, match="stopped"):
        dns.add("c1", ns)
