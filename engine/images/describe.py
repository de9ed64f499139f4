"""Docker-shaped views of an image: `/images/json` rows, inspect and history.

Pure functions of an Image (and the layer paths the store gives), so the
exact JSON shapes the docker CLI and SDK read are unit-tested without a store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.images.store import Image

ZERO_TIME = "0001-01-01T00:00:00Z"
# Keys docker-py and the CLI read from an image's Config; present even when unset.
_CONFIG_KEYS: dict[str, Any] = {
    "User": "",
    "ExposedPorts": None,
    "Env": None,
    "Cmd": None,
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
_FRACTION = re.compile(r"\.(\d+)")


def created_unix(created: str) -> int:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds allowed); 0 if unparsable."""
    if not created:
        return 0
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), created, count=1)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def image_config_section(config: dict[str, Any]) -> dict[str, Any]:
    section = config.get("config")
    out = dict(_CONFIG_KEYS)
    if isinstance(section, dict):
        out.update(section)
    return out


def labels(config: dict[str, Any]) -> dict[str, str]:
    found = image_config_section(config).get("Labels")
    return dict(found) if isinstance(found, dict) else {}


def summary(image: Image) -> dict[str, Any]:
    """One row of GET /images/json."""
    return {
        "Id": image.id,
        "ParentId": "",
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Created": created_unix(image.created),
        "Size": image.size,
        "SharedSize": -1,
        "Labels": labels(image.config),
        "Containers": -1,
    }


def inspect(image: Image, layer_dirs: list[str]) -> dict[str, Any]:
    """GET /images/{name}/json. `layer_dirs` is top-most first, as for overlay lowerdir."""
    config = image.config
    found = config.get("rootfs")
    rootfs: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": str(config.get("comment", "")),
        "Created": image.created or ZERO_TIME,
        "DockerVersion": str(config.get("docker_version", "")),
        "Author": str(config.get("author", "")),
        "Config": image_config_section(config),
        "Architecture": str(config.get("architecture", "")),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": str(config.get("os", "")),
        "Size": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": _graph_data(layer_dirs)},
        "RootFS": {"Type": str(rootfs.get("type", "layers")), "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
    }


def _graph_data(layer_dirs: list[str]) -> dict[str, str] | None:
    if not layer_dirs:
        return None
    top = layer_dirs[0]
    base = top.rsplit("/", 1)[0]
    data = {"MergedDir": f"{base}/merged", "UpperDir": top, "WorkDir": f"{base}/work"}
    if len(layer_dirs) > 1:
        data["LowerDir"] = ":".join(layer_dirs[1:])
    return data


def history(image: Image) -> list[dict[str, Any]]:
    """GET /images/{name}/history: newest first; only the top entry carries the id and tags."""
    entries = image.config.get("history")
    if not isinstance(entries, list) or not entries:
        entries = [{"created": image.created} for _ in image.diff_ids] or [{}]
    sizes = iter(image.layer_sizes)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        item = entry if isinstance(entry, dict) else {}
        empty = bool(item.get("empty_layer"))
        rows.append(
            {
                "Id": "<missing>",
                "Created": created_unix(str(item.get("created", ""))),
                "CreatedBy": str(item.get("created_by", "")),
                "Tags": None,
                "Size": 0 if empty else next(sizes, 0),
                "Comment": str(item.get("comment", "")),
            }
        )
    rows.reverse()
    rows[0]["Id"] = image.id
    rows[0]["Tags"] = list(image.repo_tags) or None
    return rows
