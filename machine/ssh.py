"""SSH to the guest with paramiko: the host key pinned, short banner waits, retries.

Why the short banner timeout and the retry loop: QEMU's user-mode networking accepts the
TCP connection on the forwarded port before the guest's sshd listens, then drops it; a long
banner wait would stall each attempt that lands in that window. Why no AutoAddPolicy: the
guest's host key was made on the host and given through the seed (machine/keys.py), so the
expected key is known before the first connection and any other key is refused.
"""

from __future__ import annotations

import logging
import queue
import threading
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


ATTEMPT_BANNER_S = 10.0  # how long one attempt waits for sshd's banner
ATTEMPT_S = 20.0  # and for the TCP connection and key exchange
ATTEMPT_EVERY_S = 3.0  # a new attempt starts this often while an earlier one still waits
MAX_ATTEMPTS_AT_ONCE = 2


def connect(
    directory: Path,
    port: int,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
    ready: Callable[[], bool] = lambda: True,
) -> paramiko.SSHClient:
    """Log in before `deadline` (time.monotonic()), unless `alive()` says the VM is gone.

    No attempt starts before `ready()` (the guest's `dockyard-stage sshd` line): QEMU's
    user-mode forward accepts at once and then tries the guest, and before the guest's
    network is up its SYNs go unanswered and are retried with growing gaps, so an early
    attempt can hang for seconds after sshd finally listens; each attempt also costs an
    emulated CPU that is busy booting. Then attempts are patient (a guest busy under TCG
    can take seconds to send the banner and finish the key exchange) and overlap a little:
    a second one starts if the first is still waiting after 3 s, or 0.2 s after one failed.
    The first that logs in wins; the others are closed as they finish."""
    results: queue.Queue[tuple[paramiko.SSHClient | None, BaseException | None]] = queue.Queue()

    def attempt() -> None:
        try:
            client = connect_once(directory, port, ATTEMPT_S, ATTEMPT_BANNER_S)
        except BaseException as e:
            results.put((None, e))
        else:
            results.put((client, None))

    running, next_start = 0, 0.0
    last: BaseException | None = None
    try:
        while True:
            now = time.monotonic()
            may_start = now < deadline and alive() and running < MAX_ATTEMPTS_AT_ONCE
            may_start = may_start and ready()
            if may_start and now >= next_start:
                threading.Thread(target=attempt, daemon=True).start()
                running, next_start = running + 1, now + ATTEMPT_EVERY_S
            if now >= deadline or not alive():
                break
            if running == 0:
                time.sleep(0.05)  # not ready yet, or between attempts
                continue
            try:
                client, error = results.get(timeout=0.05)
            except queue.Empty:
                continue
            running -= 1
            if client is not None:
                return client
            if isinstance(error, HostKeyChanged):
                raise error
            last = error
            next_start = min(next_start, time.monotonic() + 0.2)
    finally:
        if running:
            threading.Thread(target=_close_late, args=(results, running), daemon=True).start()
    if not alive():
        raise ConnectionError(f"the VM exited before SSH answered on 127.0.0.1:{port}")
    raise TimeoutError(f"no SSH answer on 127.0.0.1:{port} ({last})")


def _close_late(
    results: queue.Queue[tuple[paramiko.SSHClient | None, BaseException | None]], count: int
) -> None:
    """Close the sessions of attempts that finished after another one won."""
    for _ in range(count):
        client, _ = results.get()
        if client is not None:
            client.close()


def run(client: paramiko.SSHClient, command: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run `command` in the guest; (exit status, stdout and stderr together)."""
    _, stdout, _ = client.exec_command(command, timeout=timeout, get_pty=False)
    stdout.channel.set_combine_stderr(True)
    out = stdout.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out
