"""A real engine behind a real sshd, reached as `ssh://remote-engine`, for the SSH tests.

The sshd (tests/sshd.py) sets DOCKER_HOST for its sessions (`SetEnv`), so the real
`/usr/local/bin/docker system dial-stdio` it runs for a login talks to the test's engine,
exactly as a remote host's docker CLI talks to its own engine. The client side is a HOME of
the test's own: ~/.ssh/config names the host `remote-engine` (port, user root, the key,
IdentitiesOnly so no agent or personal key is tried) and ~/.ssh/known_hosts pins the sshd's
host key; nothing of the developer's own SSH setup is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import sshdial
from machine import filenames, keys
from tests.sshd import run_sshd

ALIAS = "remote-engine"


@dataclass(frozen=True)
class SshEngine:
    url: str  # ssh://remote-engine
    port: int
    home: Path  # the HOME whose ~/.ssh the client reads
    keys: Path  # the sshd's host key and the authorized client key


def write_client_home(home: Path, port: int, key_dir: Path, known: bool = True) -> None:
    """~/.ssh/config for ALIAS and, when `known`, its host key in ~/.ssh/known_hosts."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "config").write_text(
        f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
        f"  IdentityFile {key_dir / filenames.SSH_KEY}\n  IdentitiesOnly yes\n"
    )
    hosts = ssh / "known_hosts"
    hosts.write_text(f"[127.0.0.1]:{port} {keys.pinned_host_key(key_dir)}\n" if known else "")


@contextmanager
def ssh_engine(
    docker_host: str, work: Path, sshd_extra: str = "", remote_env: Mapping[str, str] | None = None
) -> Iterator[SshEngine]:
    """An sshd whose sessions' docker CLI uses `docker_host` (an engine's unix:// address),
    with `remote_env` set in them too; HOME points at the client side while inside. Every
    shared SSH transport is closed before the sshd goes."""
    key_dir = work / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    env = {"DOCKER_HOST": docker_host, "DOCKER_CONFIG": str(work / "remote-docker")}
    env.update(remote_env or {})
    set_env = "SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()) + "\n"  # one line: sshd
    with run_sshd(key_dir, work / "sshd", set_env + sshd_extra) as port:  # keeps the first
        home = work / "home"
        write_client_home(home, port, key_dir)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HOME", str(home))
            mp.delenv("SSH_AUTH_SOCK", raising=False)
            try:
                yield SshEngine(f"ssh://{ALIAS}", port, home, key_dir)
            finally:
                sshdial.close_all()
