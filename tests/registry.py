"""A real local registry for tests, and small OCI layouts to push into it.

`docker-registry` (distribution 2.8) runs on 127.0.0.1 with filesystem storage
in a temp dir, optionally behind htpasswd basic auth; skopeo pushes OCI
layouts into it. Import the fixtures from conftest:

    from tests.registry import auth_registry, registry  # noqa: F401
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
REF_NAME = "org.opencontainers.image.ref.name"


# ---- the registry --------------------------------------------------------------


@dataclass
class LocalRegistry:
    host: str  # "127.0.0.1:PORT"
    root: Path  # filesystem storage root
    log_path: Path
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob's bytes."""
        hexpart = digest.removeprefix("sha256:")
        return self.root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ref(self, name_tag: str) -> str:
        return f"{self.host}/{name_tag}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash for htpasswd, from `htpasswd` or the crypt module; None if neither."""
    tool = shutil.which("htpasswd")
    if tool:
        out = subprocess.run(
            [tool, "-nbB", "u", password], check=True, capture_output=True, text=True
        ).stdout
        return out.strip().split(":", 1)[1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    except (ImportError, AttributeError, OSError):
        return None
    return hashed if hashed and hashed.startswith("$2") else None


def _config(root: Path, port: int, htpasswd: Path | None) -> str:
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n" if htpasswd else ""
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n" + auth
    )


def start_registry(workdir: Path, *, auth: tuple[str, str] | None = None) -> LocalRegistry:
    """Start docker-registry in `workdir`; the caller must stop_registry() it."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed (apt install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    htpasswd = None
    if auth:
        hashed = bcrypt_hash(auth[1])
        if hashed is None:
            pytest.skip("no bcrypt available: install apache2-utils for htpasswd")
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(f"{auth[0]}:{hashed}\n")
    port = _free_port()
    config = workdir / "config.yml"
    config.write_text(_config(root, port, htpasswd))
    log_path = workdir / "registry.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    reg = LocalRegistry(f"127.0.0.1:{port}", root, log_path, proc, *(auth or (None, None)))
    try:
        _wait_ready(reg)
    except BaseException:
        stop_registry(reg)
        raise
    return reg


def _wait_ready(reg: LocalRegistry, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited early:\n{reg.log()}")
        try:
            with urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=1):
                return
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer within {timeout}s:\n{reg.log()}")


def stop_registry(reg: LocalRegistry) -> None:
    """Stop the registry we started, by its PID."""
    if reg.process.poll() is None:
        reg.process.terminate()
        try:
            reg.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reg.process.kill()
            reg.process.wait(timeout=5)


@contextmanager
def run_registry(workdir: Path, *, auth: tuple[str, str] | None = None) -> Iterator[LocalRegistry]:
    reg = start_registry(workdir, auth=auth)
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An empty registry without auth on 127.0.0.1:<free port>."""
    with run_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with htpasswd basic auth; user `tester`, password `s3cret-pass`."""
    with run_registry(tmp_path_factory.mktemp("registry"), auth=("tester", "s3cret-pass")) as reg:
        yield reg


def push_oci_layout(
    layout_dir: Path,
    registry: LocalRegistry,
    name_tag: str,
    *,
    src_tag: str | None = None,
) -> None:
    """skopeo-copy an OCI layout (all platforms) to `registry`/`name_tag`.

    The source is `oci:DIR:src_tag`; without src_tag, the tag of `name_tag`
    when the layout has it, else the layout's only image.
    """
    source = f"oci:{layout_dir}"
    tag = src_tag or name_tag.rpartition(":")[2]
    index = json.loads((layout_dir / "index.json").read_text())
    names = {m.get("annotations", {}).get(REF_NAME) for m in index.get("manifests", [])}
    if src_tag or tag in names or len(index.get("manifests", [])) != 1:
        source += f":{tag}"
    argv = [SKOPEO, "--insecure-policy", "copy", "--all", "--dest-tls-verify=false"]
    if registry.username:
        argv += ["--dest-creds", f"{registry.username}:{registry.password}"]
    argv += [source, f"docker://{registry.host}/{name_tag}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {done.stderr}\n{registry.log()[-2000:]}")


# ---- OCI layouts built in Python ------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes], *, compress: bool = True) -> tuple[bytes, str]:
    """A layer blob holding `files` (path -> bytes; dirs implied); returns (blob, diff_id)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(files[path]), 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    raw = buf.getvalue()
    blob = gzip.compress(raw, mtime=0) if compress else raw
    return blob, sha256(raw)


@dataclass
class BuiltImage:
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]
    layers: list[bytes] = field(repr=False)
    descriptor: dict[str, Any] = field(repr=False)


class OciLayout:
    """Writes an OCI image layout directory: oci-layout, index.json, blobs/sha256/."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, Any]] = []
        self._write_index()

    def add_blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = sha256(data)
        (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_image(
        self,
        layers: list[tuple[bytes, str]],
        *,
        arch: str = "amd64",
        variant: str = "",
        os: str = "linux",
        cmd: list[str] | None = None,
    ) -> BuiltImage:
        """Write config + layers + manifest; returns digests and a platform descriptor."""
        config: dict[str, Any] = {
            "architecture": arch,
            "os": os,
            "config": {"Cmd": cmd or ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
            "created": "2024-01-01T00:00:00Z",
        }
        if variant:
            config["variant"] = variant
        cfg = self.add_blob(
            json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"
        )
        layer_descs = [
            self.add_blob(blob, "application/vnd.oci.image.layer.v1.tar+gzip") for blob, _ in layers
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg,
            "layers": layer_descs,
        }
        desc = self.add_blob(
            json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"
        )
        desc["platform"] = {
            "architecture": arch,
            "os": os,
            **({"variant": variant} if variant else {}),
        }
        return BuiltImage(
            desc["digest"],
            cfg["digest"],
            [d["digest"] for d in layer_descs],
            [blob for blob, _ in layers],
            desc,
        )

    def add_index(self, images: list[BuiltImage]) -> dict[str, Any]:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [img.descriptor for img in images],
        }
        return self.add_blob(json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")

    def tag(self, descriptor: dict[str, Any], name: str) -> None:
        entry = dict(descriptor, annotations={REF_NAME: name})
        entry.pop("platform", None)
        self.entries.append(entry)
        self._write_index()

    def _write_index(self) -> None:
        doc = {"schemaVersion": 2, "manifests": self.entries}
        (self.path / "index.json").write_text(json.dumps(doc))
