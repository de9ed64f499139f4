"""SSH to the guest with paramiko: the host key pinned, short banner waits, retries.

Why the short banner timeout and the retry loop: QEMU's user-mode networking accepts the
TCP connection on the forwarded port before the guest's sshd listens, then drops it; a long
banner wait would stall each attempt that lands in that window. Why no AutoAddPolicy: the
guest's host key was made on the host and given through the seed (machine/keys.py), so the
expected key is known before the first connection and any other key is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

from machine import filenames, keys
from machine.errors import MachineError

GUEST_USER = "root"
LOOPBACK = "127.0.0.1"

# paramiko logs every refused early connection at ERROR; the retry loop handles them.
logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)


HOST_KEY_HINT = (
    "if you recreated the machine on purpose, `dockyard machine rm` it and create it again; "
    "otherwise find what listens on the port"
)


class HostKeyChanged(MachineError):
    """The guest answered with a host key other than the pinned one."""

    def __init__(self, port: int, offered: str, pinned: str) -> None:
        super().__init__(
            f"the guest on 127.0.0.1:{port} offered SSH host key {offered}, but this machine's "
            f"pinned key is {pinned}: refusing to connect (something else may be answering "
            "on that port, or the machine's files were replaced)",
            "sshd",
            HOST_KEY_HINT,
        )


def _pinned_client(directory: Path, port: int) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    kind, blob = keys.pinned_host_key(directory).split()
    client.get_host_keys().add(f"[{LOOPBACK}]:{port}", kind, paramiko.Ed25519Key(data=_b64(blob)))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def connect_once(
    directory: Path, port: int, timeout: float = 2.0, banner_timeout: float = 1.0
) -> paramiko.SSHClient:
    """One attempt; raises HostKeyChanged, or paramiko/OS errors for the retry loop."""
    client = _pinned_client(directory, port)
    pkey = paramiko.Ed25519Key.from_private_key_file(str(directory / filenames.SSH_KEY))
    try:
        client.connect(
            LOOPBACK,
            port=port,
            username=GUEST_USER,
            pkey=pkey,
            timeout=timeout,
            banner_timeout=banner_timeout,
            auth_timeout=10.0,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.BadHostKeyException as e:
        client.close()
        offered = f"{e.key.get_name()} {e.key.get_base64()}"
        raise HostKeyChanged(port, offered, keys.pinned_host_key(directory)) from e
    except BaseException:
        client.close()
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)
    return client


def connect(
    directory: Path, port: int, deadline: float, alive: Callable[[], bool] = lambda: True
) -> paramiko.SSHClient:
    """Retry with backoff (0.1 s doubling to 1 s) until `deadline` (time.monotonic()), or
    until `alive()` says the VM is gone.

    The banner wait starts short and doubles after each failed attempt (up to 8 s): while
    sshd is not listening, QEMU's forward closes at once and a long wait costs nothing, but
    a guest busy booting under TCG can take over a second to fork sshd's session process,
    and a fixed 1 s wait would then give up on every attempt, forever."""
    delay, banner = 0.1, 1.0
    last: Exception | None = None
    while alive():
        try:
            # paramiko's `timeout` also bounds the key exchange, which the same busy
            # guest slows down: it grows with the banner wait.
            return connect_once(directory, port, timeout=2 * banner, banner_timeout=banner)
        except HostKeyChanged:
            raise
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as e:
            last = e
        if time.monotonic() + delay > deadline:
            raise TimeoutError(f"no SSH answer on 127.0.0.1:{port} ({last})")
        time.sleep(delay)
        delay, banner = min(delay * 2, 1.0), min(banner * 2, 8.0)
    raise ConnectionError(f"the VM exited before SSH answered on 127.0.0.1:{port}")


def run(client: paramiko.SSHClient, command: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run `command` in the guest; (exit status, stdout and stderr together)."""
    _, stdout, _ = client.exec_command(command, timeout=timeout, get_pty=False)
    stdout.channel.set_combine_stderr(True)
    out = stdout.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out
