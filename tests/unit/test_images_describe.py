"""Docker-shaped image views, without a store."""

from __future__ import annotations

from typing import Any

from engine.images import describe
from engine.images.store import Image


def image(**kw: Any) -> Image:
    base: dict[str, Any] = {
        "id": "sha256:" + "a" * 64,
        "config": {"created": "2024-01-02T03:04:05Z", "os": "linux", "rootfs": {"type": "layers"}},
        "repo_tags": [],
        "repo_digests": [],
        "size": 10,
        "created": "2024-01-02T03:04:05Z",
        "diff_ids": ["sha256:" + "1" * 64],
        "layer_sizes": [10],
    }
    base.update(kw)
    return Image(**base)


def test_created_unix_accepts_nanoseconds_offsets_and_junk() -> None:
    assert describe.created_unix("2024-01-02T03:04:05Z") == 1704164645
    assert describe.created_unix("2024-01-02T03:04:05.123456789Z") == 1704164645
    assert describe.created_unix("2024-01-02T05:04:05.5+02:00") == 1704164645
    assert describe.created_unix("") == 0
    assert describe.created_unix("yesterday") == 0


def test_untagged_summary_and_missing_labels() -> None:
    row = describe.summary(image())
    assert row["RepoTags"] == [] and row["Labels"] == {} and row["ParentId"] == ""


def test_inspect_single_layer_and_defaults() -> None:
    info = describe.inspect(image(), ["/x/layers/1/diff"])
    assert info["GraphDriver"]["Data"] == {
        "MergedDir": "/x/layers/1/merged",
        "UpperDir": "/x/layers/1/diff",
        "WorkDir": "/x/layers/1/work",
    }
    assert info["Config"]["Labels"] is None and info["Config"]["WorkingDir"] == ""
    assert info["Metadata"]["LastTagTime"] == describe.ZERO_TIME
    assert "Variant" not in info


def test_history_without_config_history_has_one_row_per_layer() -> None:
    rows = describe.history(
        image(diff_ids=["sha256:" + "1" * 64, "sha256:" + "2" * 64], layer_sizes=[3, 4])
    )
    assert [(r["Id"][:7], r["Size"]) for r in rows] == [("sha256:", 4), ("<missin", 3)]
    assert rows[0]["Tags"] is None


def test_history_skips_sizes_for_empty_layers() -> None:
    config = {
        "history": [
            {"created_by": "ADD rootfs"},
            {"created_by": "ENV x=1", "empty_layer": True},
            {"created_by": "RUN build"},
        ]
    }
    rows = describe.history(image(config=config, layer_sizes=[100, 7], repo_tags=["a:1"]))
    assert [(r["CreatedBy"], r["Size"]) for r in rows] == [
        ("RUN build", 7),
        ("ENV x=1", 0),
        ("ADD rootfs", 100),
    ]
    assert rows[0]["Tags"] == ["a:1"]
