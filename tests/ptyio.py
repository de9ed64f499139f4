"""Drive an interactive command through a real pseudo-terminal, as a user at a shell would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time


def pty_session(
    env: dict[str, str], argv: list[str], keys: bytes, timeout: float = 20
) -> tuple[int, bytes]:
    """Run argv on a fresh pty, type `keys` once a `#` prompt shows, and return (exit code, output).

    The command must see a terminal on all three stdio streams (that is what `-t` is about), so a
    pipe will not do; the prompt wait keeps the keys from racing the shell's start.
    """
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b"#" in out:
                os.write(master, keys)
                sent = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=5), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
