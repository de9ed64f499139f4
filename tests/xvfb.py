"""A private Xvfb for the tools that run the desktop app with the real xcb platform
(`make run` headless, `make screenshots`, bench/gui.py), so none of them needs, or
disturbs, the user's display."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def xvfb() -> Iterator[str | None]:
    """A private X server's DISPLAY, or None when Xvfb is not installed or did not start.

    Xvfb picks a free display number itself (-displayfd) and writes it once it accepts
    connections. It runs in its own session so a Ctrl-C reaches the app first, which then
    lets go of the display; it is stopped by PID on the way out."""
    binary = shutil.which("Xvfb")
    if binary is None:
        yield None
        return
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [binary, "-displayfd", str(write_end), "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            number = pipe.readline().decode().strip()
        yield f":{number}" if number.isdigit() else None
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate `proc`, then kill it if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
