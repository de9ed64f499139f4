#!/usr/bin/env python3
"""Build the test images as OCI image layouts, offline and byte-for-byte reproducibly.

Why: the engine's tests and benchmarks need real images (busybox, a tricky multi-layer
image, a multi-arch index) but this machine and CI cannot reach any public registry. We
therefore assemble them from Debian's busybox-static binary with the standard library only.

Reproducibility rules: every tar entry has a fixed mtime, uid/gid 0 unless a test needs
otherwise, sorted order, PAX format; gzip streams carry mtime 0 and no file name; JSON is
written with sorted keys and compact separators. Running this twice yields the same digests.

Usage:
    python3 scripts/build_test_images.py --out .cache/test-images
    python3 scripts/build_test_images.py --out .cache/test-images --push 127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

EPOCH = 1704067200  # 2024-01-01T00:00:00Z: fixed mtime for every entry
CREATED = "2024-01-01T00:00:00Z"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMES = ("busybox", "multilayer", "multiarch")

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# Applets the tests rely on (Debian's busybox-static has no inotifyd, so it is not listed).
REQUIRED_APPLETS = [
    "sh",
    "sleep",
    "httpd",
    "nc",
    "true",
    "false",
    "echo",
    "cat",
    "ls",
    "id",
    "env",
    "pwd",
    "hostname",
    "ps",
    "top",
    "tty",
    "stty",
    "head",
    "tail",
    "grep",
    "sed",
    "mkdir",
    "rm",
    "touch",
    "kill",
    "wc",
    "dd",
    "seq",
    "yes",
    "date",
    "mount",
    "printf",
    "test",
    "stat",
    "chmod",
    "chown",
    "ln",
    "readlink",
    "sync",
    "umount",
    "whoami",
    "uname",
    "nslookup",
    "wget",
    "ping",
    "ip",
    "ifconfig",
]

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"

ENTRY_SH = """#!/bin/sh
# Prints what the engine handed us, so tests can check Entrypoint/Cmd/Env/WorkingDir/User.
echo "args: $*"
echo "greeting: $GREETING"
echo "pwd: $(pwd)"
echo "uid: $(id -u)"
"""


# ---------------------------------------------------------------------------------------
# Layer building (pure: entries in, bytes out)


@dataclass(frozen=True)
class Entry:
    """One tar member. `kind` is dir, file, symlink, hardlink; `target` for links."""

    path: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    xattrs: tuple[tuple[str, str], ...] = ()


def d(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "dir", mode=mode, uid=uid, gid=gid)


def f(path: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    raw = data.encode() if isinstance(data, str) else data
    return Entry(path, "file", raw, mode, uid, gid)


def sym(path: str, target: str) -> Entry:
    return Entry(path, "symlink", mode=0o777, target=target)


def hard(path: str, target: str) -> Entry:
    return Entry(path, "hardlink", mode=0o644, target=target)


def _tarinfo(e: Entry) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(e.path.lstrip("/"))
    ti.mtime = EPOCH
    ti.mode = e.mode
    ti.uid, ti.gid = e.uid, e.gid
    ti.uname = ti.gname = ""
    if e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, e.target
    elif e.kind == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, e.target.lstrip("/")
    else:
        ti.type, ti.size = tarfile.REGTYPE, len(e.data)
    if e.xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs}
    return ti


def build_tar(entries: Iterable[Entry]) -> bytes:
    """Uncompressed tar, entries sorted by path so parents precede children.

    Hardlinks must follow their targets; sorting keeps that true because we only link to
    names that sort earlier (asserted)."""
    ordered = sorted(entries, key=lambda e: e.path.strip("/").split("/"))
    seen: set[str] = set()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in ordered:
            if e.kind == "hardlink":
                assert e.target.lstrip("/") in seen, f"hardlink {e.path} before {e.target}"
            ti = _tarinfo(e)
            tar.addfile(ti, io.BytesIO(e.data) if e.kind == "file" else None)
            seen.add(e.path.lstrip("/"))
    return buf.getvalue()


def gzip_bytes(raw: bytes) -> bytes:
    """Gzip with mtime 0 and no name so the compressed digest is stable."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        gz.write(raw)
    return buf.getvalue()


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------
# Layout writing


@dataclass
class Layout:
    """An OCI image layout being assembled in memory, then written in one go."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, data: bytes, media_type: str, **extra: object) -> dict[str, object]:
        digest = sha256(data)
        self.blobs[digest] = data
        desc: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        desc.update(extra)
        return desc

    def write(self, dest: Path, top: dict[str, object]) -> None:
        """Write into a temp dir beside dest, then swap it in, so readers never see half."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            blobdir = tmp / "blobs" / "sha256"
            blobdir.mkdir(parents=True)
            for digest, data in sorted(self.blobs.items()):
                (blobdir / digest.split(":", 1)[1]).write_bytes(data)
            (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
            index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top]}
            (tmp / "index.json").write_bytes(canonical_json(index))
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@dataclass(frozen=True)
class Layer:
    entries: tuple[Entry, ...]
    created_by: str

    @property
    def tar(self) -> bytes:
        return build_tar(self.entries)


def add_image(
    layout: Layout,
    layers: list[Layer],
    config: dict[str, object],
    arch: str = "amd64",
    variant: str | None = None,
) -> dict[str, object]:
    """Add layers, config and manifest blobs; return the manifest descriptor."""
    layer_descs: list[dict[str, object]] = []
    diff_ids: list[str] = []
    history: list[dict[str, object]] = []
    for layer in layers:
        raw = layer.tar
        diff_ids.append(sha256(raw))
        layer_descs.append(layout.add(gzip_bytes(raw), MT_LAYER))
        history.append({"created": CREATED, "created_by": layer.created_by})
    image_config: dict[str, object] = {
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if variant:
        image_config["variant"] = variant
    cfg_desc = layout.add(canonical_json(image_config), MT_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": cfg_desc,
        "layers": layer_descs,
    }
    platform: dict[str, str] = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return layout.add(canonical_json(manifest), MT_MANIFEST, platform=platform)


def ref_name(desc: dict[str, object]) -> dict[str, object]:
    """Tag the top descriptor as 'latest' so `oci:DIR:latest` also resolves."""
    return {**desc, "annotations": {"org.opencontainers.image.ref.name": "latest"}}


# ---------------------------------------------------------------------------------------
# busybox


def find_busybox() -> Path:
    """Locate a *static* busybox: the image has no libc, so a dynamic one would not run."""
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.is_file() and is_static_elf(p.read_bytes()):
            return p
    raise SystemExit(
        "no static busybox found at "
        + " or ".join(BUSYBOX_CANDIDATES)
        + "; install it with: apt-get install busybox-static"
    )


def is_static_elf(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP (dynamic loader) header."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def applet_paths(busybox: Path) -> list[str]:
    """Where busybox itself says each applet lives, plus /bin for the ones tests need."""
    out = subprocess.run(
        [str(busybox), "--list-full"], check=True, capture_output=True, text=True
    ).stdout
    paths = {"/" + line.strip() for line in out.splitlines() if line.strip()}
    paths = {p for p in paths if "/" in p[1:] and p != "/bin/busybox"}
    known = {p.rsplit("/", 1)[1] for p in paths}
    missing = [a for a in REQUIRED_APPLETS if a not in known]
    if missing:
        raise SystemExit(f"busybox at {busybox} lacks applets: {' '.join(missing)}")
    return sorted(paths)


def busybox_layer(busybox: Path) -> Layer:
    entries: list[Entry] = [
        d("/bin"),
        d("/sbin"),
        d("/usr"),
        d("/usr/bin"),
        d("/usr/sbin"),
        d("/usr/local"),
        d("/usr/local/bin"),
        d("/dev"),
        d("/proc"),
        d("/sys"),
        d("/etc"),
        d("/var"),
        d("/var/tmp", 0o1777),
        d("/home"),
        d("/home/app", 0o755, 1000, 1000),
        d("/root", 0o700),
        d("/tmp", 0o1777),
        f("/bin/busybox", busybox.read_bytes(), 0o755),
        f("/etc/passwd", PASSWD),
        f("/etc/group", GROUP),
        f("/etc/hostname", ""),
        f("/etc/hosts", "127.0.0.1\tlocalhost\n"),
        f("/etc/resolv.conf", ""),
    ]
    for path in applet_paths(busybox):
        entries.append(sym(path, "/bin/busybox"))
    return Layer(tuple(entries), "COPY busybox-static /bin/busybox # and applet links")


def busybox_config(**labels: str) -> dict[str, object]:
    cfg: dict[str, object] = {"Cmd": ["sh"], "Env": [PATH_ENV]}
    if labels:
        cfg["Labels"] = labels
    return cfg


def build_busybox(out: Path, base: Layer) -> None:
    layout = Layout()
    top = add_image(layout, [base], busybox_config())
    layout.write(out / "busybox", ref_name(top))


# ---------------------------------------------------------------------------------------
# multilayer: every layer-format corner case the unpacker must get right


def multilayer_layers() -> list[Layer]:
    add = Layer(
        (
            d("/srv", 0o755, 1000, 1000),
            f("/srv/remove-me.txt", "deleted by a whiteout in the next layer\n"),
            f("/srv/keep.txt", "kept\n"),
            d("/opt"),
            d("/opt/data"),
            f("/opt/data/old-a.txt", "lower a\n"),
            f("/opt/data/old-b.txt", "lower b\n"),
            d("/opt/data/old-sub"),
            f("/opt/data/old-sub/c.txt", "lower c\n"),
            d("/data", 0o755, 1000, 1000),
            f("/data/seed.txt", "seeded from the image\n", 0o644, 1000, 1000),
            f("/entry.sh", ENTRY_SH, 0o755),
        ),
        "ADD srv/ opt/data/ data/ entry.sh",
    )
    whiteouts = Layer(
        (
            d("/srv", 0o755, 1000, 1000),
            f("/srv/.wh.remove-me.txt", ""),
            d("/opt"),
            d("/opt/data"),
            f("/opt/data/.wh..wh..opq", ""),
            f("/opt/data/new.txt", "upper only\n"),
        ),
        "RUN rm /srv/remove-me.txt && rm -rf /opt/data/* && echo upper only > /opt/data/new.txt",
    )
    links = Layer(
        (
            d("/srv", 0o755, 1000, 1000),
            d("/srv/links"),
            f("/srv/links/hard-a", "same inode\n"),
            hard("/srv/links/hard-b", "/srv/links/hard-a"),
            f("/srv/links/target.txt", "link target\n"),
            sym("/srv/links/rel", "target.txt"),
            sym("/srv/links/abs", "/srv/links/target.txt"),
            sym("/srv/links/up", "../keep.txt"),
            d("/usr"),
            d("/usr/local"),
            d("/usr/local/bin"),
            f("/usr/local/bin/suid-root", "#!/bin/sh\nid -u\n", 0o4755),
            Entry(
                "/srv/xattr.txt",
                "file",
                b"has an xattr\n",
                0o644,
                xattrs=(("user.dockyard", "yes"),),
            ),
        ),
        "RUN ln, ln -s, chmod 4755, setfattr -n user.dockyard -v yes",
    )
    return [add, whiteouts, links]


def build_multilayer(out: Path, base: Layer) -> None:
    layout = Layout()
    config: dict[str, object] = {
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["hello"],
        "Env": [PATH_ENV, "GREETING=ahoy"],
        "WorkingDir": "/srv",
        "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"org.opencontainers.image.title": "multilayer", "dockyard.test": "multilayer"},
        "StopSignal": "SIGTERM",
    }
    top = add_image(layout, [base, *multilayer_layers()], config)
    layout.write(out / "multilayer", ref_name(top))


# ---------------------------------------------------------------------------------------
# multiarch: an index, so pulls must pick the platform


def build_multiarch(out: Path, base: Layer) -> None:
    layout = Layout()
    amd_marker = Layer((f("/arch", "amd64\n"),), "ADD arch /arch")
    arm_marker = Layer((f("/arch", "arm64\n"),), "ADD arch /arch")
    amd = add_image(layout, [base, amd_marker], busybox_config(arch="amd64"))
    arm = add_image(
        layout,
        [arm_marker],
        {"Cmd": ["/bin/sh"], "Labels": {"arch": "arm64"}},
        arch="arm64",
        variant="v8",
    )
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [amd, arm]}
    top = layout.add(canonical_json(index), MT_INDEX)
    layout.write(out / "multiarch", ref_name(top))


def build_all(out: Path) -> None:
    base = busybox_layer(find_busybox())
    build_busybox(out, base)
    build_multilayer(out, base)
    build_multiarch(out, base)


# ---------------------------------------------------------------------------------------
# push


def push(out: Path, registry: str, names: Iterable[str] = NAMES) -> None:
    """Copy each layout to REGISTRY/NAME:latest with skopeo (plain HTTP registry)."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise SystemExit("skopeo is missing; install it with: apt-get install skopeo")
    for name in names:
        cmd = [
            skopeo,
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
            f"oci:{out / name}",
            f"docker://{registry}/{name}:latest",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"push of {name} failed: {' '.join(cmd)}\n{res.stderr}")
        print(f"pushed {registry}/{name}:latest")


def layouts_present(out: Path) -> bool:
    return all((out / n / "index.json").is_file() for n in NAMES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".cache/test-images"))
    ap.add_argument("--push", metavar="HOST:PORT", help="push the layouts to this registry")
    ap.add_argument("--if-missing", action="store_true", help="skip the build if present")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    if not (args.if_missing and layouts_present(out)):
        build_all(out)
        for name in NAMES:
            top = json.loads((out / name / "index.json").read_text())["manifests"][0]
            print(f"{name}: {out / name} {top['digest']}")
    if args.push:
        push(out, args.push)
    return 0


if __name__ == "__main__":
    sys.exit(main())
