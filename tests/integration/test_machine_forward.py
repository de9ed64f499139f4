"""The forwarded engine socket, end to end with real parts and no VM: a real OpenSSH sshd
(configured as the guest's) carries direct-streamlocal channels to a real engine's socket,
and the real docker CLI talks to the host socket the forwarder serves."""

from __future__ import annotations

import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from machine import filenames, forward, keys, ssh
from machine.qemu_backend import ping
from tests.engine_process import EngineProcess
from tests.ptyio import pty_session
from tests.sshd import run_sshd


@dataclass
class Forwarded:
    engine: EngineProcess
    machine_dir: Path
    port: int
    tunnel: forward.Tunnel
    socket: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.engine.env)
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        return env

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def fwd(
    shared_engine: EngineProcess,
    registry_with_images: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Forwarded]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    base = tmp_path_factory.mktemp("fwd")
    machine_dir = base / "m"
    machine_dir.mkdir(mode=0o700)
    with run_sshd(machine_dir, base / "sshd") as port:
        tunnel = forward.Tunnel(lambda: ssh.connect(machine_dir, port, time.monotonic() + 10))
        sock_path = machine_dir / filenames.SOCKET
        listener = forward.listen(sock_path)
        server = threading.Thread(
            target=forward.serve, args=(listener, tunnel, str(shared_engine.socket)), daemon=True
        )
        server.start()
        try:
            yield Forwarded(shared_engine, machine_dir, port, tunnel, sock_path)
        finally:
            listener.close()
            tunnel.close()


def test_socket_is_private_and_answers(fwd: Forwarded) -> None:
    assert stat.S_IMODE(fwd.socket.stat().st_mode) == 0o600
    assert ping(fwd.socket)
    out = fwd.docker("ps")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CONTAINER ID")


def test_run_rm_echo_through_the_tunnel(fwd: Forwarded) -> None:
    out = fwd.docker("run", "--rm", "busybox", "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr


def test_stdin_half_close_reaches_the_container(fwd: Forwarded) -> None:
    """`docker run -i` ends its input with a half-close; the container sees EOF and the
    output still comes back."""
    out = subprocess.run(
        ["docker", "run", "--rm", "-i", "busybox", "wc", "-c"],
        env=fwd.env,
        input="x" * 100000,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "100000"), out.stderr


def test_run_detached_then_logs_follow(fwd: Forwarded) -> None:
    cid = fwd.docker(
        "run", "-d", "busybox", "sh", "-c", "echo one; sleep 1; echo two"
    ).stdout.strip()
    try:
        out = fwd.docker("logs", "-f", cid)
        assert (out.returncode, out.stdout) == (0, "one\ntwo\n"), out.stderr
    finally:
        fwd.docker("rm", "-f", cid)


def test_exec_it_through_a_pty(fwd: Forwarded) -> None:
    assert fwd.docker("run", "-d", "--name", "fwdshell", "busybox", "sleep", "1000").returncode == 0
    try:
        code, out = pty_session(
            fwd.env,
            ["docker", "exec", "-it", "fwdshell", "sh"],
            b"tty; echo marker-$((6*7)); exit 7\n",
        )
        assert b"/dev/pts/" in out and b"marker-42" in out
        assert code == 7
    finally:
        fwd.docker("rm", "-f", "fwdshell")


def test_many_concurrent_connections_beside_a_held_stream(fwd: Forwarded) -> None:
    cid = fwd.docker("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    follow = subprocess.Popen(
        ["docker", "logs", "-f", cid], env=fwd.env, stdout=subprocess.PIPE, text=True
    )
    try:
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda: results.append(ping(fwd.socket, 30))) for _ in range(30)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 30
        assert follow.poll() is None  # the held stream is still open
    finally:
        follow.kill()
        follow.wait()
        fwd.docker("rm", "-f", cid)


def test_a_dropped_ssh_session_is_reconnected(fwd: Forwarded) -> None:
    fwd.tunnel.transport().close()
    assert ping(fwd.socket)
    assert fwd.docker("ps").returncode == 0


def test_a_missing_guest_socket_is_a_clear_channel_refusal(fwd: Forwarded) -> None:
    with pytest.raises(paramiko.SSHException):
        forward.open_streamlocal(fwd.tunnel.transport(), "/nonexistent/docker.sock")
    assert ping(fwd.socket)  # the session survives a refused channel


def test_a_changed_host_key_is_refused(fwd: Forwarded, tmp_path: Path) -> None:
    """Acceptance 4: the same server, but this machine pins another key."""
    other = tmp_path / "other"
    other.mkdir()
    keys.ensure(other)
    for name in (filenames.SSH_KEY, filenames.SSH_KEY_PUB):
        (other / name).write_bytes((fwd.machine_dir / name).read_bytes())
    with pytest.raises(ssh.HostKeyChanged) as err:
        ssh.connect(other, fwd.port, time.monotonic() + 10)
    assert err.value.stage == "sshd"
    assert "refusing to connect" in str(err.value)
    assert keys.pinned_host_key(other) in str(err.value)
    assert keys.pinned_host_key(fwd.machine_dir) in str(err.value)
