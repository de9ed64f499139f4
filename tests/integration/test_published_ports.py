"""Published ports through the real docker CLI: -p, -P, docker port, conflicts, live-restore.

Each container runs on the engine's default bridge; its ports are proxied by
its shim (engine/network/portproxy.py) from 127.0.0.1 on the host.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.engine_process import EngineProcess, api_call

HTTPD = ["sh", "-c", "echo hello > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
# busybox has no UDP server: the host's python, mounted read-only, echoes datagrams.
UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 5353))\n"
    "while True:\n"
    "    data, addr = s.recvfrom(65536)\n"
    "    s.sendto(b'echo:' + data, addr)\n"
)
HOST_PYTHON = ["-v", "/usr:/usr:ro"]
# Through the loader: the image has no /lib64 for the interpreter path python names.
PYTHON = ["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/bin/python3"]


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield shared_engine


def _get(port: int, tries: int = 400) -> str:
    """GET / on 127.0.0.1:port, retried only while the container's httpd is not up yet."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                return str(r.read().decode())
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}")


def _port(eng: EngineProcess, name: str, spec: str) -> tuple[str, int]:
    line = eng.docker("port", name, spec).stdout.splitlines()[0]
    host, _, port = line.rpartition(":")
    return host, int(port)


def _run(eng: EngineProcess, name: str, *args: str) -> None:
    eng.docker("run", "-d", "--name", name, *args)


def test_dash_p_with_a_free_port_answers_and_docker_port_reports_it(eng: EngineProcess) -> None:
    _run(eng, "web0", "-p", "127.0.0.1:0:80", "busybox", *HTTPD)
    host, port = _port(eng, "web0", "80")
    assert host == "127.0.0.1" and port > 0
    assert _get(port) == "hello\n"
    assert eng.docker("port", "web0").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    ps = eng.docker("ps", "--filter", "name=web0", "--format", "{{.Ports}}").stdout.strip()
    assert ps == f"127.0.0.1:{port}->80/tcp"
    eng.docker("rm", "-f", "web0")


def test_the_start_event_names_the_ports(eng: EngineProcess) -> None:
    since = time.time() - 1
    _run(eng, "evt", "-p", "127.0.0.1:0:80", "busybox", "sleep", "60")
    _, port = _port(eng, "evt", "80")
    out = eng.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{time.time() + 1:.3f}",
        "--filter",
        "container=evt",
        "--filter",
        "event=start",
        "--format",
        "{{json .Actor.Attributes}}",
    ).stdout.splitlines()
    assert json.loads(out[0])["ports"] == f"127.0.0.1:{port}->80/tcp"
    eng.docker("rm", "-f", "evt")


def test_host_network_ignores_published_ports(eng: EngineProcess) -> None:
    _run(eng, "hostnet", "--network", "host", "-p", "127.0.0.1:0:80", "busybox", "sleep", "60")
    assert eng.docker("port", "hostnet").stdout.strip() == ""
    eng.docker("rm", "-f", "hostnet")


def test_default_host_ip_is_loopback(eng: EngineProcess) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    _run(eng, "web1", "-p", f"{free}:80", "busybox", *HTTPD)
    settings = json.loads(
        eng.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web1").stdout
    )
    assert settings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(free)}]}
    assert _get(free) == "hello\n"
    eng.docker("rm", "-f", "web1")


def test_udp_port_reaches_the_container(eng: EngineProcess) -> None:
    _run(
        eng,
        "udp0",
        "-p",
        "127.0.0.1::5353/udp",
        *HOST_PYTHON,
        "busybox",
        *PYTHON,
        "-c",
        UDP_ECHO,
    )
    _, port = _port(eng, "udp0", "5353/udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(0.2)
        for _ in range(200):  # resent until the echo server is up
            c.sendto(b"ping", ("127.0.0.1", port))
            try:
                data, _ = c.recvfrom(100)
                break
            except (TimeoutError, ConnectionRefusedError):
                continue
        else:
            raise AssertionError("no UDP echo")
    assert data == b"echo:ping"
    eng.docker("rm", "-f", "udp0")


def test_publish_all_uses_exposed_ports(eng: EngineProcess) -> None:
    _run(eng, "webP", "-P", "--expose", "80", "--expose", "81", "busybox", *HTTPD)
    _, port = _port(eng, "webP", "80/tcp")
    assert _get(port) == "hello\n"
    _, other = _port(eng, "webP", "81/tcp")
    assert other not in (0, port)
    eng.docker("rm", "-f", "webP")


def _two_free_ports() -> int:
    """A port p where p and p+1 are both free now."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            base = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", base + 1))
                except OSError:
                    continue
                return base
    raise AssertionError("no two adjacent free ports")


def test_ranges_pair_up(eng: EngineProcess) -> None:
    base = _two_free_ports()
    _run(eng, "rng", "-p", f"127.0.0.1:{base}-{base + 1}:80-81", "busybox", "sleep", "60")
    lines = sorted(eng.docker("port", "rng").stdout.split("\n"))
    assert [ln for ln in lines if ln] == [
        f"80/tcp -> 127.0.0.1:{base}",
        f"81/tcp -> 127.0.0.1:{base + 1}",
    ]
    eng.docker("rm", "-f", "rng")


def test_a_taken_port_fails_the_start_with_dockers_message(eng: EngineProcess) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = eng.docker(
            "run", "-d", "--name", "clash", "-p", f"{port}:80", "busybox", *HTTPD, check=False
        )
        assert out.returncode != 0
        assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in out.stderr
        state = json.loads(eng.docker("inspect", "-f", "{{json .State}}", "clash").stdout)
        assert state["Status"] == "created" and not state["Running"]
    eng.docker("start", "clash")  # the port is free now: the same container starts
    assert _get(port) == "hello\n"
    eng.docker("rm", "-f", "clash")


def test_stop_closes_the_port(eng: EngineProcess) -> None:
    _run(eng, "web2", "-p", "127.0.0.1:0:80", "busybox", *HTTPD)
    _, port = _port(eng, "web2", "80")
    assert _get(port) == "hello\n"
    eng.docker("stop", "-t", "1", "web2")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    assert (
        json.loads(eng.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web2").stdout)
        == {}
    )
    assert eng.docker("port", "web2", check=False).stdout.strip() == ""
    eng.docker("rm", "-f", "web2")


def test_restart_binds_the_same_fixed_port_again(eng: EngineProcess) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    _run(eng, "again", "-p", f"127.0.0.1:{free}:80", "busybox", *HTTPD)
    assert _get(free) == "hello\n"
    eng.docker("restart", "-t", "1", "again")
    assert _get(free) == "hello\n"
    eng.docker("rm", "-f", "again")


def test_bad_port_specs_are_refused_and_nothing_is_stored(eng: EngineProcess) -> None:
    before = eng.docker("ps", "-aq").stdout
    cases = [
        ({"80/sctpx": [{"HostPort": "8080"}]}, "invalid proto: sctpx"),
        ({"80/tcp": [{"HostPort": "80000"}]}, "invalid hostPort: 80000"),
        ({"80/tcp": [{"HostIp": "300.1.1.1", "HostPort": "8080"}]}, "invalid IP address"),
        ({"80-81/tcp": [{"HostPort": "8000-8002"}]}, "invalid ranges specified"),
        ({"http/tcp": [{"HostPort": "8080"}]}, "invalid containerPort: http"),
    ]
    for bindings, message in cases:
        body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PortBindings": bindings}}
        status, reply = api_call(eng.socket, "POST", "/containers/create", body)
        assert status == 400, reply
        assert message in reply["message"]
    exposed = {
        "Image": "busybox",
        "ExposedPorts": {"80/xyz": {}},
        "HostConfig": {"PublishAllPorts": True},
    }
    status, reply = api_call(eng.socket, "POST", "/containers/create", exposed)
    assert (status, reply["message"].split(":")[0]) == (400, "invalid proto")
    out = eng.docker("run", "-d", "-p", "1.2.3:80:80", "busybox", "true", check=False)
    assert out.returncode != 0
    assert eng.docker("ps", "-aq").stdout == before


@pytest.fixture
def solo(engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield engine


def test_ports_keep_answering_while_the_engine_is_killed_and_restarted(solo: EngineProcess) -> None:
    solo.docker("run", "-d", "--name", "lr", "-p", "127.0.0.1:0:80", "busybox", *HTTPD)
    _, port = _port(solo, "lr", "80")
    assert _get(port) == "hello\n"
    failures: list[str] = []
    done = threading.Event()
    answered = [0]

    def hammer() -> None:
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    if r.read() != b"hello\n":
                        failures.append("wrong body")
                answered[0] += 1
            except OSError as e:
                failures.append(repr(e))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        solo.kill9()
        down_before = answered[0]
        for _ in range(20):
            assert _get(port, tries=1) == "hello\n"  # the engine is down
        assert answered[0] >= down_before
        solo.start()
        assert _port(solo, "lr", "80")[1] == port  # recovery read the ports back
        assert _get(port, tries=1) == "hello\n"
    finally:
        done.set()
        t.join(30)
    assert failures == []
    assert answered[0] > 0
    ps = solo.docker("ps", "--format", "{{.Ports}}").stdout.strip()
    assert ps == f"127.0.0.1:{port}->80/tcp"
