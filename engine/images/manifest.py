"""Distribution manifests and indexes: media types, validated parsing, platform choice.

Registries answer a tag with either one image manifest or an index (a
"manifest list") of per-platform manifests. Everything the puller needs from
that JSON is parsed here, once, into small frozen records, so a malformed or
unsupported document fails with one clear InvalidParameter instead of a
KeyError deep inside a download.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidParameter, NotFound

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})
# Layers we can unpack with the standard library (gzip or plain tar).
LAYER_TYPES = frozenset({DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR})

# What we send as Accept: both formats, manifests and indexes.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

# Host machine names -> Go (GOARCH, variant) names used in image platforms.
_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armhf": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armel": ("arm", "v6"),
    "arm": ("arm", "v7"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "386": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}
_KNOWN_OS = frozenset({"linux", "windows", "darwin", "freebsd"})


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    @property
    def short_id(self) -> str:
        """The 12-hex id `docker pull` prints for a layer."""
        return self.digest.partition(":")[2][:12]


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    """Canonical (arch, variant): arm64's variant defaults to v8, as containerd does."""
    arch, variant = arch.lower(), variant.lower()
    canonical, default_variant = _ARCH_ALIASES.get(arch, (arch, ""))
    if canonical == "arm64" and variant in ("", "8"):
        variant = "v8"
    elif canonical == "arm" and variant in ("", "7", "6", "5"):
        variant = f"v{variant}" if variant else default_variant or "v7"
    return canonical, variant


def normalize(p: Platform) -> Platform:
    arch, variant = _normalize_arch(p.architecture, p.variant)
    return Platform(p.os.lower(), arch, variant)


def default_platform() -> Platform:
    """The platform this engine runs images for: Linux on the host CPU."""
    arch, variant = _normalize_arch(host_machine() or "amd64", "")
    return Platform("linux", arch, variant)


def host_machine() -> str:
    """The kernel's name for the CPU (x86_64, aarch64): platform.machine() without
    importing platform, a large module the engine otherwise never needs."""
    return os.uname().machine


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8`, `linux/amd64`, or a bare `arm64` / `linux` (the rest from the host)."""
    parts = text.strip().lower().split("/")
    if not text.strip() or len(parts) > 3 or any(not p for p in parts):
        raise InvalidParameter(
            f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64/v8"
        )
    if len(parts) == 1:
        host = default_platform()
        if parts[0] in _KNOWN_OS:
            return Platform(parts[0], host.architecture, host.variant)
        parts = ["linux", parts[0]]
    os_name, arch = parts[0], parts[1]
    if os_name not in _KNOWN_OS:
        raise InvalidParameter(f"invalid platform {text!r}: unknown operating system {os_name!r}")
    return normalize(Platform(os_name, arch, parts[2] if len(parts) == 3 else ""))


def _field(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidParameter(f"invalid manifest: {where}.{key} missing or not a {kind.__name__}")
    return value


def _descriptor(doc: Any, where: str) -> Descriptor:
    if not isinstance(doc, dict):
        raise InvalidParameter(f"invalid manifest: {where} is not an object")
    digest = _field(doc, "digest", str, where)
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise InvalidParameter(
            f"invalid manifest: {where}.digest {digest!r} is not a sha256 digest"
        )
    size = _field(doc, "size", int, where)
    if size < 0:
        raise InvalidParameter(f"invalid manifest: {where}.size is negative")
    plat = None
    raw = doc.get("platform")
    if isinstance(raw, dict):
        plat = Platform(
            str(raw.get("os", "")), str(raw.get("architecture", "")), str(raw.get("variant", ""))
        )
    return Descriptor(str(doc.get("mediaType", "")), digest, size, plat)


def _detect_type(doc: dict[str, Any], header_type: str) -> str:
    """The document's own mediaType wins; OCI may omit it, so fall back to its shape."""
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if header_type in MANIFEST_TYPES | INDEX_TYPES:
        return header_type
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc or "layers" in doc:
        return OCI_MANIFEST
    return header_type


def parse_manifest(data: bytes, media_type: str = "") -> Manifest | Index:
    """Parse a manifest or index; InvalidParameter names what is wrong with it."""
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise InvalidParameter("unsupported manifest: Docker schema 1 images are not supported")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid manifest: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid manifest: top level is not a JSON object")
    version = doc.get("schemaVersion")
    if version == 1:
        raise InvalidParameter("unsupported manifest: Docker schema 1 images are not supported")
    if version != 2:
        raise InvalidParameter(f"invalid manifest: schemaVersion is {version!r}, expected 2")
    kind = _detect_type(doc, media_type)
    if kind in INDEX_TYPES:
        entries = _field(doc, "manifests", list, "index")
        return Index(kind, tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)))
    if kind in MANIFEST_TYPES:
        config = _descriptor(doc.get("config"), "config")
        layers = _field(doc, "layers", list, "manifest")
        parsed = tuple(_descriptor(e, f"layers[{i}]") for i, e in enumerate(layers))
        for i, layer in enumerate(parsed):
            if layer.media_type not in LAYER_TYPES:
                raise InvalidParameter(
                    f"unsupported manifest: layers[{i}] has media type {layer.media_type!r}; "
                    "only gzip and uncompressed tar layers are supported"
                )
        return Manifest(kind, config, parsed)
    raise InvalidParameter(f"unsupported manifest media type {kind!r}")


def _matches(candidate: Platform, wanted: Platform) -> bool:
    c, w = normalize(candidate), normalize(wanted)
    if c.os != w.os or c.architecture != w.architecture:
        return False
    return not w.variant or c.variant == w.variant


def available_platforms(index: Index) -> list[str]:
    """Real platforms of an index, skipping attestation entries (`unknown/unknown`)."""
    seen: list[str] = []
    for d in index.manifests:
        if d.platform and d.platform.os != "unknown":
            name = str(normalize(d.platform))
            if name not in seen:
                seen.append(name)
    return seen


def select_manifest(index: Index, platform: Platform) -> Descriptor:
    """First entry matching `platform`; NotFound lists what the index does offer."""
    for d in index.manifests:
        if d.platform and d.media_type in MANIFEST_TYPES | {""} and _matches(d.platform, platform):
            return d
    available = ", ".join(available_platforms(index)) or "none"
    raise NotFound(
        f"no matching manifest for {platform} in the manifest list entries; available: {available}"
    )
