"""A real OpenSSH sshd on 127.0.0.1 for tests, standing where the guest's sshd stands.

It uses a machine directory's host key and authorizes its client key (machine/keys.py), with
streamlocal forwarding on, exactly as the guest is configured; so the SSH, pinning and
socket-forwarding code is tested against the real server without booting a VM.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from machine import filenames, keys
from tests.engine_process import free_port

SSHD = "/usr/sbin/sshd"


@contextmanager
def run_sshd(machine_dir: Path, work: Path, extra: str = "") -> Iterator[int]:
    """Yield the port of an sshd using `machine_dir`'s keys; killed (by pid) afterwards.
    `extra`: more sshd_config lines (e.g. `SetEnv`, `MaxSessions`)."""
    keys.ensure(machine_dir)
    work.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    authorized = work / "authorized_keys"
    authorized.write_text(keys.client_public(machine_dir) + "\n")
    port = free_port()
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\n"
        f"HostKey {machine_dir / filenames.HOST_KEY}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "AllowStreamLocalForwarding yes\nSubsystem sftp internal-sftp\n"
        f"PidFile {work / 'sshd.pid'}\n" + extra
    )
    log = (work / "sshd.log").open("wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        assert proc.poll() is None, (work / "sshd.log").read_text()
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
