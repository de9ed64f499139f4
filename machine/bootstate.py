"""The saved boot: a machine starts from its guest parked at the boot checkpoint.

Why: under an emulator a guest needs many seconds from power-on to a listening sshd with
the engine imported, and it arrives at the same state on every boot of a machine. The
guest parks there (vmimage/guest/wakeup.py); the first boot saves it with QEMU's migration
to a file in the machine directory, and later starts load that file instead of booting,
then wake the guest (machine/wakeup.py) with the clock and fresh entropy. The data disk
and the shares are mounted only after the wake-up, so the saved state holds no
filesystem that could have changed since.

A saved state is used only by the start whose key matches: the key covers everything the
guest's memory depends on (the canonical QEMU argv, the seed minus its clock, the image's
manifest, the disk size, the QEMU binary and the host CPU). Anything else is a fresh boot
that saves a new state. A state QEMU refuses to save (a device that cannot migrate, such
as a virtiofs share) is recorded with the reason, so the next boots do not try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from machine import filenames
from machine.atomic import write_text

FORMAT = 1  # bump when the guest's checkpoint contract changes
POLL_S = 0.02


@dataclass(frozen=True)
class Meta:
    """What boot.json says about the saved state: its key, and why none was saved."""

    key: str
    saved: bool
    reason: str = ""
    size: int = 0


def cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The host CPU a saved state assumes (model and flags on Linux)."""
    wanted = ("model name", "flags", "Features", "CPU part")
    with contextlib.suppress(OSError):
        lines = cpuinfo.read_text().split("\n\n", 1)[0].splitlines()
        return "\n".join(line for line in lines if line.split(":")[0].strip() in wanted)
    return f"{platform.machine()} {platform.processor()}"


def binary_identity(binary: str) -> str:
    """The QEMU that saved a state must load it: its path, size and change time."""
    path = shutil.which(binary) or binary
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{os.path.realpath(path)} {st.st_size} {st.st_mtime_ns}"


def key(argv: list[str], seed_doc: dict[str, Any], manifest: bytes, disk_gb: int) -> str:
    """The key of the state this VM would save; `argv` is the canonical one (no port)."""
    parts = {
        "format": FORMAT,
        "argv": argv,
        "seed": {k: v for k, v in seed_doc.items() if k != "time"},
        "manifest": hashlib.sha256(manifest).hexdigest(),
        "disk_gb": disk_gb,
        "qemu": binary_identity(argv[0]),
        "cpu": cpu_identity(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def read_meta(directory: Path) -> Meta | None:
    try:
        doc = json.loads((directory / filenames.BOOT_META).read_text())
        return Meta(
            str(doc["key"]), bool(doc["saved"]), str(doc.get("reason", "")), int(doc.get("size", 0))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def usable(directory: Path, wanted: str) -> Path | None:
    """The saved state for key `wanted`, if there is one."""
    meta = read_meta(directory)
    state = directory / filenames.BOOT_STATE
    if meta is None or meta.key != wanted or not meta.saved or not state.is_file():
        return None
    return state


def should_save(directory: Path, wanted: str) -> bool:
    """False when a state for this key exists or QEMU already refused to save one."""
    meta = read_meta(directory)
    return meta is None or meta.key != wanted


def record(directory: Path, meta: Meta) -> None:
    doc = {"key": meta.key, "saved": meta.saved, "reason": meta.reason, "size": meta.size}
    write_text(directory / filenames.BOOT_META, json.dumps(doc, indent=1) + "\n")


def discard(directory: Path) -> None:
    """Forget the saved state (a restore failed, or the user asked for a fresh boot)."""
    for name in (filenames.BOOT_STATE, filenames.BOOT_META, filenames.BOOT_STATE + ".part"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def save_uri(path: Path) -> str:
    return "exec:cat > " + shlex.quote(str(path))


def load_uri(path: Path) -> str:
    return "exec:cat " + shlex.quote(str(path))


async def _migration_done(client: QMPClient, deadline: float) -> dict[str, Any]:
    while True:
        reply = await client.execute("query-migrate")
        info: dict[str, Any] = dict(reply) if isinstance(reply, dict) else {}
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        if time.monotonic() > deadline:
            with contextlib.suppress(Exception):
                await client.execute("migrate_cancel")
            return {"status": "failed", "error-desc": "timed out"}
        await asyncio.sleep(POLL_S)


async def _save(qmp_socket: Path, uri: str, timeout: float) -> dict[str, Any]:
    client = QMPClient("dockyard-save")
    await asyncio.wait_for(client.connect(str(qmp_socket)), timeout)
    try:
        await client.execute("stop")
        try:
            await client.execute("migrate", {"uri": uri})
        except Exception as e:  # qemu.qmp's ExecuteError: a device that cannot migrate
            return {"status": "refused", "error-desc": str(e)}
        return await _migration_done(client, time.monotonic() + timeout)
    finally:
        with contextlib.suppress(Exception):
            await client.execute("cont")  # refused: the guest runs on all the same
        with contextlib.suppress(Exception):
            await client.disconnect()


def save(directory: Path, qmp_socket: Path, wanted: str, timeout: float = 60.0) -> Meta:
    """Save the parked guest under key `wanted` and let it run on; the Meta says whether
    it was saved and, if not, why. A refusal (this VM cannot migrate) is recorded so later
    boots do not try again; any other failure (a full disk, say) is not: the next boot
    tries again. No partial file is left either way."""
    part = directory / (filenames.BOOT_STATE + ".part")
    try:
        os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # guest memory
        info = asyncio.run(_save(qmp_socket, save_uri(part), timeout))
    except Exception as e:  # no room for the file, or QMP went away: the boot goes on
        info = {"status": "failed", "error-desc": f"{e or type(e).__name__}"}
    if info.get("status") == "completed":
        os.replace(part, directory / filenames.BOOT_STATE)
        meta = Meta(wanted, True, size=(directory / filenames.BOOT_STATE).stat().st_size)
        record(directory, meta)
        return meta
    part.unlink(missing_ok=True)
    meta = Meta(wanted, False, str(info.get("error-desc") or info.get("status")))
    if info.get("status") == "refused":
        record(directory, meta)
    else:
        discard(directory)
    return meta


async def _load(qmp_socket: Path, uri: str, timeout: float) -> dict[str, Any]:
    client = QMPClient("dockyard-load")
    await asyncio.wait_for(client.connect(str(qmp_socket)), timeout)
    try:
        await client.execute("migrate-incoming", {"uri": uri})
        info = await _migration_done(client, time.monotonic() + timeout)
        if info.get("status") == "completed":
            await client.execute("cont")
        return info
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


def load(qmp_socket: Path, state: Path, timeout: float) -> str:
    """Load `state` into a QEMU started with `-incoming defer` and run it; "" on success,
    else QEMU's reason."""
    try:
        info = asyncio.run(_load(qmp_socket, load_uri(state), timeout))
    except Exception as e:  # QEMU exited while loading, or refused the stream
        return str(e) or type(e).__name__
    if info.get("status") == "completed":
        return ""
    return str(info.get("error-desc") or info.get("status"))
