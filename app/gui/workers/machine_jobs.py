"""What the machine page asks of machine/: plain functions, run on the machine's worker thread.

Why plain functions of the machine's name: each reads the config afresh (the CLI or a hand
edit may have changed it since the page last looked) and uses machine/'s public API only
(config, backends, paths, dockercontext), so the page does what `dockyard machine` does and
nothing more. Failures are raised as machine.errors.MachineError (with stage and hint),
never returned as values. Nothing here touches Qt.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from machine import backends, config, dockercontext, filenames, paths
from machine.backend import Backend, MachineState, Stage
from machine.errors import ConfigError, MachineError, MachineNotFound

DEFAULT_NAME = "default"  # the machine `dockyard machine` uses when none is named
BROKEN = "broken"  # a snapshot state: the config cannot be read (the error says why)
# The log the page follows, per backend: the guest's serial console, or the native engine's
# own output (a native machine has no console).
LOG_FILES = {"native": filenames.ENGINE_LOG, "qemu": filenames.SERIAL_LOG}


@dataclass(frozen=True)
class Snapshot:
    """Where one machine is now, read in one go for the page."""

    name: str
    state: str  # a machine.backend.MachineState value, or BROKEN
    config: config.MachineConfig | None = None
    error: MachineError | None = None  # why the config cannot be read (state BROKEN)
    pid: int | None = None
    accel: str = ""
    detail: str = ""
    endpoint: str = ""  # DOCKER_HOST form of its engine
    directory: Path | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)  # the last start's
    disk_made: bool = False  # the data disk exists, so its size is fixed

    @property
    def exists(self) -> bool:
        return self.state != str(MachineState.NOT_CREATED)


def host() -> paths.Host:
    return paths.Host.current()


def machine_dir(name: str) -> Path:
    return paths.local(paths.machine_dir(host(), name))


def names() -> list[str]:
    return config.names(host())


def default_backend() -> str:
    """What a new machine runs on: natively where the engine can (Linux as root), else QEMU."""
    native = sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0
    return "native" if native else "qemu"


def open_backend(cfg: config.MachineConfig) -> Backend:
    return backends.open_backend(cfg.backend, config.to_spec(host(), cfg))


def endpoint(backend: Backend) -> str:
    h = host()
    if h.windows:
        return paths.engine_endpoint(h, backend.spec.name)
    return f"unix://{backend.socket_path()}"


def snapshot(name: str) -> Snapshot:
    """The machine's config, state and last start's stages (never starts anything)."""
    directory = machine_dir(name)
    try:
        cfg = config.load(host(), name)
    except MachineNotFound:
        return Snapshot(name, str(MachineState.NOT_CREATED), directory=directory)
    except MachineError as e:
        return Snapshot(name, BROKEN, error=e, directory=directory, stages=last_stages(directory))
    backend = open_backend(cfg)
    st = backend.status()
    return Snapshot(
        name,
        str(st.state),
        config=cfg,
        pid=st.pid,
        accel=st.accel,
        detail=st.detail,
        endpoint=endpoint(backend),
        directory=directory,
        stages=last_stages(directory),
        disk_made=(directory / filenames.DATA_DISK).exists(),
    )


def last_stages(directory: Path) -> list[dict[str, Any]]:
    """The stages the backend recorded for its last start ([] if none were)."""
    try:
        doc = json.loads((directory / filenames.STAGES).read_text())
    except (OSError, ValueError):
        return []
    items = doc.get("stages", []) if isinstance(doc, dict) else doc
    return [s for s in items if isinstance(s, dict)] if isinstance(items, list) else []


def log_file(snap: Snapshot) -> Path | None:
    """The file whose tail the page shows (see LOG_FILES)."""
    if snap.directory is None:
        return None
    backend = snap.config.backend if snap.config is not None else "qemu"
    return snap.directory / LOG_FILES.get(backend, filenames.SERIAL_LOG)


# -- verbs -----------------------------------------------------------------------------


def create(name: str, backend: str, engine_args: list[str] | None = None) -> config.MachineConfig:
    """A new machine with the host's defaults, as `dockyard machine create` makes it."""
    h = host()
    if name in config.names(h):
        raise ConfigError(f"machine {name!r} already exists", "start it instead")
    reason = paths.socket_too_long(h, name)
    if reason:
        raise ConfigError(reason, "use a shorter machine name, or set DOCKYARD_HOME shorter")
    cfg = config.new(
        name, backend=backend, engine_args=engine_args, taken_ports=config.taken_ports(h)
    )
    open_backend(cfg).create()
    config.save(h, cfg)
    return cfg


def start(name: str, progress: Callable[[Stage], None]) -> list[Stage]:
    """Boot the machine, reporting each stage; then the `dockyard` docker context points at
    it, as after `dockyard machine start`."""
    cfg = config.load(host(), name)
    backend = open_backend(cfg)
    stages = backend.start(progress)
    dockercontext.write(endpoint(backend), f"Dockyard machine {cfg.name} ({cfg.backend})")
    return stages


def stop(name: str, timeout: float = 30.0) -> None:
    cfg = config.load(host(), name)
    open_backend(cfg).stop(timeout)


def set_resources(name: str, cpus: int, memory_mib: int, disk_gib: int) -> config.MachineConfig:
    """Save new sizes (validated: an out-of-range value names the field); they apply at the
    next start."""
    cfg = config.load(host(), name)
    cfg = replace(cfg, cpus=cpus, memory_mib=memory_mib, disk_gib=disk_gib)
    config.save(host(), cfg)
    return cfg


def add_share(
    name: str, host_path: str, guest_path: str, mode: str, readonly: bool
) -> config.MachineConfig:
    """Append a shared folder under the first free `share<n>` tag (validated on save)."""
    cfg = config.load(host(), name)
    path = Path(host_path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"shares: {host_path} is not a directory", "pick an existing folder")
    tags = {s.tag for s in cfg.shares}
    tag = next(f"share{i}" for i in range(len(tags) + 1) if f"share{i}" not in tags)
    folder = str(path.resolve())
    share = config.Share(tag, folder, guest_path or folder, mode, readonly)
    cfg = replace(cfg, shares=[*cfg.shares, share])
    config.save(host(), cfg)
    return cfg


def remove_share(name: str, tag: str) -> config.MachineConfig:
    cfg = config.load(host(), name)
    cfg = replace(cfg, shares=[s for s in cfg.shares if s.tag != tag])
    config.save(host(), cfg)
    return cfg
