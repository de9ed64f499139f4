"""Manifest parsing, validation and platform selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import InvalidParameter, NotFound
from engine.images import manifest as m
from engine.images.manifest import Index, Manifest, Platform

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64


def desc(digest: str, media_type: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image_manifest(
    media_type: str = m.DOCKER_MANIFEST, layer_type: str = m.DOCKER_LAYER_GZIP
) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": desc(D1, m.DOCKER_CONFIG),
            "layers": [desc(D2, layer_type, 100), desc(D3, layer_type, 200)],
        }
    ).encode()


def index(*platforms: dict[str, str], media_type: str = m.OCI_INDEX) -> Index:
    entries = [
        desc(f"sha256:{i:064x}", m.OCI_MANIFEST, platform=p) for i, p in enumerate(platforms, 1)
    ]
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    parsed = m.parse_manifest(json.dumps(doc).encode())
    assert isinstance(parsed, Index)
    return parsed


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
ATTEST = {"os": "unknown", "architecture": "unknown"}


# ---- parsing ------------------------------------------------------------------


def test_parses_docker_schema2_manifest() -> None:
    parsed = m.parse_manifest(image_manifest(), m.DOCKER_MANIFEST)
    assert isinstance(parsed, Manifest)
    assert parsed.media_type == m.DOCKER_MANIFEST
    assert parsed.config.digest == D1
    assert [(d.digest, d.size) for d in parsed.layers] == [(D2, 100), (D3, 200)]
    assert parsed.layers[0].short_id == "2" * 12


def test_parses_oci_manifest_without_media_type_field() -> None:
    doc = json.loads(image_manifest(m.OCI_MANIFEST, m.OCI_LAYER_TAR))
    del doc["mediaType"]
    parsed = m.parse_manifest(json.dumps(doc).encode(), "application/octet-stream")
    assert isinstance(parsed, Manifest)
    assert parsed.media_type == m.OCI_MANIFEST


def test_parses_docker_manifest_list() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": m.DOCKER_MANIFEST_LIST,
        "manifests": [desc(D1, m.DOCKER_MANIFEST, platform=AMD64)],
    }
    parsed = m.parse_manifest(json.dumps(doc).encode(), m.DOCKER_MANIFEST_LIST)
    assert isinstance(parsed, Index)
    assert parsed.manifests[0].platform == Platform("linux", "amd64")


def test_oci_index_detected_by_shape() -> None:
    doc = {"schemaVersion": 2, "manifests": [desc(D1, m.OCI_MANIFEST, platform=AMD64)]}
    assert isinstance(m.parse_manifest(json.dumps(doc).encode()), Index)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schemaVersion": 3, "manifests": []}', "schemaVersion is 3"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "schema 1"),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "unsupported manifest media type"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "layers": []}).encode(),
            "config is not an object",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": desc(D1, m.OCI_CONFIG)}
            ).encode(),
            "manifest.layers missing",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": m.OCI_MANIFEST,
                    "config": desc("md5:abc", m.OCI_CONFIG),
                    "layers": [],
                }
            ).encode(),
            "not a sha256 digest",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": m.OCI_MANIFEST,
                    "config": {"digest": D1, "size": "ten"},
                    "layers": [],
                }
            ).encode(),
            "config.size missing or not a int",
        ),
        (image_manifest(m.OCI_MANIFEST, m.OCI_LAYER_ZSTD), "only gzip and uncompressed tar"),
    ],
)
def test_bad_manifests_name_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(InvalidParameter, match=needle):
        m.parse_manifest(data)


def test_schema1_media_type_rejected_before_parsing() -> None:
    with pytest.raises(InvalidParameter, match="schema 1"):
        m.parse_manifest(b"whatever", m.DOCKER_SCHEMA1_SIGNED)


def test_accept_header_lists_all_four_types() -> None:
    for t in (m.OCI_INDEX, m.OCI_MANIFEST, m.DOCKER_MANIFEST, m.DOCKER_MANIFEST_LIST):
        assert t in m.ACCEPT


# ---- platforms ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm64", Platform("linux", "arm64", "v8")),
        ("linux/aarch64", Platform("linux", "arm64", "v8")),
        ("linux/amd64", Platform("linux", "amd64")),
        ("Linux/X86_64", Platform("linux", "amd64")),
        ("linux/arm/v6", Platform("linux", "arm", "v6")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/riscv64", Platform("linux", "riscv64")),
        ("amd64", Platform("linux", "amd64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert m.parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux//v8", "a/b/c/d", "plan9/amd64", " / "])
def test_parse_platform_rejects(text: str) -> None:
    with pytest.raises(InvalidParameter, match="platform"):
        m.parse_platform(text)


def test_platform_str() -> None:
    assert str(Platform("linux", "arm64", "v8")) == "linux/arm64/v8"
    assert str(Platform("linux", "amd64")) == "linux/amd64"


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", Platform("linux", "amd64")),
        ("aarch64", Platform("linux", "arm64", "v8")),
        ("armv7l", Platform("linux", "arm", "v7")),
    ],
)
def test_default_platform_maps_host_names(
    monkeypatch: pytest.MonkeyPatch, machine: str, expected: Platform
) -> None:
    monkeypatch.setattr(m, "host_machine", lambda: machine)
    assert m.default_platform() == expected


def test_select_amd64_and_arm64() -> None:
    idx = index(AMD64, ARM64, ATTEST)
    assert m.select_manifest(idx, Platform("linux", "amd64")).digest == f"sha256:{1:064x}"
    assert m.select_manifest(idx, m.parse_platform("linux/arm64")).digest == f"sha256:{2:064x}"


def test_arm64_without_variant_in_index_matches_v8() -> None:
    idx = index(AMD64, {"os": "linux", "architecture": "arm64"})
    chosen = m.select_manifest(idx, m.parse_platform("linux/arm64/v8"))
    assert chosen.digest == f"sha256:{2:064x}"


def test_variant_must_match_when_asked() -> None:
    idx = index({"os": "linux", "architecture": "arm", "variant": "v6"})
    with pytest.raises(NotFound):
        m.select_manifest(idx, m.parse_platform("linux/arm/v7"))


def test_no_match_lists_available_platforms() -> None:
    idx = index(AMD64, ARM64, ATTEST)
    with pytest.raises(NotFound) as err:
        m.select_manifest(idx, m.parse_platform("linux/riscv64"))
    assert err.value.message == (
        "no matching manifest for linux/riscv64 in the manifest list entries; "
        "available: linux/amd64, linux/arm64/v8"
    )
