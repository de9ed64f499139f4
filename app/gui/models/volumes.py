"""Rows of the volumes page: each volume with the containers that mount it and its size.

Three answers make a row: `GET /volumes` (the volume), `GET /containers/json?all=1` (whose
`Mounts` name the volumes each container uses) and `GET /system/df` (`UsageData.Size`, -1
when the engine did not measure it). They are joined here, in a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.gui.models.container_row import human_bytes
from app.gui.models.table import Column


@dataclass(frozen=True)
class VolumeRow:
    name: str
    driver: str
    mountpoint: str
    users: tuple[str, ...]  # names of the containers that mount it, sorted
    size: int  # bytes; -1 when unknown

    @property
    def short_name(self) -> str:
        """Anonymous volumes have 64-hex names: show 12, like container ids."""
        hexdigits = len(self.name) == 64 and all(c in "0123456789abcdef" for c in self.name)
        return self.name[:12] if hexdigits else self.name


def volume_users(containers: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Volume name → names of the containers mounting it, from the containers list."""
    users: dict[str, list[str]] = {}
    for c in containers:
        name = str((c.get("Names") or ["/" + str(c.get("Id", ""))[:12]])[0]).lstrip("/")
        for mount in c.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(str(mount["Name"]), []).append(name)
    return users


def volume_rows(
    volumes: dict[str, Any] | None,
    containers: list[dict[str, Any]],
    df: dict[str, Any] | None,
) -> list[VolumeRow]:
    users = volume_users(containers)
    sizes = {
        str(v.get("Name")): int((v.get("UsageData") or {}).get("Size", -1))
        for v in (df or {}).get("Volumes") or []
    }
    rows = []
    for v in (volumes or {}).get("Volumes") or []:
        name = str(v.get("Name", ""))
        rows.append(
            VolumeRow(
                name=name,
                driver=str(v.get("Driver", "")),
                mountpoint=str(v.get("Mountpoint", "")),
                users=tuple(sorted(users.get(name, []))),
                size=sizes.get(name, -1),
            )
        )
    return rows


def users_text(row: VolumeRow) -> str:
    return ", ".join(row.users) if row.users else "—"


def size_text(row: VolumeRow) -> str:
    return human_bytes(row.size) if row.size >= 0 else "—"


COLUMNS = [
    Column("Name", lambda r: r.short_name, sort=lambda r: r.name, tip=lambda r: r.name),
    Column("Driver", lambda r: r.driver),
    Column("Used by", users_text, sort=lambda r: (len(r.users), r.users)),
    Column("Size", size_text, sort=lambda r: r.size, numeric=True),
    Column("Mountpoint", lambda r: r.mountpoint, tip=lambda r: r.mountpoint),
]
