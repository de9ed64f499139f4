"""`dockyard diagnostics` and the app's "Collect diagnostics": one zip for a bug report.

What goes in: the app's own logs (app/applog.py), and for each machine its config, serial
log, QEMU/engine/forwarder logs, last stages and argv; the docker CLI's config with its
`auths` reduced to registry names; a summary (versions, OS, first-run checks). Every text
passes through app/redact.py. Files that hold nothing but secrets (SSH keys, host keys)
are never read at all: the machine files are named one by one, never globbed.

Each log is cut to its last MAX_FILE_BYTES: the end is what explains a failure, and a
bundle must stay small enough to attach to an issue.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from app import applog, redact
from app.firstrun import checks
from app.version import version
from machine import config, dockercontext, filenames, paths

MAX_FILE_BYTES = 2 << 20
MACHINE_FILES = (
    filenames.CONFIG,
    filenames.SERIAL_LOG,
    filenames.QEMU_LOG,
    filenames.QEMU_ARGV,
    filenames.ENGINE_LOG,
    filenames.FORWARD_LOG,
    filenames.STAGES,
    filenames.LIBVIRT_XML,
    filenames.PORTS,
    filenames.PORTS_LOG,
    filenames.SHARES,
    filenames.SHARES_LOG,
    filenames.DISK_USAGE,
)


def default_name() -> str:
    return time.strftime("dockyard-diagnostics-%Y%m%d-%H%M%S.zip")


def collect(out: Path, host: paths.Host | None = None) -> list[str]:
    """Write the bundle to `out` (0600); the member names written."""
    host = host or paths.Host.current()
    members: dict[str, str] = {}
    for log in sorted(applog.log_dir().glob("*.log*")) if applog.log_dir().is_dir() else []:
        members[f"app-logs/{log.name}"] = redact.text(_tail(log))
    data_dir = Path(paths.data_dir(host))
    for name in config.names(host):
        directory = data_dir / name
        for fname in MACHINE_FILES:
            path = directory / fname
            if path.is_file():
                raw = _tail(path)
                members[f"machines/{name}/{fname}"] = (
                    redact.json_text(raw) if fname.endswith(".json") else redact.text(raw)
                )
    docker_config = dockercontext.config_dir() / "config.json"
    if docker_config.is_file():
        members["docker/config.json"] = redact.json_text(_tail(docker_config))
    members["summary.json"] = json.dumps(summary(data_dir), indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for member, content in members.items():
            z.writestr(member, content)
    return list(members)


def _tail(path: Path) -> str:
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - MAX_FILE_BYTES))
        return f.read().decode("utf-8", "replace")


def summary(data_dir: Path) -> dict[str, Any]:
    return {
        "dockyard": version(),
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "data_dir": str(data_dir),
        "log_dir": str(applog.log_dir()),
        "checks": [
            {"name": r.name, "status": str(r.status), "message": r.message, "hint": r.hint}
            for r in checks.run_all(data_dir)
        ],
    }
