"""Container records on disk (`<root>/containers/<id>/config.v2.json`) and their lookup.

Lookup follows Docker: full id, unique id prefix, or name (with or without the
leading slash). Every change is saved atomically so a crash never loses or
corrupts a record.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.atomicfile import discard_tree, read_json, write_json
from engine.containers import names
from engine.containers.hostfiles import restore_host_files
from engine.containers.model import Container
from engine.errors import Conflict, InvalidParameter, NotFound

log = logging.getLogger("engine.containers")

RECORD = "config.v2.json"


class ContainerStore:
    def __init__(self, root: Path, trash: Path | None = None) -> None:
        self.root = root
        # Beside the records, never among them, on their filesystem (for the atomic
        # rename); None deletes removed records in place.
        self.trash = trash
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._by_id: dict[str, Container] = {}
        self._reserved: set[str] = set()  # names of creates in progress
        self._load()

    def _load(self) -> None:
        for record in sorted(self.root.glob(f"*/{RECORD}")):
            try:
                c = Container.from_record(read_json(record))
            except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
                log.error("skipping unreadable container record %s: %s", record, exc)
                continue
            try:
                if restore_host_files(c.spec, c.host_config):
                    log.warning("rewrote host files of container %s lost in a crash", c.short_id)
            except OSError as exc:
                log.error("could not rewrite the host files of container %s: %s", c.short_id, exc)
            self._by_id[c.id] = c

    def dir(self, cid: str) -> Path:
        return self.root / cid

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._by_id.values())

    def add(self, c: Container) -> None:
        with self._lock:
            self._check_name_free(c.name, c.id)
            self._by_id[c.id] = c
        self.save(c)

    @contextmanager
    def reserving(self, name: str) -> Iterator[str]:
        """Hold a name (or a generated one, when empty) for the length of a create.

        Without it, two parallel creates could both see a name free and both take it.
        """
        with self._lock:
            if not name:
                taken = {c.name for c in self._by_id.values()} | self._reserved
                name = names.generate(taken)
            self._check_name_free(name, "")
            if name in self._reserved:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is being created by '
                    "another request; choose another name."
                )
            self._reserved.add(name)
        try:
            yield name
        finally:
            with self._lock:
                self._reserved.discard(name)

    def save(self, c: Container, record: dict[str, Any] | None = None) -> None:
        """Write `c`'s record (or `record`, a change of it not yet applied to `c`)."""
        write_json(self.dir(c.id) / RECORD, record or c.to_record(), mode=0o600)

    def remove(self, c: Container) -> None:
        with self._lock:
            self._by_id.pop(c.id, None)
        if self.trash is None:
            shutil.rmtree(self.dir(c.id), ignore_errors=True)
        else:
            discard_tree(self.dir(c.id), self.trash)

    def rename(self, c: Container, new_name: str) -> None:
        with self._lock:
            self._check_name_free(new_name, c.id)
            c.name = new_name
        self.save(c)

    def _check_name_free(self, name: str, cid: str) -> None:
        for other in self._by_id.values():
            if other.name == name and other.id != cid:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able '
                    "to reuse that name."
                )

    def get(self, ref: str) -> Container:
        if not ref:
            raise InvalidParameter("container name or ID must not be empty")
        name = ref.lstrip("/")
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            for c in self._by_id.values():
                if c.name == name:
                    return c
            matches = [c for c in self._by_id.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")
