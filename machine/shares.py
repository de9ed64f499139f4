"""Adding and removing a machine's shared folders (the `shares` list of its config).

Why a module of its own: `dockyard machine share add|rm|ls` and the GUI change the same
list, and both must refuse the same mistakes (a folder that does not exist, a guest path
that overlaps another share) before anything is saved, so a bad request leaves the config
as it was. Changes take effect at the machine's next start: the devices of 9p and virtiofs
shares are part of the QEMU command line.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

from machine import config
from machine.config import MachineConfig, Share
from machine.errors import ConfigError


def free_tag(cfg: MachineConfig) -> str:
    taken = {s.tag for s in cfg.shares}
    return next(f"share{i}" for i in range(len(taken) + 1) if f"share{i}" not in taken)


def add(
    cfg: MachineConfig,
    host_path: str,
    guest_path: str = "",
    mode: str = "virtiofs",
    readonly: bool = False,
    ignore: Sequence[str] = (),
) -> MachineConfig:
    """A new config with the share added (the given one is untouched); raises ConfigError.

    The host folder must exist now: a typo would otherwise surface only at the next start,
    as a device QEMU or virtiofsd cannot open."""
    path = Path(host_path).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    path = Path(os.path.normpath(path))
    if not path.is_dir():
        raise ConfigError(f"shares: {path} is not a directory", "create it first, or fix the path")
    share = Share(free_tag(cfg), str(path), guest_path, mode, readonly, list(ignore))
    new = copy.deepcopy(cfg)
    new.shares.append(share)
    config.validate(new)
    return new


def remove(cfg: MachineConfig, ref: str) -> MachineConfig:
    """A new config without the share whose tag, host path or guest path is `ref`."""
    found = find(cfg, ref)
    new = copy.deepcopy(cfg)
    new.shares = [s for s in new.shares if s.tag != found.tag]
    return new


def find(cfg: MachineConfig, ref: str) -> Share:
    norm = os.path.normpath(os.path.abspath(os.path.expanduser(ref))) if ref else ""
    for share in cfg.shares:
        if ref == share.tag or norm in (share.host_path, share.guest_path or share.host_path):
            return share
    known = ", ".join(s.host_path for s in cfg.shares) or "none"
    raise ConfigError(
        f"machine {cfg.name} has no share {ref!r}",
        f"give a tag or a host path from `dockyard machine share ls` (shares: {known})",
    )


def rows(cfg: MachineConfig) -> list[tuple[str, str, str, str, str]]:
    """(tag, host path, guest path, mode, options) for a table."""
    out = []
    for s in cfg.shares:
        options = ["ro" if s.readonly else "rw", *(f"ignore={p}" for p in s.ignore)]
        out.append((s.tag, s.host_path, s.guest_path or s.host_path, s.mode, ",".join(options)))
    return out
