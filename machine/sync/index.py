"""What both sides held after the last sync, per path: the base of every decision.

Each record keeps the agreed version (kind, content hash or link target, mode) and, per
side, the lstat key that side showed when it was synced. A side whose key is unchanged
still holds the agreed version, without hashing; only a changed key makes a path a
candidate to hash. That is what makes a restart's scan incremental.

Persisted as JSON, written atomically after each pass (machine/atomic.py). The file
names the two folders it describes: pointed at another pair, the index starts empty
rather than judging one pair's files by another's history.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import atomic
from machine.sync.tree import Key

FORMAT = 1


@dataclass(frozen=True)
class Version:
    """What a path holds as far as syncing cares: kind, sha256 (file) or target (link),
    permission bits (files only; 0 otherwise)."""

    kind: str
    digest: str = ""
    mode: int = 0


@dataclass(frozen=True)
class Record:
    version: Version
    host_key: Key
    guest_key: Key

    def key(self, side: str) -> Key:
        return self.host_key if side == "host" else self.guest_key

    def to_json(self) -> list[Any]:
        v = self.version
        return [v.kind, v.digest, v.mode, list(self.host_key), list(self.guest_key)]

    @classmethod
    def from_json(cls, doc: list[Any]) -> Record:
        kind, digest, mode, host_key, guest_key = doc
        return cls(Version(str(kind), str(digest), int(mode)), tuple(host_key), tuple(guest_key))


class Index:
    """path -> Record, for one share."""

    def __init__(self, path: Path, host_root: str, guest_root: str) -> None:
        self.path = path
        self.roots = [host_root, guest_root]
        self.records: dict[str, Record] = {}
        self.dirty = False

    @classmethod
    def load(cls, path: Path, host_root: str, guest_root: str) -> Index:
        index = cls(path, host_root, guest_root)
        try:
            doc = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return index
        if doc.get("format") == FORMAT and doc.get("roots") == index.roots:
            index.records = {rel: Record.from_json(r) for rel, r in doc["records"].items()}
        return index

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "roots": self.roots,
            "records": {rel: r.to_json() for rel, r in sorted(self.records.items())},
        }
        atomic.write_text(self.path, json.dumps(doc, separators=(",", ":")), 0o600)
        self.dirty = False

    def get(self, rel: str) -> Record | None:
        return self.records.get(rel)

    def put(self, rel: str, record: Record) -> None:
        self.records[rel] = record
        self.dirty = True

    def forget(self, rel: str) -> None:
        if self.records.pop(rel, None) is not None:
            self.dirty = True

    def under(self, scopes: Iterable[str]) -> set[str]:
        """The recorded paths equal to or below any of `scopes` ("" = all).

        One sort, then a bisection per scope: an untar of thousands of files at the root
        gives thousands of scopes, and scanning every record for each would be quadratic."""
        keys = sorted(self.records)
        found: set[str] = set()
        for scope in scopes:
            if not scope:
                return set(keys)
            if scope in self.records:
                found.add(scope)
            prefix = scope + "/"
            i = bisect.bisect_left(keys, prefix)
            while i < len(keys) and keys[i].startswith(prefix):
                found.add(keys[i])
                i += 1
        return found
