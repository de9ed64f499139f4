"""Ports, clock recovery and DNS of a real guest (TCG here), one booted machine shared.

Acceptance 3 (issue 6): a published port answers on the host's 127.0.0.1 shortly after
`docker run` returns (the delay is printed, not asserted), it is free again after
`docker stop`, a port taken on the host is a failed forward with its reason, and UDP
echoes through QEMU's hostfwd. Acceptance 4: QMP stop, 30 s, cont: the guest clock is
back within 2 s of the host's within 5 s, and the forwards still answer.

DNS: the guest's resolver is QEMU's 10.0.2.3, which forwards to the nameservers of the
host's /etc/resolv.conf; so the guest follows the host's DNS (and a VPN's, which rewrites
that file), but names only in the host's /etc/hosts cannot resolve in the guest: libslirp
relays DNS packets, it never asks the host's own name service switch.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from machine import config, disk, filenames, qmp, ssh
from machine.backend import MachineSpec
from machine.qemu_backend import QemuBackend
from tests.engine_process import free_port
from tests.integration.test_machine_qemu import IMAGE, Booted, pytestmark, stop_quietly
from tests.outside_name import outside_name

__all__ = ["pytestmark"]

HTTPD = ["sh", "-c", "echo hello > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    # The container's own address (the route's source towards the gateway): 127.0.0.11:53
    # is the embedded DNS's, so no wildcard.
    "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "u.connect(('10.0.2.2', 9))\n"
    "s.bind((u.getsockname()[0], 53))\n"
    "while True:\n"
    "    data, addr = s.recvfrom(65536)\n"
    "    s.sendto(b'echo:' + data, addr)\n"
)
# busybox has no UDP server: the guest's own python3, run in the guest's root (read-only,
# with its loader cache) inside the container's network namespace, echoes datagrams.
PYTHON = ["-v", "/:/guest:ro", "busybox", "chroot", "/guest", "python3"]


@pytest.fixture(scope="module")
def vm(registry_with_images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    base = tmp_path_factory.mktemp("vmp")
    port = registry_with_images.rsplit(":", 1)[1]
    spec = MachineSpec(
        name="ports",
        directory=base / "m",
        cpus=2,
        memory_mb=1024,
        disk_gb=4,
        image_dir=IMAGE,
        engine_args=["--insecure-registry", f"10.0.2.2:{port}"],
    )
    backend = QemuBackend(spec)
    try:
        backend.start()
        booted = Booted(backend, f"10.0.2.2:{port}", base / "docker-config")
        assert booted.docker("pull", f"{booted.registry}/busybox").returncode == 0
        assert booted.docker("tag", f"{booted.registry}/busybox", "busybox").returncode == 0
        yield booted
    finally:
        stop_quietly(backend)


def wait_for(check: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            return bool(r.read() == b"hello\n")
    except (OSError, urllib.error.URLError):
        return False


def port_free(port: int) -> bool:
    """No listener holds the port (a server setting SO_REUSEADDR, as most do, can bind it;
    connections the forward carried may still sit in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def forwards(vm: Booted) -> dict[tuple[str, int], dict[str, str]]:
    try:
        doc = json.loads((vm.backend.dir / filenames.PORTS).read_text())
    except (OSError, ValueError):
        return {}
    return {(f["proto"], f["host_port"]): f for f in doc["forwards"]}


def run(vm: Booted, *args: str) -> None:
    out = vm.docker("run", "-d", *args)
    assert out.returncode == 0, out.stderr


def guest_skew(vm: Booted) -> float:
    """Host minus guest clock, seconds: the guest's time as printed, against the host's
    when the answer arrived (so the transport's delay counts against the guest)."""
    port = int(vm.backend.path(filenames.SSH_PORT).read_text())
    client = ssh.connect(vm.backend.dir, port, time.monotonic() + 60)
    try:
        code, out = ssh.run(client, "python3 -c 'import time; print(time.time())'", timeout=30)
        after = time.time()
    finally:
        client.close()
    assert code == 0, out
    return after - float(out)


def test_published_port_answers_on_host_loopback_then_is_freed(vm: Booted) -> None:
    port = free_port()
    run(vm, "--name", "web", "-p", f"{port}:80", "busybox", *HTTPD)
    returned = time.monotonic()
    assert wait_for(lambda: answers(port)), forwards(vm)
    print(f"\nGET 127.0.0.1:{port} answered {time.monotonic() - returned:.2f} s after docker run")
    assert forwards(vm)[("tcp", port)]["state"] == "listening"
    assert forwards(vm)[("tcp", port)]["via"] == "qmp"  # the faster way (bench/forward.py)
    assert vm.docker("stop", "-t", "1", "web").returncode == 0
    assert wait_for(lambda: port_free(port) and ("tcp", port) not in forwards(vm))


def test_a_taken_host_port_is_a_failed_forward_with_the_reason(vm: Booted) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        run(vm, "--name", "clash", "-p", f"{port}:80", "busybox", *HTTPD)
        assert wait_for(lambda: ("tcp", port) in forwards(vm))
        fwd = forwards(vm)[("tcp", port)]
        assert fwd["state"] == "failed"
        assert "already in use on this host" in fwd["reason"]
    vm.docker("rm", "-f", "clash")


def test_udp_echo_through_qemu_hostfwd(vm: Booted) -> None:
    port = free_port()
    run(vm, "--name", "udp", "-p", f"{port}:53/udp", *PYTHON, "-c", UDP_ECHO)
    assert wait_for(lambda: ("udp", port) in forwards(vm)), vm.docker("logs", "udp")
    assert forwards(vm)[("udp", port)]["state"] == "listening", forwards(vm)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(0.5)
        for _ in range(240):  # resent until the echo server is up
            c.sendto(b"ping", ("127.0.0.1", port))
            try:
                data, _ = c.recvfrom(100)
                break
            except (TimeoutError, ConnectionRefusedError):
                continue
        else:
            logs = vm.docker("logs", "udp")
            raise AssertionError(f"no UDP echo; the server said: {logs.stdout}{logs.stderr}")
    assert data == b"echo:ping"
    vm.docker("rm", "-f", "udp")
    assert wait_for(lambda: ("udp", port) not in forwards(vm))


def lan_address() -> str:
    """An IPv4 address of this host that is not loopback (where the network reaches it)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[3].split("/")[0]


def answers_on(address: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as r:
            return bool(r.read() == b"hello\n")
    except (OSError, urllib.error.URLError):
        return False


def test_allowing_all_interfaces_opens_a_bare_publish_to_the_network(vm: Booted) -> None:
    """`ports.allow_all_interfaces` in the machine's YAML, saved while it runs: a bare
    `-p` (listed on the guest's 10.0.2.15) moves from 127.0.0.1 to 0.0.0.0, still through
    QEMU's hostfwd, and answers on the host's LAN address; removed, it is loopback again."""
    port, lan = free_port(), lan_address()
    yaml_path = vm.backend.dir / filenames.CONFIG
    cfg = config.new("ports", backend="qemu", ports=config.Ports(allow_all_interfaces=True))
    run(vm, "--name", "wide", "-p", f"{port}:80", "busybox", *HTTPD)
    try:
        assert wait_for(lambda: answers(port)), forwards(vm)
        assert not answers_on(lan, port)
        yaml_path.write_text(yaml.safe_dump(config.to_dict(cfg)))
        assert wait_for(lambda: answers_on(lan, port)), forwards(vm)
        fwd = forwards(vm)[("tcp", port)]
        assert (fwd["host_ip"], fwd["via"], fwd["state"]) == ("0.0.0.0", "qmp", "listening")
        yaml_path.unlink()
        assert wait_for(lambda: forwards(vm)[("tcp", port)]["host_ip"] == "127.0.0.1")
        assert wait_for(lambda: answers(port)) and not answers_on(lan, port)
    finally:
        yaml_path.unlink(missing_ok=True)
        vm.docker("rm", "-f", "wide")


def test_pause_30s_then_clock_is_stepped_and_forwards_still_work(vm: Booted) -> None:
    port = free_port()
    run(vm, "--name", "paused", "-p", f"{port}:80", "busybox", *HTTPD)
    assert wait_for(lambda: answers(port))
    sock = vm.backend.path(filenames.QMP_SOCK)
    qmp.execute(sock, "stop")
    try:
        time.sleep(30)  # the number
    finally:
        qmp.execute(sock, "cont")
    resumed = time.monotonic()
    skews = []
    while time.monotonic() - resumed < 5:
        skews.append(guest_skew(vm))
        if abs(skews[-1]) < 2:
            break
    print(f"\nguest clock skew after cont: {[round(s, 2) for s in skews]}")
    assert abs(skews[-1]) < 2, skews
    log = (vm.backend.dir / filenames.PORTS_LOG).read_text()
    assert '"clock-stepped"' in log
    assert answers(port)
    vm.docker("rm", "-f", "paused")


def test_guest_resolves_through_the_hosts_resolver(vm: Booted) -> None:
    name = outside_name()
    if not name:
        pytest.skip("this host resolves no outside name (set DOCKYARD_TEST_OUTSIDE_NAME)")
    want = socket.gethostbyname(name)
    port = int(vm.backend.path(filenames.SSH_PORT).read_text())
    client = ssh.connect(vm.backend.dir, port, time.monotonic() + 60)
    try:
        cmd = f"python3 -c \"import socket; print(socket.gethostbyname('{name}'))\""
        code, out = ssh.run(client, cmd, timeout=60)
    finally:
        client.close()
    assert code == 0, out
    assert out.strip() == want


def test_stop_trims_and_compacts_the_data_disk_and_keeps_its_data(vm: Booted) -> None:
    """Last in this module: it stops the shared machine, then starts it once more."""
    data = vm.backend.path(filenames.DATA_DISK)
    vm.backend.stop(timeout=60)
    used = json.loads(vm.backend.path(filenames.DISK_USAGE).read_text())
    assert used["guest_used_bytes"] > 0
    check = subprocess.run(["qemu-img", "check", str(data)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    usage = disk.usage(data)
    assert usage is not None and usage.file_bytes > 0
    vm.backend.start()
    images = vm.docker("images", "--format", "{{.Repository}}").stdout
    assert "busybox" in images
