"""Reset to factory defaults: every machine stopped and deleted, then the app's settings.

Why machines go through their backend's `remove()` rather than a recursive delete of the
data directory: a running machine has processes (QEMU, the forwarder, a native engine)
and mounts that a delete would leave behind. After them the data directory itself goes
(with anything a crashed run left there), the `dockyard` docker context if it points at
one of them, and the desktop app's QSettings. The app's logs in the platform's log folder
stay: they explain what happened before the reset (with $DOCKYARD_HOME set they live in
`<home>/logs` and go with the rest).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from machine import backends, config, dockercontext, paths
from machine.errors import MachineError

Report = Callable[[str], None]


def reset(
    host: paths.Host | None = None,
    report: Report = print,
    settings: Callable[[], None] | None = None,
) -> list[str]:
    """Remove everything; the problems met (each already reported), [] when all went.
    `settings` clears the app's settings (default: the desktop app's QSettings; the app
    itself passes its own, cleared on its GUI thread)."""
    host = host or paths.Host.current()
    problems: list[str] = []
    for name in config.names(host):
        try:
            cfg = config.load(host, name)
            backend = backends.open_backend(cfg.backend, config.to_spec(host, cfg))
            backend.remove()
            endpoint = (
                paths.engine_endpoint(host, name)
                if host.windows
                else f"unix://{backend.socket_path()}"
            )
            dockercontext.remove(only_endpoint=endpoint)
            report(f"machine {name} removed")
        except MachineError as e:
            problems.append(f"machine {name}: {e.message}")
            report(f"machine {name} not removed: {e.message}")
    data_dir = Path(paths.data_dir(host))
    if not problems and data_dir.exists():
        shutil.rmtree(data_dir)
        report(f"removed {data_dir}")
    (settings or clear_settings)()
    report("app settings cleared")
    return problems


def clear_settings() -> None:
    """The desktop app's QSettings (QtCore only: no display needed)."""
    from PySide6.QtCore import QSettings

    settings = QSettings("Dockyard", "dockyard-desktop")
    settings.clear()
    settings.sync()
