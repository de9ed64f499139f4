"""The devices controller (v1): which device nodes a container may open.

Docker's default set includes CAP_MKNOD, so a container can create any device
node; without this allow-list it could then open the host's disks. The list is
runc's default: any node may be created (`m`), but only the harmless character
devices (null, zero, full, random, urandom, tty, console, ptmx, the pty slaves
and tun) may be read or written. `--privileged` lifts the list.

cgroup v2 has no devices files (it takes an eBPF program); there the runtime's
minimal /dev is the only guard, which is recorded as a known gap.
"""

from __future__ import annotations

from pathlib import Path

from engine.cgroups import fs
from engine.runtime.spec import Resources

ALLOWED = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",  # null
    "c 1:5 rwm",  # zero
    "c 1:7 rwm",  # full
    "c 1:8 rwm",  # random
    "c 1:9 rwm",  # urandom
    "c 5:0 rwm",  # tty
    "c 5:1 rwm",  # console
    "c 5:2 rwm",  # ptmx
    "c 136:* rwm",  # pts/*
    "c 10:200 rwm",  # net/tun
)


def rules(res: Resources) -> list[tuple[str, str]]:
    """(file, rule) writes, in order: deny everything, then allow the list."""
    if res.all_devices:
        return [("devices.allow", "a")]
    return [("devices.deny", "a"), *(("devices.allow", rule) for rule in ALLOWED)]


def apply_v1(res: Resources, cgroup_dir: Path) -> None:
    if not (cgroup_dir / "devices.deny").exists():
        return  # the devices hierarchy is not mounted here
    for name, rule in rules(res):
        fs.write(cgroup_dir / name, rule)
