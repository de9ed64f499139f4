"""Unpacked layers really work as overlayfs lowerdirs: whiteouts hide, opaque dirs reset."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.reference import parse
from engine.images.store import ImageStore
from tests.unit.test_images_tarbuild import TarBuilder, busybox_layer, put_image

pytestmark = pytest.mark.integration


@pytest.fixture
def merged(tmp_path: Path) -> Iterator[Path]:
    store = ImageStore(tmp_path / "images")
    base = busybox_layer()
    lower = TarBuilder().dir("etc").file("etc/gone", b"1").dir("cache").file("cache/old", b"2")
    upper = TarBuilder().file("etc/.wh.gone").dir("cache").file("cache/.wh..wh..opq")
    upper.file("cache/new", b"3")
    config, digests = put_image(store.blobs, [base, lower.bytes(), upper.bytes()])
    image = store.register(config, digests, ref=parse("ov"))
    target = tmp_path / "merged"
    target.mkdir()
    opts = "lowerdir=" + ":".join(store.layer_dirs(image))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_overlay_sees_whiteouts_and_opaque_dirs(merged: Path) -> None:
    assert not (merged / "etc" / "gone").exists()
    assert (merged / "etc" / "passwd").exists()
    assert sorted(p.name for p in (merged / "cache").iterdir()) == ["new"]
    assert (merged / "bin" / "busybox").stat().st_size > 0
