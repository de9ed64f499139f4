"""Parse Docker's three mount syntaxes (Binds, Mounts, Tmpfs) into one plan.

`-v src:dst:opts`, `--mount type=...` and `--tmpfs dst:opts` all end up as a
`MountPlan`; the image's VOLUME entries not covered by one get an anonymous
volume, as Docker does. This module is pure: creating volumes and directories
happens in `create.py`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidParameter


@dataclass
class MountPlan:
    kind: str  # "bind", "volume", "tmpfs"
    target: str
    source: str = ""  # host path for bind, volume name ("" = anonymous) for volume
    readonly: bool = False
    options: list[str] = field(default_factory=list)
    create_source: bool = True  # -v creates a missing bind source; --mount does not
    mode: str = ""  # the option string docker inspect shows
    copy: bool = True  # volume: pre-populate from the image when empty (off with nocopy)


def _check_target(target: str) -> str:
    if not target.startswith("/"):
        raise InvalidParameter(f"invalid mount config: mount path must be absolute: {target!r}")
    cleaned = posixpath.normpath(target)
    if cleaned == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return cleaned


def parse_bind(spec: str) -> MountPlan:
    parts = spec.split(":")
    if len(parts) == 1:
        return MountPlan("volume", _check_target(parts[0]))
    if len(parts) > 3:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    options = [o for o in mode.split(",") if o]
    for opt in options:
        if opt not in (
            "ro",
            "rw",
            "z",
            "Z",
            "private",
            "rprivate",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "nocopy",
        ):
            raise InvalidParameter(f"invalid mode: {opt} in volume specification '{spec}'")
    kind = "bind" if source.startswith("/") else "volume"
    if not source:
        raise InvalidParameter(f"invalid volume specification: '{spec}': empty source")
    return MountPlan(
        kind,
        _check_target(target),
        posixpath.normpath(source) if kind == "bind" else source,
        readonly="ro" in options,
        mode=mode,
        copy="nocopy" not in options,
    )


def parse_mount(m: dict[str, Any]) -> MountPlan:
    kind = str(m.get("Type", "")).lower()
    target = _check_target(str(m.get("Target", "")))
    readonly = bool(m.get("ReadOnly", False))
    source = str(m.get("Source") or "")
    if kind == "bind":
        if not source.startswith("/"):
            raise InvalidParameter(
                f"invalid mount config for type \"bind\": invalid source path '{source}'"
            )
        return MountPlan("bind", target, posixpath.normpath(source), readonly, create_source=False)
    if kind == "volume":
        nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
        return MountPlan("volume", target, source, readonly, copy=not nocopy)
    if kind == "tmpfs":
        if source:
            raise InvalidParameter('invalid mount config for type "tmpfs": source must be empty')
        return MountPlan(
            "tmpfs", target, options=_tmpfs_options(m.get("TmpfsOptions") or {}), readonly=readonly
        )
    raise InvalidParameter(f"mount type {kind!r} is not supported: use bind, volume or tmpfs")


def _tmpfs_options(opts: dict[str, Any]) -> list[str]:
    out = []
    if opts.get("SizeBytes"):
        out.append(f"size={int(opts['SizeBytes'])}")
    if opts.get("Mode"):
        out.append(f"mode={int(opts['Mode']):o}")
    return out


def parse_tmpfs(target: str, options: str) -> MountPlan:
    opts = [o for o in options.split(",") if o]
    readonly = "ro" in opts
    return MountPlan(
        "tmpfs",
        _check_target(target),
        options=[o for o in opts if o not in ("ro", "rw")],
        readonly=readonly,
    )


def plan_mounts(
    host_config: dict[str, Any], config: dict[str, Any], image_config: dict[str, Any]
) -> list[MountPlan]:
    plans: list[MountPlan] = []
    plans += [parse_bind(str(b)) for b in host_config.get("Binds") or []]
    plans += [parse_mount(m) for m in host_config.get("Mounts") or []]
    plans += [parse_tmpfs(t, str(o or "")) for t, o in (host_config.get("Tmpfs") or {}).items()]
    seen: set[str] = set()
    for p in plans:
        if p.target in seen:
            raise InvalidParameter(f"Duplicate mount point: {p.target}")
        seen.add(p.target)
    declared = {**(image_config.get("Volumes") or {}), **(config.get("Volumes") or {})}
    for target in sorted(declared):
        cleaned = _check_target(target)
        if cleaned not in seen:
            plans.append(MountPlan("volume", cleaned))
            seen.add(cleaned)
    return plans
