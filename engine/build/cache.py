"""The classic builder's step cache and the parent links between step images.

Each step of a build makes an image, and the next step starts from it, as
Docker's classic builder does. A step is looked up by its parent image and a
key (the expanded instruction, plus build args for RUN and the content
checksum for COPY/ADD), so an unchanged step is reused ("Using cache") and
a changed one rebuilds from there on. The links also say which untagged
images are a build's intermediate steps: `docker images` hides an image
that another image was built on, and prune keeps it while its child lives.

One small JSON file under `<engine root>/build/` holds both maps; an entry
whose image was removed is simply a miss, and is dropped on the next write.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine import atomicfile
from engine.images.store import ImageStore

_instances: dict[Path, BuildCache] = {}
_instances_guard = threading.Lock()


def step_key(parent: str, text: str) -> str:
    return hashlib.sha256(f"{parent}\n{text}".encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.file = root / "cache.json"
        self._lock = threading.Lock()
        self._steps: dict[str, str] = {}  # step_key -> image id
        self._parents: dict[str, str] = {}  # image id -> the image its step started from
        try:
            data = atomicfile.read_json(self.file)
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            self._steps = _str_map(data.get("steps"))
            self._parents = _str_map(data.get("parents"))

    @classmethod
    def at(cls, root: Path) -> BuildCache:
        """The one cache of an engine root (the build and image routes share it)."""
        with _instances_guard:
            found = _instances.get(root)
            if found is None:
                found = _instances[root] = cls(root)
            return found

    def lookup(self, parent: str, text: str, exists: Callable[[str], bool]) -> str | None:
        with self._lock:
            found = self._steps.get(step_key(parent, text))
        return found if found is not None and exists(found) else None

    def record(self, parent: str, text: str, image_id: str, live: Iterable[str]) -> None:
        """Remember a step; `live` (the store's image ids) lets stale entries go."""
        alive = set(live)
        with self._lock:
            self._steps[step_key(parent, text)] = image_id
            if parent and parent != image_id:
                self._parents[image_id] = parent
            self._steps = {k: v for k, v in self._steps.items() if v in alive}
            self._parents = {k: v for k, v in self._parents.items() if k in alive}
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomicfile.write_json(self.file, {"steps": self._steps, "parents": self._parents})

    def parent(self, image_id: str) -> str:
        with self._lock:
            return self._parents.get(image_id, "")

    def with_children(self, live: Iterable[str]) -> set[str]:
        """Images another live image was built on (what `docker images` hides)."""
        alive = set(live)
        with self._lock:
            return {p for child, p in self._parents.items() if child in alive and p in alive}

    def forget_steps(self) -> int:
        """`docker builder prune`: no step is reused after this; returns how many were known."""
        with self._lock:
            count = len(self._steps)
            self._steps = {}
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomicfile.write_json(self.file, {"steps": {}, "parents": self._parents})
            return count


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def prune_images(
    images: ImageStore, cache: BuildCache, in_use: Callable[[str], str], dangling_only: bool
) -> dict[str, Any]:
    """`docker image prune` that keeps a build's steps while an image built on them lives.

    A step image with a live child counts as in use; removing a child can free
    its parent, so the store is pruned again until nothing more goes.
    """
    deleted: list[dict[str, str]] = []
    reclaimed = 0
    while True:
        held = cache.with_children(i.id for i in images.list())

        def used(image_id: str, held: set[str] = held) -> bool | str:
            return in_use(image_id) or image_id in held

        result = images.prune(dangling_only=dangling_only, in_use=used)
        deleted += result["ImagesDeleted"]
        reclaimed += int(result["SpaceReclaimed"])
        if not result["ImagesDeleted"]:
            return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}
