"""Rows of the images page: one per tag (an image with three tags shows three times, as
`docker images` does), and one `<none>` row for an untagged image.

Removing a tagged row untags that tag (the image goes with its last tag); removing a
`<none>` row removes the image by id. `ref` is what DELETE /images/{ref} is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.gui.models.container_row import human_bytes, human_duration
from app.gui.models.table import Column

NONE = "<none>"


@dataclass(frozen=True)
class ImageRow:
    id: str  # sha256:...
    repository: str
    tag: str
    size: int
    created: int  # seconds since the epoch

    @property
    def key(self) -> str:
        return f"{self.id}|{self.repository}:{self.tag}"

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def name(self) -> str:
        return self.short_id if self.repository == NONE else f"{self.repository}:{self.tag}"

    @property
    def ref(self) -> str:
        """What DELETE /images/{ref} takes for this row: its tag, or its id if untagged."""
        return self.id if self.repository == NONE else f"{self.repository}:{self.tag}"


def split_repo_tag(repo_tag: str) -> tuple[str, str]:
    """("registry:5000/app", "v1") from "registry:5000/app:v1": a port is not a tag."""
    slash, colon = repo_tag.rfind("/"), repo_tag.rfind(":")
    if colon > slash:
        return repo_tag[:colon], repo_tag[colon + 1 :]
    return repo_tag, NONE


def image_rows(docs: list[dict[str, Any]]) -> list[ImageRow]:
    """GET /images/json → one row per repo:tag (untagged images: one <none> row)."""
    rows = []
    for doc in docs:
        tags = [t for t in doc.get("RepoTags") or [] if t and t != "<none>:<none>"]
        ident = str(doc.get("Id", ""))
        size, created = int(doc.get("Size") or 0), int(doc.get("Created") or 0)
        if not tags:
            rows.append(ImageRow(ident, NONE, NONE, size, created))
        for tag in tags:
            repository, name = split_repo_tag(tag)
            rows.append(ImageRow(ident, repository, name, size, created))
    return rows


def created_text(created: int, now: float | None = None) -> str:
    if created <= 0:
        return ""
    return human_duration(max(0.0, (now or time.time()) - created)) + " ago"


COLUMNS = [
    Column("Repository", lambda r: r.repository),
    Column("Tag", lambda r: r.tag),
    Column("Image ID", lambda r: r.short_id, tip=lambda r: r.id),
    Column("Size", lambda r: human_bytes(r.size), sort=lambda r: r.size, numeric=True),
    Column("Created", lambda r: created_text(r.created), sort=lambda r: r.created),
]
