"""Named volumes of the `local` driver: `<root>/volumes/<name>/_data`.

The data directory is what containers bind; the metadata beside it says who
made the volume and with which labels, so `docker volume inspect` survives an
engine restart.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.atomicfile import read_json, write_json
from engine.diskusage import du
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.timefmt import now_rfc3339

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
META = "volume.json"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # as Docker marks them; `rm -v` removes these

InUse = Callable[[str], list[str]]  # volume name -> ids of containers using it


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def data_dir(self, name: str) -> Path:
        return self.root / name / "_data"

    def create(
        self,
        name: str = "",
        driver: str = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        if driver not in ("", "local"):
            raise NotFound(f'plugin "{driver}" not found: only the local volume driver exists')
        if options:
            raise InvalidParameter(
                f"volume driver options are not supported: {sorted(options)}; "
                "create the volume without --opt"
            )
        name = name or secrets.token_hex(32)
        if not _NAME_RE.match(name):
            raise InvalidParameter(
                f'"{name}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                "directory, use absolute path"
            )
        with self._lock:
            meta_path = self.root / name / META
            if meta_path.exists():
                return self._view(name)
            all_labels = dict(labels or {})
            if anonymous:
                all_labels[ANONYMOUS_LABEL] = ""
            meta = {"CreatedAt": now_rfc3339(), "Labels": all_labels}
            fresh = not (self.root / name).exists()
            try:
                self.data_dir(name).mkdir(parents=True, exist_ok=True)
                write_json(meta_path, meta)
            except OSError:  # e.g. a full disk: leave no metadata-less volume dir behind
                if fresh:
                    shutil.rmtree(self.root / name, ignore_errors=True)
                raise
            return self._view(name)

    def exists(self, name: str) -> bool:
        return (self.root / name / META).exists()

    def inspect(self, name: str) -> dict[str, Any]:
        if not _NAME_RE.match(name) or not self.exists(name):
            raise NotFound(f"get {name}: no such volume")
        return self._view(name)

    def _view(self, name: str) -> dict[str, Any]:
        meta = read_json(self.root / name / META)
        return {
            "Name": name,
            "Driver": "local",
            "Mountpoint": str(self.data_dir(name)),
            "CreatedAt": meta["CreatedAt"],
            "Labels": meta.get("Labels") or {},
            "Scope": "local",
            "Options": None,
        }

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob(f"*/{META}"))

    def list(self) -> list[dict[str, Any]]:
        return [self._view(n) for n in self.names()]

    def remove(self, name: str, in_use: InUse, force: bool = False) -> None:
        self.inspect(name)
        users = in_use(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        with self._lock:
            shutil.rmtree(self.root / name, ignore_errors=True)

    def prune(
        self,
        in_use: InUse,
        all_volumes: bool = False,
        label_filter: Callable[[dict[str, str]], bool] = lambda _l: True,
    ) -> dict[str, Any]:
        deleted, reclaimed = [], 0
        for view in self.list():
            name = view["Name"]
            anonymous = ANONYMOUS_LABEL in view["Labels"]
            if in_use(name) or not (anonymous or all_volumes) or not label_filter(view["Labels"]):
                continue
            reclaimed += du(self.data_dir(name))
            shutil.rmtree(self.root / name, ignore_errors=True)
            deleted.append(name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}
