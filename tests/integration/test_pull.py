"""Pulling from a real local docker-registry into a real image store."""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import NotFound
from engine.images.auth import Unauthorized
from engine.images.blobstore import DigestMismatch
from engine.images.manifest import default_platform
from engine.images.pull import pull
from engine.images.reference import parse
from engine.images.registry import RegistryUnreachable
from tests.httpserve import BackgroundHTTPServer, QuietHandler
from tests.registry import (
    BuiltImage,
    LocalRegistry,
    OciLayout,
    auth_registry,  # noqa: F401
    layer_tar,
    push_oci_layout,
    registry,  # noqa: F401
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Any:
    try:
        from engine.images.store import ImageStore
    except ImportError:
        pytest.skip("engine/images/store.py has not landed yet")
    return ImageStore(tmp_path / "images")


class Progress:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def statuses(self, id: str | None = None) -> list[str]:
        return [m["status"] for m in self.messages if id is None or m.get("id") == id]

    def downloading(self, id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("id") == id and m["status"] == "Downloading"]


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def one_layer_image(tmp_path: Path, size: int = 300_000, arch: str = "amd64") -> BuiltImage:
    layout = OciLayout(tmp_path / f"layout-{arch}-{size}")
    img = layout.add_image(
        [layer_tar({"bin/payload": os.urandom(size), "etc/hostname": b"x\n"})], arch=arch
    )
    layout.tag(img.descriptor, "latest")
    return img


def push_one(
    tmp_path: Path, reg: LocalRegistry, name: str = "one", size: int = 300_000
) -> BuiltImage:
    img = one_layer_image(tmp_path, size)
    push_oci_layout(tmp_path / f"layout-amd64-{size}", reg, f"{name}:latest")
    return img


def write_partial(store: Any, digest: str, data: bytes) -> Path:
    """Leave `data` where an interrupted download of `digest` would have left it."""
    partial: Path = store.blobs.ingest_dir / digest.removeprefix("sha256:")
    partial.write_bytes(data)
    return partial


def test_pull_one_layer_image(tmp_path: Path, registry: LocalRegistry, store: Any) -> None:  # noqa: F811
    img = push_one(tmp_path, registry)
    ref = parse(f"{registry.host}/one")
    progress = Progress()
    image = pull(store, ref, progress=progress)

    layer = short(img.layer_digests[0])
    assert store.blobs.has(img.config_digest) and store.blobs.has(img.layer_digests[0])
    assert store.get(ref.familiar).id == image.id
    assert f"{registry.host}/one@{img.manifest_digest}" in image.repo_digests
    assert progress.messages[0] == {"status": "Pulling from one", "id": "latest"}
    steps = progress.statuses(layer)
    assert steps[0] == "Pulling fs layer"
    assert steps.index("Downloading") < steps.index("Verifying Checksum")
    assert steps.index("Verifying Checksum") < steps.index("Download complete")
    assert steps[-1] == "Pull complete"
    last = progress.downloading(layer)[-1]
    assert last["progressDetail"] == {
        "current": last["progressDetail"]["total"],
        "total": last["progressDetail"]["total"],
    }
    assert last["progress"].startswith("[" + "=" * 50 + ">]")
    assert progress.messages[-2:] == [
        {"status": f"Digest: {img.manifest_digest}"},
        {"status": f"Status: Downloaded newer image for {registry.host}/one:latest"},
    ]

    again = Progress()
    assert pull(store, ref, progress=again).id == image.id
    assert "Already exists" in again.statuses(layer)
    assert "Downloading" not in again.statuses()
    assert again.messages[-1] == {
        "status": f"Status: Image is up to date for {registry.host}/one:latest"
    }


def push_multiarch(tmp_path: Path, reg: LocalRegistry) -> tuple[BuiltImage, BuiltImage, str]:
    layout = OciLayout(tmp_path / "multi")
    amd = layout.add_image([layer_tar({"arch": b"amd64\n"})], arch="amd64")
    arm = layout.add_image([layer_tar({"arch": b"arm64\n"})], arch="arm64", variant="v8")
    index = layout.add_index([amd, arm])
    layout.tag(index, "latest")
    push_oci_layout(layout.path, reg, "multi:latest")
    return amd, arm, index["digest"]


@pytest.mark.skipif(default_platform().architecture != "amd64", reason="assumes an amd64 host")
def test_pull_index_selects_host_platform(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    amd, arm, index_digest = push_multiarch(tmp_path, registry)
    image = pull(store, parse(f"{registry.host}/multi"), progress=Progress())
    assert store.blobs.has(amd.config_digest) and store.blobs.has(amd.layer_digests[0])
    assert not store.blobs.has(arm.layer_digests[0])
    assert f"{registry.host}/multi@{index_digest}" in image.repo_digests


def test_pull_index_selects_requested_platform(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    amd, arm, index_digest = push_multiarch(tmp_path, registry)
    progress = Progress()
    image = pull(store, parse(f"{registry.host}/multi"), platform="linux/arm64", progress=progress)
    assert store.blobs.has(arm.config_digest) and store.blobs.has(arm.layer_digests[0])
    assert not store.blobs.has(amd.layer_digests[0])
    assert progress.messages[-2] == {"status": f"Digest: {index_digest}"}
    assert f"{registry.host}/multi@{index_digest}" in image.repo_digests


def test_pull_index_without_platform_lists_available(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    push_multiarch(tmp_path, registry)
    with pytest.raises(NotFound, match="available: linux/amd64, linux/arm64/v8"):
        pull(store, parse(f"{registry.host}/multi"), platform="linux/riscv64", progress=Progress())


def test_pull_resumes_partial_blob_with_range(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    img = push_one(tmp_path, registry, size=1_000_000)
    blob = img.layers[0]
    half = len(blob) // 2
    partial = write_partial(store, img.layer_digests[0], blob[:half])

    progress = Progress()
    pull(store, parse(f"{registry.host}/one"), progress=progress)

    assert store.blobs.read(img.layer_digests[0]) == blob
    assert not partial.exists()
    first = progress.downloading(short(img.layer_digests[0]))[0]["progressDetail"]["current"]
    assert first > half
    served = [
        line
        for line in registry.log().splitlines()
        if f"blobs/{img.layer_digests[0]}" in line and "http.response.status=206" in line
    ]
    assert served and f"http.response.written={len(blob) - half}" in served[0]


def test_corrupted_blob_is_rejected_and_nothing_registered(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    img = push_one(tmp_path, registry)
    data_path = registry.blob_data_path(img.layer_digests[0])
    good = data_path.read_bytes()
    data_path.write_bytes(bytes(b ^ 0xFF for b in good[:64]) + good[64:])

    ref = parse(f"{registry.host}/one")
    with pytest.raises(DigestMismatch):
        pull(store, ref, progress=Progress())
    assert not store.blobs.has(img.layer_digests[0])
    with pytest.raises(NotFound):
        store.get(ref.familiar)
    assert list(store.blobs.ingest_dir.iterdir()) == []


def test_unknown_tag_and_repository_are_not_found(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    push_one(tmp_path, registry)
    with pytest.raises(NotFound) as err:
        pull(store, parse(f"{registry.host}/one:nope"), progress=Progress())
    assert err.value.message == (
        f"manifest for {registry.host}/one:nope not found: manifest unknown: manifest unknown"
    )
    with pytest.raises(NotFound, match="not found"):
        pull(store, parse(f"{registry.host}/nosuchrepo"), progress=Progress())


def test_unreachable_registry(store: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryUnreachable, match=f"cannot reach registry 127.0.0.1:{port}"):
        pull(store, parse(f"127.0.0.1:{port}/x"), progress=Progress())


def test_basic_auth_right_and_wrong_password(
    tmp_path: Path,
    auth_registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    img = push_one(tmp_path, auth_registry)
    ref = parse(f"{auth_registry.host}/one")
    with pytest.raises(Unauthorized, match="unauthorized: "):
        pull(store, ref, auth={"username": "tester", "password": "wrong"}, progress=Progress())
    with pytest.raises(Unauthorized):
        pull(store, ref, progress=Progress())
    with pytest.raises(NotFound):
        store.get(ref.familiar)

    creds = {"username": "tester", "password": "s3cret-pass", "serveraddress": auth_registry.host}
    pull(store, ref, auth=creds, progress=Progress())
    assert store.blobs.has(img.layer_digests[0])


def test_docker_config_credentials_are_used(
    tmp_path: Path,
    auth_registry: LocalRegistry,  # noqa: F811
    store: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    import json

    img = push_one(tmp_path, auth_registry)
    config_dir = tmp_path / "dockercfg"
    config_dir.mkdir()
    token = base64.b64encode(b"tester:s3cret-pass").decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {f"http://{auth_registry.host}": {"auth": token}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    pull(store, parse(f"{auth_registry.host}/one"), progress=Progress())
    assert store.blobs.has(img.layer_digests[0])


# ---- a front server: redirects, and a server that ignores Range ----------------------


class Front(BackgroundHTTPServer):
    """Sits before the registry: redirects to it, or proxies blobs ignoring Range."""

    def __init__(self, upstream: str, mode: str) -> None:
        self.requests: list[tuple[str, str]] = []
        front = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                front.requests.append((self.path, self.headers.get("Range", "")))
                if mode == "redirect" or "/blobs/" not in self.path:
                    # "localhost" differs from our own netloc: auth must not follow.
                    self.send_response(307)
                    self.send_header("Location", f"http://{upstream}{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with urllib.request.urlopen(f"http://{upstream}{self.path}") as resp:
                    body = resp.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.serve(Handler)


def front_for(reg: LocalRegistry, mode: str) -> Iterator[Front]:
    upstream = reg.host.replace("127.0.0.1", "localhost") if mode == "redirect" else reg.host
    with Front(upstream, mode) as front:
        yield front


@pytest.fixture
def redirecting_front(registry: LocalRegistry) -> Iterator[Front]:  # noqa: F811
    yield from front_for(registry, "redirect")


@pytest.fixture
def range_ignoring_front(registry: LocalRegistry) -> Iterator[Front]:  # noqa: F811
    yield from front_for(registry, "ignore-range")


def test_pull_follows_redirects(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    redirecting_front: Front,
    store: Any,
) -> None:
    img = push_one(tmp_path, registry)
    pull(store, parse(f"{redirecting_front.host}/one"), progress=Progress())
    assert store.blobs.has(img.layer_digests[0])
    assert any("/blobs/" in path for path, _ in redirecting_front.requests)


def test_server_ignoring_range_restarts_download(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    range_ignoring_front: Front,
    store: Any,
) -> None:
    img = push_one(tmp_path, registry)
    blob = img.layers[0]
    write_partial(store, img.layer_digests[0], blob[: len(blob) // 3])
    pull(store, parse(f"{range_ignoring_front.host}/one"), progress=Progress())
    assert store.blobs.read(img.layer_digests[0]) == blob
    ranges = [r for path, r in range_ignoring_front.requests if img.layer_digests[0] in path]
    assert ranges == [f"bytes={len(blob) // 3}-"]


@pytest.mark.parametrize(
    "bad_partial",
    [lambda blob: b"\0" * 1000, lambda blob: blob + b"trailing junk"],
    ids=["corrupt", "longer-than-blob"],
)
def test_bad_partial_is_discarded_and_refetched(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
    bad_partial: Callable[[bytes], bytes],
) -> None:
    img = push_one(tmp_path, registry)
    write_partial(store, img.layer_digests[0], bad_partial(img.layers[0]))
    pull(store, parse(f"{registry.host}/one"), progress=Progress())
    assert store.blobs.read(img.layer_digests[0]) == img.layers[0]


def test_concurrent_pulls_of_one_image_share_blobs(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    store: Any,
) -> None:
    img = push_one(tmp_path, registry, size=2_000_000)
    ref = parse(f"{registry.host}/one")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pull(store, ref, progress=Progress())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.blobs.read(img.layer_digests[0]) == img.layers[0]


# ---- a bearer-token front, as Docker Hub does it ------------------------------------


class BearerFront(BackgroundHTTPServer):
    """Demands `Bearer` tokens from its own /token realm, then proxies to the registry."""

    PASSED_HEADERS = ("Content-Type", "Docker-Content-Digest", "Content-Range", "Content-Length")

    def __init__(self, upstream: str) -> None:
        self.token_requests: list[str] = []
        front = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    front.token_requests.append(self.path)
                    body = b'{"access_token": "good-token", "expires_in": 300}'
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.headers.get("Authorization") != "Bearer good-token":
                    self.send_response(401)
                    scope = "repository:" + self.path.split("/")[2] + ":pull"
                    self.send_header(
                        "WWW-Authenticate",
                        f'Bearer realm="http://{front.host}/token",service="front",scope="{scope}"',
                    )
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k in ("Accept", "Range")}
                req = urllib.request.Request(f"http://{upstream}{self.path}", headers=headers)
                with urllib.request.urlopen(req) as resp:
                    body = resp.read()
                    self.send_response(resp.status)
                    for name in front.PASSED_HEADERS:
                        if resp.headers.get(name):
                            self.send_header(name, resp.headers[name])
                    self.end_headers()
                    self.wfile.write(body)

        self.serve(Handler)


@pytest.fixture
def bearer_front(registry: LocalRegistry) -> Iterator[BearerFront]:  # noqa: F811
    with BearerFront(registry.host) as front:
        yield front


def test_pull_through_bearer_token_realm(
    tmp_path: Path,
    registry: LocalRegistry,  # noqa: F811
    bearer_front: BearerFront,
    store: Any,
) -> None:
    img = push_one(tmp_path, registry)
    pull(store, parse(f"{bearer_front.host}/one"), progress=Progress())
    assert store.blobs.has(img.layer_digests[0]) and store.blobs.has(img.config_digest)
    # One token for the repository scope, cached across manifest, config and layer fetches.
    assert len(bearer_front.token_requests) == 1
    assert "scope=repository%3Aone%3Apull" in bearer_front.token_requests[0]
    assert "service=front" in bearer_front.token_requests[0]
