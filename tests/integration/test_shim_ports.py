"""Published ports in the shim, for real: bound before the container, closed when it exits.

The containers here share the host's network namespace (network_mode "host"),
so the shim's proxy reaches them on 127.0.0.1 without any bridge; the bridge
path is covered through the docker CLI in test_published_ports.py.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.runtime.spec import PublishedPort
from tests.integration.test_runtime import Runtime, build_busybox_rootfs, cgroup_dirs


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/bin/busybox").exists():
        pytest.skip("needs Debian's busybox-static at /bin/busybox")
    dest = tmp_path_factory.mktemp("shim-ports") / "lower"
    build_busybox_rootfs(dest)
    return dest


@pytest.fixture
def rt(lower: Path) -> Iterator[Runtime]:
    runtime = Runtime(lower)
    try:
        yield runtime
    finally:
        runtime.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _httpd(port: int) -> list[str]:
    return ["sh", "-c", f"echo hello > /tmp/index.html; exec httpd -f -p 127.0.0.1:{port} -h /tmp"]


def _get(port: int) -> str:
    """GET / through the proxy, retried only while the container's httpd is not up yet."""
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                return str(r.read().decode())
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}")


def test_a_free_port_is_bound_recorded_and_proxied(rt: Runtime) -> None:
    inner = _free_port()
    wanted = PublishedPort("tcp", "127.0.0.1", 0, "127.0.0.1", inner)
    _spec, shim = rt.launch(_httpd(inner), network_mode="host", ports=[wanted])
    shim.release()
    (bound,) = shim.ports()
    assert bound.host_port not in (0, inner)
    assert (
        json.loads((shim.state_dir / "ports.json").read_text())[0]["host_port"] == bound.host_port
    )
    assert _get(bound.host_port) == "hello\n"
    shim.signal(9)
    assert shim.wait(20) is not None
    with pytest.raises(ConnectionRefusedError):  # closed with the container, before exit.json
        socket.create_connection(("127.0.0.1", bound.host_port), timeout=10).close()


def test_a_taken_port_fails_the_launch_and_leaves_nothing(rt: Runtime) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        free = _free_port()
        ports = [
            PublishedPort("tcp", "127.0.0.1", free, "127.0.0.1", 80),
            PublishedPort("tcp", "127.0.0.1", port, "127.0.0.1", 80),
        ]
        spec, state = rt.spec(["true"], network_mode="host", ports=ports)
        from engine.runtime.shim_client import ShimHandle

        message = f"Bind for 127.0.0.1:{port} failed: port is already allocated"
        with pytest.raises(EngineError, match=re.escape(message)):
            ShimHandle.launch(spec, state)
    assert cgroup_dirs(spec.id) == []
    assert not (state / "shim.json").exists()
    with socket.create_server(("127.0.0.1", free)):
        pass  # the port bound before the failure is free again
