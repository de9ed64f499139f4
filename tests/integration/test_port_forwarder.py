"""The port forwarder end to end without a VM: a real engine stands where the guest's
does, a real OpenSSH sshd carries the direct-tcpip channels, and the forwarder follows the
engine's real events through its socket.

Why the engine publishes on its bridge's gateway address (`--ip`): the forwarder listens on
the host's 127.0.0.1:PORT, which the engine's own shim would already hold if it published
there too (in a VM the two are different machines; here they share one loopback). The
gateway address stands for the guest's 10.0.2.15: not loopback, reached from "inside"
(through sshd), mapped to 127.0.0.1 on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from machine import config, filenames, forward, portforward, ssh
from machine.portplan import FAILED, LISTENING, Forward
from tests.engine_process import EngineProcess, free_port
from tests.sshd import run_sshd

HTTPD = ["sh", "-c", "echo hello > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]


class GatewayEngine(EngineProcess):
    """An engine whose published ports bind its bridge's gateway, not loopback."""

    def __init__(self) -> None:
        super().__init__()
        self.octet = 200 + os.getpid() % 50
        self.gateway = f"10.{self.octet}.77.1"

    def argv(self) -> list[str]:
        return [*super().argv(), "--bip", f"{self.gateway}/24", "--ip", self.gateway]


@dataclass
class Rig:
    engine: GatewayEngine
    machine_dir: Path
    forwarder: portforward.PortForwarder

    def states(self) -> dict[int, tuple[str, str]]:
        doc = json.loads((self.machine_dir / filenames.PORTS).read_text())
        return {f["host_port"]: (f["state"], f["reason"]) for f in doc["forwards"]}


def wait_for(check: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        return str(r.read().decode())


def answers(port: int) -> bool:
    try:
        return get(port) == "hello\n"
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


@pytest.fixture(scope="module")
def rig(registry_with_images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    eng = GatewayEngine()
    try:
        eng.start()
        eng.docker("pull", f"{registry_with_images}/busybox")
        eng.docker("tag", f"{registry_with_images}/busybox", "busybox")
        base = tmp_path_factory.mktemp("pf")
        machine_dir = base / "m"
        machine_dir.mkdir(mode=0o700)
        with run_sshd(machine_dir, base / "sshd") as port:
            tunnel = forward.Tunnel(lambda: ssh.connect(machine_dir, port, time.monotonic() + 10))
            pf = portforward.PortForwarder(machine_dir, eng.socket, tunnel.transport)
            runner = threading.Thread(target=pf.run, daemon=True)
            runner.start()
            try:
                yield Rig(eng, machine_dir, pf)
            finally:
                pf.stop()
                runner.join(15)
                tunnel.close()
    finally:
        eng.close()


def test_a_published_port_answers_on_host_loopback_and_is_freed_after_stop(rig: Rig) -> None:
    port = free_port()
    rig.engine.docker("run", "-d", "--name", "web", "-p", f"{port}:80", "busybox", *HTTPD)
    assert wait_for(lambda: answers(port)), rig.states()
    assert rig.states()[port] == (LISTENING, "")
    rig.engine.docker("stop", "-t", "1", "web")
    assert wait_for(lambda: port not in rig.states() and port_free(port))
    rig.engine.docker("rm", "web")


def test_a_taken_host_port_is_a_failed_forward_with_its_reason(rig: Rig) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        rig.engine.docker("run", "-d", "--name", "clash", "-p", f"{port}:80", "busybox", *HTTPD)
        assert wait_for(lambda: port in rig.states())
        state, reason = rig.states()[port]
        assert state == FAILED
        assert f"127.0.0.1:{port} is already in use on this host" in reason
        log = (rig.machine_dir / filenames.PORTS_LOG).read_text().splitlines()
        failed = [json.loads(line) for line in log if '"forward-failed"' in line]
        assert any(e["host_port"] == port for e in failed)
    # Freed by its holder: the next resync makes it.
    rig.forwarder.poke()
    assert wait_for(lambda: answers(port))
    rig.engine.docker("rm", "-f", "clash")
    assert wait_for(lambda: port_free(port))


def test_a_new_forwarder_sets_up_every_running_containers_forwards(rig: Rig) -> None:
    port = free_port()
    rig.engine.docker("run", "-d", "--name", "again", "-p", f"{port}:80", "busybox", *HTTPD)
    assert wait_for(lambda: answers(port))
    rig.forwarder.stop()  # every forward closed, as a forwarder restart would
    assert port_free(port)
    fresh = portforward.PortForwarder(rig.machine_dir, rig.engine.socket, rig.forwarder.transport)
    runner = threading.Thread(target=fresh.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: answers(port))
    finally:
        fresh.stop()
        runner.join(15)
        rig.forwarder = fresh
    rig.engine.docker("rm", "-f", "again")


def test_udp_without_a_qemu_monitor_is_failed_with_the_reason(rig: Rig) -> None:
    fwd = portforward.portplan.Forward("x", "x", "udp", "127.0.0.1", 9, "10.0.2.15", 9)
    with pytest.raises(portforward.ForwardFailed, match="no QEMU monitor"):
        portforward.open_forward(fwd, rig.forwarder.transport, None)


@contextlib.contextmanager
def running_forwarder(rig: Rig) -> Iterator[portforward.PortForwarder]:
    """A forwarder of its own in place of the rig's (stopped, if the restart test has not
    already), following the machine's setting as the forwarder process does."""
    rig.forwarder.stop()
    pf = portforward.PortForwarder(rig.machine_dir, rig.engine.socket, rig.forwarder.transport)
    runner = threading.Thread(target=pf.run, daemon=True)
    runner.start()
    try:
        yield pf
    finally:
        pf.stop()
        runner.join(15)
        rig.forwarder = pf


def forward_of(rig: Rig, port: int) -> dict[str, object]:
    doc = json.loads((rig.machine_dir / filenames.PORTS).read_text())
    return next((f for f in doc["forwards"] if f["host_port"] == port), {})


def test_the_machine_setting_moves_a_running_forward_between_loopback_and_all(
    rig: Rig,
) -> None:
    """machine.yaml's ports.allow_all_interfaces, saved while the forwarder runs, moves a
    wildcard publish to the host's 0.0.0.0 and back. Here the engine shares the host, so
    its own 0.0.0.0:PORT holds the port and both forwards fail with that reason; in a VM
    the guest's listener is not on the host (test_machine_ports.py)."""
    port = free_port()
    rig.engine.docker("run", "-d", "--name", "wide", "-p", f"0.0.0.0:{port}:80", "busybox", *HTTPD)
    yaml_path = rig.machine_dir / filenames.CONFIG
    try:
        with running_forwarder(rig):
            assert wait_for(lambda: forward_of(rig, port).get("host_ip") == "127.0.0.1")
            cfg = config.new("m", backend="native", ports=config.Ports(allow_all_interfaces=True))
            yaml_path.write_text(yaml.safe_dump(config.to_dict(cfg)))
            assert wait_for(lambda: forward_of(rig, port).get("host_ip") == "0.0.0.0", 10)
            assert f"0.0.0.0:{port} is already in use" in str(forward_of(rig, port)["reason"])
            yaml_path.unlink()
            assert wait_for(lambda: forward_of(rig, port).get("host_ip") == "127.0.0.1", 10)
            log = (rig.machine_dir / filenames.PORTS_LOG).read_text().splitlines()
            settings = [json.loads(x) for x in log if '"ports-setting"' in x]
            assert [e["allow_all_interfaces"] for e in settings][-2:] == [True, False]
    finally:
        yaml_path.unlink(missing_ok=True)
        rig.engine.docker("rm", "-f", "wide")


def test_an_all_interfaces_forward_answers_on_another_host_address(rig: Rig) -> None:
    """The listener itself: 0.0.0.0 answers on a non-loopback address of this host (the
    engine's bridge gateway), which a 127.0.0.1 forward does not."""
    port = free_port()
    rig.engine.docker("run", "-d", "--name", "lan", "-p", f"{port}:80", "busybox", *HTTPD)
    try:
        with running_forwarder(rig) as pf:
            assert wait_for(lambda: answers(port))
            outer = free_port()
            for host_ip, reachable in (("127.0.0.1", False), ("0.0.0.0", True)):
                fwd = Forward("x", "lan", "tcp", host_ip, outer, rig.engine.gateway, port)
                listener = portforward.open_forward(fwd, pf.transport, None)
                try:
                    url = f"http://{rig.engine.gateway}:{outer}/"
                    assert answers_at(url) is reachable
                finally:
                    listener.close()
    finally:
        rig.engine.docker("rm", "-f", "lan")


def answers_at(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return bool(r.read() == b"hello\n")
    except (OSError, urllib.error.URLError):
        return False
