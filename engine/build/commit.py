"""A build step's result as an image in the store: config, history, layer.

Every step commits, as Docker's classic builder does: the step's image is
the next step's parent and the key of the step cache. A step that changes
only metadata adds a history entry marked `empty_layer` and no layer; a
step that changes files adds its layer tar as an uncompressed blob whose
digest is also its diff_id, so `docker save` writes a valid image for any
other engine.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.images.manifest import default_platform
from engine.images.store import Image, ImageStore
from engine.timefmt import now_rfc3339

_CHUNK = 1 << 20
# The created_by prefix of a step that ran no command (Docker's "no operation" marker).
NOP = "/bin/sh -c #(nop) "


@dataclass
class StageImage:
    """The image a stage is building: its full config JSON and its layer blobs.

    `image_id` is "" only for `FROM scratch` before the first step.
    """

    config: dict[str, Any]
    layer_blobs: list[str] = field(default_factory=list)
    image_id: str = ""

    @property
    def run_config(self) -> dict[str, Any]:
        """The `config` section (Env, Cmd, WorkingDir, ...), created on first use."""
        section = self.config.get("config")
        if not isinstance(section, dict):
            section = self.config["config"] = {}
        return section

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])


def scratch() -> StageImage:
    """`FROM scratch`: no layers, the engine's platform, an empty config."""
    plat = default_platform()
    config: dict[str, Any] = {
        "architecture": plat.architecture,
        "os": plat.os,
        "config": {"Env": [], "Cmd": None},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if plat.variant:
        config["variant"] = plat.variant
    return StageImage(config)


def from_image(image: Image) -> StageImage:
    config = copy.deepcopy(image.config)
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config.setdefault("history", [])
    return StageImage(config, list(image.layer_blobs), image.id)


def _store_layer(store: ImageStore, tar: Path) -> str:
    """Put the layer tar into the blob store; its sha256 is blob digest and diff_id."""
    hasher = hashlib.sha256()
    with open(tar, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    if store.blobs.has(digest):
        return digest
    with store.blobs.ingest(digest) as w, open(tar, "rb") as f:
        if w.offset:
            f.seek(w.offset)
        while chunk := f.read(_CHUNK):
            w.write(chunk)
    return digest


def commit(
    store: ImageStore, state: StageImage, created_by: str, layer: Path | None = None
) -> StageImage:
    """Register the stage's current config (plus `layer`, if any) as a new image.

    Returns the new state; `state` itself is left as it was, so a failure
    leaves the build at its previous step.
    """
    config = copy.deepcopy(state.config)
    blobs = list(state.layer_blobs)
    created = now_rfc3339()
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if layer is None:
        entry["empty_layer"] = True
    else:
        digest = _store_layer(store, layer)
        blobs.append(digest)
        config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        config["rootfs"].setdefault("diff_ids", []).append(digest)
        config["rootfs"]["type"] = "layers"
    config["created"] = created
    config["history"] = [*list(config.get("history") or []), entry]
    if state.image_id:
        config["parent"] = state.image_id
    else:
        config.pop("parent", None)
    config.pop("container_config", None)
    config.pop("container", None)
    blob = store.blobs.put(json.dumps(config, separators=(",", ":")).encode())
    image = store.register(blob, blobs)
    return StageImage(image.config, list(image.layer_blobs), image.id)
