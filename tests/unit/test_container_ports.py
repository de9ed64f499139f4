"""A container's published ports over its life: planned against its address, shown while it runs."""

from __future__ import annotations

from pathlib import Path

from engine.containers import ports
from engine.containers.model import Container
from engine.containers.status import Status
from engine.network.model import Endpoint
from engine.runtime.shim_client import ShimHandle
from engine.runtime.spec import PublishedPort
from tests.runtime_specs import paper_spec

BINDINGS = {"80/tcp": [{"HostIp": "", "HostPort": "0"}]}


def _container(ip: str = "", **hc: object) -> Container:
    c = Container(
        "c" * 64, "web", "", "", {"ExposedPorts": {"443/tcp": {}}}, dict(hc), paper_spec(), []
    )
    if ip:
        c.networks["bridge"] = Endpoint("n" * 64, "bridge", ip=ip)
    return c


def test_planned_against_the_first_address_on_the_engine_default_ip() -> None:
    c = _container("172.17.0.5", PortBindings=BINDINGS)
    ports.plan(c, "127.0.0.1")
    assert c.spec.ports == [PublishedPort("tcp", "127.0.0.1", 0, "172.17.0.5", 80)]


def test_no_address_no_ports_as_with_host_or_none() -> None:
    c = _container("", PortBindings=BINDINGS)
    c.spec.ports = [PublishedPort("tcp", "127.0.0.1", 1, "x", 80)]  # from an earlier start
    ports.plan(c, "127.0.0.1")
    assert c.spec.ports == []
    assert ports.event_attrs(c) == {}


def test_record_reads_back_what_the_shim_bound(tmp_path: Path) -> None:
    c = _container("172.17.0.5", PortBindings=BINDINGS)
    ports.plan(c, "127.0.0.1")
    (tmp_path / "ports.json").write_text(
        '[{"proto": "tcp", "host_ip": "127.0.0.1", "host_port": 32768,'
        ' "container_ip": "172.17.0.5", "container_port": 80, "host_port_end": 0}]'
    )
    ports.record(c, ShimHandle(tmp_path, 1))
    assert c.spec.ports[0].host_port == 32768
    assert ports.event_attrs(c) == {"ports": "127.0.0.1:32768->80/tcp"}


def test_views_show_ports_only_while_running() -> None:
    c = _container("172.17.0.5")
    c.spec.ports = [PublishedPort("tcp", "127.0.0.1", 8080, "172.17.0.5", 80)]
    assert ports.inspect_view(c) == {} and ports.list_view(c) == []
    c.state.status = Status.RUNNING
    assert ports.inspect_view(c) == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "443/tcp": None,
    }
    assert ports.list_view(c)[1] == {"PrivatePort": 443, "Type": "tcp"}
