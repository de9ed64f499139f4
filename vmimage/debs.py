"""Debian packages from the machine's configured apt sources: pick, fetch, verify, unpack.

apt already knows the mirror and has checked the signed indexes, so the
sha256 of each candidate comes from `apt-cache show` and every download is
checked against it before use. Downloads are cached by name, version and
architecture; a cached file whose hash no longer matches is fetched again.
Unpacking goes through `dpkg-deb --fsys-tarfile` and Python's tarfile so
that paths can be folded into the merged-/usr layout the guest uses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Top-level directories that live under /usr in the guest (merged /usr).
MERGED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class DebError(RuntimeError):
    """A package could not be resolved, fetched or verified."""


@dataclass(frozen=True)
class Deb:
    """One package version as apt's index describes it."""

    name: str
    version: str
    arch: str
    sha256: str
    filename: str  # path on the mirror, e.g. pool/main/b/busybox/...

    @property
    def cache_name(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def parse_show(text: str) -> list[Deb]:
    """The stanzas of `apt-cache show` output, as Debs."""
    return [_stanza(block) for block in text.strip().split("\n\n") if block.strip()]


def _stanza(block: str) -> Deb:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields[key] = value.strip()
    missing = [
        k for k in ("Package", "Version", "Architecture", "SHA256", "Filename") if k not in fields
    ]
    if missing:
        raise DebError(f"apt-cache show gave no {', '.join(missing)}")
    return Deb(
        fields["Package"],
        fields["Version"],
        fields["Architecture"],
        fields["SHA256"],
        fields["Filename"],
    )


def resolve(names: list[str], arch: str) -> list[Deb]:
    """apt's candidate versions of `names` for `arch` (a Debian arch: amd64, arm64), in order."""
    specs = [n if arch == host_arch() else f"{n}:{arch}" for n in names]
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *specs],
        capture_output=True,
        text=True,
        check=False,
    )
    found = {d.name: d for d in parse_show(proc.stdout)} if proc.returncode == 0 else {}
    lacking = [n for n in names if n not in found]
    if lacking:
        raise DebError(
            f"apt knows no package {', '.join(lacking)}: {proc.stderr.strip() or 'no candidate'}"
            " (run apt-get update, or add the architecture with dpkg --add-architecture)"
        )
    return [found[n] for n in names]


def host_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(deb: Deb, cache: Path) -> Path:
    """The verified .deb in `cache`, downloaded with `apt-get download` when needed."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / deb.cache_name
    if path.exists() and sha256_file(path) == deb.sha256:
        return path
    with tempfile.TemporaryDirectory(dir=cache, prefix=".get-") as tmp:
        os.chmod(tmp, 0o755)  # apt drops to the _apt user for downloads
        spec = f"{deb.name}:{deb.arch}={deb.version}"
        proc = subprocess.run(
            ["apt-get", "download", "-q", spec],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        got = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or len(got) != 1:
            raise DebError(f"apt-get download {spec} failed: {proc.stderr.strip()}")
        digest = sha256_file(got[0])
        if digest != deb.sha256:
            raise DebError(f"{spec}: sha256 {digest} does not match apt's index {deb.sha256}")
        os.replace(got[0], path)
    return path


def guest_path(name: str) -> PurePosixPath | None:
    """A package member's path in the merged-/usr guest, or None for the root itself."""
    parts = PurePosixPath(name).parts
    if not parts:
        return None
    if ".." in parts or parts[0] == "/":
        raise DebError(f"refusing package member {name!r}")
    if parts[0] in MERGED_DIRS:
        parts = ("usr", *parts)
    return PurePosixPath(*parts)


def link_target(member: tarfile.TarInfo, dest: PurePosixPath) -> str:
    """A symlink's target, made absolute when folding moved a relative link."""
    target = member.linkname
    orig = PurePosixPath("/", *PurePosixPath(member.name).parts)
    if target.startswith("/") or PurePosixPath("/", dest) == orig:
        return target
    return os.path.normpath(str(orig.parent / target))


def unpack(deb_path: Path, root: Path, keep: Callable[[PurePosixPath], bool]) -> None:
    """Unpack a .deb under `root`, folded into merged /usr, skipping what `keep` drops."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb_path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            rel = guest_path(member.name)
            if rel is None or not keep(rel):
                continue
            _place(tar, member, rel, root)
    if proc.wait() != 0:
        raise DebError(f"dpkg-deb could not read {deb_path.name}")


def _place(tar: tarfile.TarFile, member: tarfile.TarInfo, rel: PurePosixPath, root: Path) -> None:
    dest = root / rel
    if member.isdir():
        dest.mkdir(parents=True, exist_ok=True)
        dest.chmod(member.mode & 0o7777)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    if member.issym():
        dest.symlink_to(link_target(member, rel))
    elif member.islnk():
        src = guest_path(member.linkname)
        if src is None:
            raise DebError(f"bad hard link {member.name!r}")
        shutil.copy2(root / src, dest)  # a copy keeps the tree simple to pack
    elif member.isfile():
        src_f = tar.extractfile(member)
        assert src_f is not None
        with dest.open("wb") as out:
            shutil.copyfileobj(src_f, out)
        dest.chmod(member.mode & 0o7777)
