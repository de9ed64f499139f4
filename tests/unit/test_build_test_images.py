"""The test-image builder: valid OCI layouts, reproducible bytes, and the corner cases the
multilayer image promises (whiteout, opaque dir, hardlink, symlinks, setuid, xattr)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests import pathmodule

REPO = Path(__file__).resolve().parents[2]


builder = pathmodule.load("build_test_images", REPO / "scripts" / "build_test_images.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("images")
    builder.build_all(out)
    return out


def blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def top(layout: Path) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    return dict(entry)


def image(layout: Path, manifest_digest: str) -> tuple[dict[str, Any], list[tarfile.TarFile]]:
    manifest = json.loads(blob(layout, manifest_digest))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    tars = []
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        raw = gzip.decompress(blob(layout, desc["digest"]))
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
        tars.append(tarfile.open(fileobj=io.BytesIO(raw)))  # noqa: SIM115 - in memory
    assert len(config["history"]) == len(tars)
    return config, tars


def test_builds_are_byte_identical(built: Path, tmp_path: Path) -> None:
    builder.build_all(tmp_path)
    for name in builder.NAMES:
        assert top(built / name) == top(tmp_path / name)
        first = sorted(p.name for p in (built / name / "blobs" / "sha256").iterdir())
        second = sorted(p.name for p in (tmp_path / name / "blobs" / "sha256").iterdir())
        assert first == second


def test_busybox_has_applets_users_and_config(built: Path) -> None:
    config, [layer] = image(built / "busybox", top(built / "busybox")["digest"])
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == [builder.PATH_ENV]
    members = {m.name: m for m in layer.getmembers()}
    assert members["bin/busybox"].mode == 0o755
    for applet in ("sh", "sleep", "true", "id", "cat"):
        linked = [n for n in members if n.endswith("/" + applet)]
        assert linked and members[linked[0]].linkname == "/bin/busybox", applet
    assert members["tmp"].mode == 0o1777
    passwd = layer.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
    assert "app:x:1000:1000:" in passwd and passwd.startswith("root:x:0:0:")
    assert all(m.mtime == builder.EPOCH for m in members.values())


def test_multilayer_corner_cases(built: Path) -> None:
    config, layers = image(built / "multilayer", top(built / "multilayer")["digest"])
    cfg = config["config"]
    assert cfg["Entrypoint"] == ["/entry.sh"] and cfg["Cmd"] == ["hello"]
    assert "GREETING=ahoy" in cfg["Env"] and cfg["User"] == "1000:1000"
    assert cfg["WorkingDir"] == "/srv" and cfg["StopSignal"] == "SIGTERM"
    assert cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["Volumes"] == {"/data": {}}
    assert len(layers) == 4
    upper = {m.name: m for m in layers[2].getmembers()}
    assert "srv/.wh.remove-me.txt" in upper
    assert "opt/data/.wh..wh..opq" in upper
    assert "srv/remove-me.txt" in layers[1].getnames()
    links = {m.name: m for m in layers[3].getmembers()}
    assert links["srv/links/hard-b"].islnk()
    assert links["srv/links/hard-b"].linkname == "srv/links/hard-a"
    assert links["srv/links/rel"].linkname == "target.txt"
    assert links["srv/links/abs"].linkname == "/srv/links/target.txt"
    assert links["usr/local/bin/suid-root"].mode == 0o4755
    assert links["srv/xattr.txt"].pax_headers["SCHILY.xattr.user.dockyard"] == "yes"


def test_multiarch_index_offers_two_platforms(built: Path) -> None:
    entry = top(built / "multiarch")
    assert entry["mediaType"] == builder.MT_INDEX
    index = json.loads(blob(built / "multiarch", entry["digest"]))
    platforms = {
        (m["platform"]["architecture"], m["platform"].get("variant")): m["digest"]
        for m in index["manifests"]
    }
    assert set(platforms) == {("amd64", None), ("arm64", "v8")}
    arm_config, [arm_layer] = image(built / "multiarch", platforms[("arm64", "v8")])
    assert arm_config["architecture"] == "arm64" and arm_config["variant"] == "v8"
    assert arm_layer.extractfile("arch").read() == b"arm64\n"  # type: ignore[union-attr]
    amd_config, _ = image(built / "multiarch", platforms[("amd64", None)])
    assert amd_config["config"]["Labels"] == {"arch": "amd64"}


def test_static_elf_check_rejects_dynamic_binaries() -> None:
    assert builder.is_static_elf(builder.find_busybox().read_bytes())
    assert not builder.is_static_elf(Path(sys.executable).resolve().read_bytes())
    assert not builder.is_static_elf(b"#!/bin/sh\n")


def test_hardlink_before_target_is_refused() -> None:
    with pytest.raises(AssertionError, match="hardlink"):
        builder.build_tar([builder.hard("/a", "/b"), builder.f("/b", "x")])
