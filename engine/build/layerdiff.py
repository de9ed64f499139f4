"""Layer tars for a build: an overlay upper directory's changes, or files from the context.

After a RUN step, the container's overlayfs upper directory holds exactly what
the step changed. `write_layer` turns it into a Docker/OCI layer tar: overlay's
own markers become the AUFS-style names every image tool reads (a 0:0
character device becomes `.wh.NAME`; a directory with
`trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry), and overlay's private
xattrs are dropped. `write_entries` writes COPY/ADD layers straight from the
sources (the received context, a stage's files), with no container and no
staging copy: owners and modes the step sets go into the headers.

The tar is deterministic: entries are sorted, owner names are empty, times
are whole seconds (clamped to SOURCE_DATE_EPOCH when the build sets one), and
a second link to an inode already written becomes a hardlink entry. The same
tree gives the same bytes, hence the same diff_id.
"""

from __future__ import annotations

import os
import stat
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from engine.errors import EngineError, InvalidParameter

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTRS = "trusted.overlay."
# Overlay features whose upper entries are not self-contained: the diff would lie.
_INCOMPLETE_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
_CHUNK = 1 << 20


def _xattrs(path: Path) -> dict[str, str]:
    """PAX records for a path's xattrs, overlay's own left out."""
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return {}
    out: dict[str, str] = {}
    for name in names:
        if name.startswith(_OVERLAY_XATTRS):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _has_xattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


@dataclass
class _Writer:
    """One tar being written, remembering inodes for hardlinks."""

    tar: tarfile.TarFile
    epoch: int | None = None
    chown: tuple[int, int] | None = None
    chmod: int | None = None
    links: dict[tuple[int, int], str] = field(default_factory=dict)

    def mtime(self, st: os.stat_result) -> int:
        t = int(st.st_mtime)
        return min(t, self.epoch) if self.epoch is not None else t

    def info(self, name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = stat.S_IMODE(st.st_mode)
        if self.chmod is not None and kind in (tarfile.REGTYPE, tarfile.DIRTYPE):
            ti.mode = self.chmod
        ti.uid, ti.gid = self.chown if self.chown is not None else (st.st_uid, st.st_gid)
        ti.uname = ti.gname = ""
        ti.mtime = self.mtime(st)
        return ti

    def add(self, name: str, path: Path, st: os.stat_result) -> None:
        """One entry for `path` (already lstat'ed) under the archive name `name`."""
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return  # a tar cannot hold a socket; Docker leaves them out too
        if stat.S_ISDIR(mode):
            ti = self.info(name, st, tarfile.DIRTYPE)
        elif stat.S_ISREG(mode):
            ti = self._regular(name, st)
        elif stat.S_ISLNK(mode):
            ti = self.info(name, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(path)
        elif stat.S_ISFIFO(mode):
            ti = self.info(name, st, tarfile.FIFOTYPE)
        else:
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti = self.info(name, st, kind)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        ti.pax_headers = _xattrs(path)
        if ti.type == tarfile.REGTYPE:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                self.tar.addfile(ti, f)
        else:
            self.tar.addfile(ti)

    def _regular(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            ti = self.info(name, st, tarfile.LNKTYPE)
            ti.linkname = self.links[key]
            return ti
        if st.st_nlink > 1:
            self.links[key] = name
        ti = self.info(name, st, tarfile.REGTYPE)
        ti.size = st.st_size
        return ti

    def new_dir(self, name: str, mode: int, mtime: int) -> None:
        """A directory that exists only in the layer (a COPY's missing parent)."""
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        ti.uid, ti.gid = self.chown if self.chown is not None else (0, 0)
        ti.uname = ti.gname = ""
        ti.mtime = min(mtime, self.epoch) if self.epoch is not None else mtime
        self.tar.addfile(ti)

    def marker(self, name: str, st: os.stat_result, mode: int) -> None:
        """An empty regular file standing for overlay metadata (whiteout, opaque dir)."""
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.REGTYPE
        ti.mode = mode
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = self.mtime(st)
        self.tar.addfile(ti)


def _open_tar(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)


def _sorted_entries(path: Path) -> list[os.DirEntry[str]]:
    return sorted(os.scandir(path), key=lambda e: e.name)


def write_layer(
    upperdir: Path, out: BinaryIO, *, epoch: int | None = None, exclude: Iterable[str] = ()
) -> None:
    """Write the changes an overlay upper directory records as a layer tar to `out`.

    `exclude` lists paths (relative to the upper dir) left out with all they
    hold, such as mount points the runtime created for /etc/hosts.
    """
    skip = {p.strip("/") for p in exclude}
    with _open_tar(out) as tar:
        _write_upper(_Writer(tar, epoch), Path(upperdir), "", skip)


def _write_upper(w: _Writer, top: Path, prefix: str, skip: set[str]) -> None:
    for entry in _sorted_entries(top):
        rel = prefix + entry.name
        if rel in skip:
            continue
        path = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        for name in _INCOMPLETE_XATTRS:
            if _has_xattr(path, name) is not None:
                raise EngineError(
                    f"the overlay upper directory marks {rel!r} with {name}: its content lives "
                    "in a lower layer, so the layer cannot be written from the upper directory "
                    "alone; mount overlayfs with redirect_dir=off,metacopy=off"
                )
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            parent, _, base = rel.rpartition("/")
            w.marker((parent + "/" if parent else "") + WHITEOUT_PREFIX + base, st, 0o600)
            continue
        w.add(rel, path, st)
        if stat.S_ISDIR(st.st_mode):
            if _has_xattr(path, OPAQUE_XATTR) == b"y":
                w.marker(rel + "/" + OPAQUE_MARKER, st, stat.S_IMODE(st.st_mode))
            _write_upper(w, path, rel + "/", skip)


def write_tree(
    root: Path,
    paths: Iterable[str],
    out: BinaryIO,
    chown: tuple[int, int] | None = None,
    dest_prefix: str = "",
    *,
    chmod: int | None = None,
    epoch: int | None = None,
    recursive: bool = True,
) -> None:
    """Write `paths` (relative to `root`) as a layer tar, each named `dest_prefix` + path.

    A directory brings everything below it unless `recursive` is False; each
    entry is written once, in sorted order. `chown` replaces every owner (pass
    (0, 0) for Docker's COPY without --chown; None keeps the files' own),
    `chmod` every file's and directory's mode. The parents of `dest_prefix`
    are not written: only the caller knows whether the image already has them.
    Symlinks are written as links, never followed; a path that climbs out of
    `root` or goes through a symlinked directory is refused.
    """
    base = Path(root)
    prefix = dest_prefix.strip("/")
    names = sorted(set(_expand(base, paths, recursive)))
    with _open_tar(out) as tar:
        w = _Writer(tar, epoch, chown, chmod)
        for rel in names:
            path = base / rel if rel else base
            name = f"{prefix}/{rel}" if prefix and rel else prefix or rel
            if not name:
                continue  # the root itself with no prefix: nothing to name it
            w.add(name, path, os.lstat(path))


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a COPY/ADD layer: read from `path`, or a directory the step makes.

    `owner` and `mode` replace the file's own in the tar header (--chown,
    --chmod), so the source is never changed on disk; `mode` applies to
    regular files and directories only, as chmod would. With `path` None the
    entry is a new directory with exactly `mode` and `owner`.
    """

    name: str  # the path in the image, relative (no leading /)
    path: Path | None
    owner: tuple[int, int] | None = None
    mode: int | None = None
    is_dir: bool = False


def write_entries(entries: Iterable[TreeEntry], out: BinaryIO, *, epoch: int | None = None) -> None:
    """Write `entries` (in the order given: sorted, parents first) as a layer tar to `out`.

    Source paths are lstat'ed here and symlinks written as links, never
    followed; a second name for an inode already written becomes a hardlink.
    """
    now = int(time.time())
    with _open_tar(out) as tar:
        w = _Writer(tar, epoch)
        for e in entries:
            w.chown, w.chmod = e.owner, e.mode
            if e.path is None:
                w.new_dir(e.name, e.mode if e.mode is not None else 0o755, now)
            else:
                w.add(e.name, e.path, os.lstat(e.path))


def _expand(root: Path, paths: Iterable[str], recursive: bool) -> Iterator[str]:
    for raw in paths:
        rel = _checked(root, raw)
        path = root / rel if rel else root
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise InvalidParameter(
                f"file not found in build context or excluded by .dockerignore: {raw}"
            ) from None
        yield rel
        if recursive and stat.S_ISDIR(st.st_mode):
            yield from _below(path, rel)


def _below(path: Path, rel: str) -> Iterator[str]:
    for entry in _sorted_entries(path):
        sub = f"{rel}/{entry.name}" if rel else entry.name
        yield sub
        if entry.is_dir(follow_symlinks=False):
            yield from _below(Path(entry.path), sub)


def _checked(root: Path, raw: str) -> str:
    """`raw` as a clean relative path below `root`, through real directories only."""
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidParameter(f"{raw!r} points outside the build context")
    path = root
    for comp in parts[:-1]:
        path = path / comp
        if not path.is_dir() or path.is_symlink():
            raise InvalidParameter(
                f"{raw!r}: {comp!r} is not a directory of the build context "
                "(symlinked directories are not followed)"
            )
    return "/".join(parts)
