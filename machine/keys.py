"""The machine's SSH keys, all made on the host: the client key and the guest's host key.

Why the host makes the guest's host key: the guest learns it from the seed, so the host
knows the key before the first connection and pins it. There is no trust on first use, and
a guest that answers with any other key is refused (machine/ssh.py). Private keys are
written 0600 in the machine directory, created with that mode so they are never readable
by others, not even for an instant.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from machine import filenames


def new_keypair(comment: str) -> tuple[str, str]:
    """(OpenSSH private key text, "ssh-ed25519 AAAA... comment")."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {comment}"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the start, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)  # the umask cannot widen it, but an older file could have
    os.replace(tmp, path)


def ensure(directory: Path) -> None:
    """Make the client key and the guest host key once; later starts reuse them, so the
    pinned host key stays the same across restarts."""
    pairs = (
        (filenames.SSH_KEY, filenames.SSH_KEY_PUB, "dockyard-host"),
        (filenames.HOST_KEY, filenames.HOST_KEY_PUB, "dockyard-guest"),
    )
    for private_name, public_name, comment in pairs:
        if (directory / private_name).is_file() and (directory / public_name).is_file():
            continue
        private, public = new_keypair(comment)
        write_private(directory / private_name, private)
        write_private(directory / public_name, public + "\n")


def client_public(directory: Path) -> str:
    return (directory / filenames.SSH_KEY_PUB).read_text().strip()


def host_private(directory: Path) -> str:
    return (directory / filenames.HOST_KEY).read_text()


def pinned_host_key(directory: Path) -> str:
    """The guest host key's "ssh-ed25519 AAAA..." (without the comment)."""
    kind, blob, *_ = (directory / filenames.HOST_KEY_PUB).read_text().split()
    return f"{kind} {blob}"
