"""The first-run checks with each failure injected at its real boundary, through
`dockyard check` as a user runs it: a /dev/kvm this user may not open (a private mount
namespace and a user namespace), a port held by a real listener, and a data directory on
a tiny loop-mounted filesystem. Each test checks the fix shown."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, mknod)")


def check_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "check", *args]


def run(cmd: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKYARD_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run(
        cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(not Path("/dev/kvm").exists(), reason="no /dev/kvm to shadow")
def test_kvm_this_user_may_not_open(tmp_path: Path) -> None:
    """A mode-000 kvm node owned by an unmapped user is bind-mounted over /dev/kvm in a
    private mount namespace; the check then runs in a user namespace where only root is
    mapped, so no capability reaches the node and opening it is refused."""
    node = tmp_path / "kvm"
    cmd = " ".join(check_cmd())
    script = (
        f"mknod {node} c 10 232 && chmod 000 {node} && chown 12345:12345 {node} && "
        f"mount --bind {node} /dev/kvm && exec unshare -r {cmd}"
    )
    res = run(["unshare", "-m", "sh", "-c", script], tmp_path / "home")
    assert "accelerator  KVM not usable: /dev/kvm permission denied" in res.stdout, res
    assert "machines will run under TCG" in res.stdout
    assert "fix: add your user to the kvm group" in res.stdout
    assert res.returncode == 0, res  # a warning: TCG still runs machines
    assert oct(Path("/dev/kvm").stat().st_mode & 0o777) != "0o0"  # the host's node untouched


def test_a_port_held_by_a_real_listener(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        res = run(check_cmd("--port", str(port)), tmp_path / "home")
    assert res.returncode == 1, res
    assert f"FAIL  ports        port {port} on 127.0.0.1 is already in use" in res.stdout
    assert f"fix: stop the program listening on {port} (find it with ss -ltnp" in res.stdout


@contextlib.contextmanager
def tiny_filesystem(tmp_path: Path, size_mib: int = 8) -> Iterator[Path]:
    image = tmp_path / "tiny.img"
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    with image.open("wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_a_data_directory_on_a_tiny_disk(tmp_path: Path) -> None:
    with tiny_filesystem(tmp_path) as mnt:
        res = run(check_cmd(), mnt / "dockyard")
    assert res.returncode == 1, res
    line = next(x for x in res.stdout.splitlines() if " disk " in x)
    assert line.startswith("FAIL") and f"MiB free at {mnt}; a machine needs 4.0 GiB" in line
    assert "fix: free up" in res.stdout
    assert "or set DOCKYARD_HOME to a folder on a disk with more room" in res.stdout
