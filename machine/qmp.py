"""QEMU's monitor (QMP) through qemu.qmp: status, graceful power-down, quit.

qemu.qmp is asyncio; these helpers run one short session each with asyncio.run, so the
backend (and the CLI, which may be a different process from the one that started QEMU)
stay synchronous. Why a fresh session per call: QEMU accepts one QMP client at a time on
the socket, and a long-lived one would hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient


async def _execute(socket: Path, command: str, timeout: float) -> Any:
    client = QMPClient("dockyard")
    try:
        await asyncio.wait_for(client.connect(str(socket)), timeout)
        return await asyncio.wait_for(client.execute(command), timeout)
    finally:
        # disconnect() raises EOFError when QEMU already exited (e.g. after `quit`).
        with contextlib.suppress(Exception):
            await client.disconnect()


def execute(socket: Path, command: str, timeout: float = 5.0) -> Any:
    """Run one QMP command; raises OSError/TimeoutError if QEMU does not answer."""
    return asyncio.run(_execute(socket, command, timeout))


def status(socket: Path, timeout: float = 5.0) -> str:
    """QEMU's run state ("running", "paused", "shutdown", ...)."""
    reply = execute(socket, "query-status", timeout)
    return str(reply["status"])


def wait_ready(socket: Path, alive: Callable[[], bool], deadline: float) -> str:
    """Retry until QMP answers query-status; "" when QEMU exited first or the deadline
    passed (the caller reads QEMU's log to say why)."""
    while alive() and time.monotonic() < deadline:
        if not socket.exists():  # QEMU has not created it yet; connecting would log errors
            time.sleep(0.02)
            continue
        try:
            return status(socket, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        except Exception:  # qemu.qmp's ConnectError, OSError, timeouts: not up yet
            time.sleep(0.05)
    return ""


def powerdown(socket: Path, alive: Callable[[], bool], timeout: float) -> bool:
    """Press the ACPI power button (the guest stops its engine, syncs and unmounts the
    data disk, then powers off) and wait up to `timeout`; if QEMU still runs, `quit`.
    True when the guest powered off by itself."""
    with contextlib.suppress(Exception):
        execute(socket, "system_powerdown")
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not alive():
        return True
    with contextlib.suppress(Exception):
        execute(socket, "quit")
    return False


async def _hmp(socket: Path, command_line: str, timeout: float) -> str:
    client = QMPClient("dockyard")
    try:
        await asyncio.wait_for(client.connect(str(socket)), timeout)
        args = {"command-line": command_line}
        reply = await asyncio.wait_for(client.execute("human-monitor-command", args), timeout)
        return str(reply)
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


def hmp(socket: Path, command_line: str, timeout: float = 5.0) -> str:
    """A human-monitor command (hostfwd_add has no QMP form); its printed output, empty on
    success for most commands."""
    return asyncio.run(_hmp(socket, command_line, timeout))
