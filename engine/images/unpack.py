"""Safe extraction of an image layer tar into a directory shaped for overlayfs.

A layer is hostile input. Every entry is placed relative to a directory file
descriptor that was reached by walking the path one component at a time with
O_NOFOLLOW, from a descriptor of the layer root: the root acts as a chroot, a
symlink (planted by this layer or present before) is never followed while
extracting, and nothing can be created outside it. Names are cleaned the way
Docker cleans them (a leading `/` is dropped, `..` may not climb above the
root). Hardlinks must name a file already extracted inside the root.

AUFS-style whiteouts become what overlayfs reads: `.wh.NAME` turns into a 0:0
character device NAME, `.wh..wh..opq` into `trusted.overlay.opaque=y` on the
parent directory.

The tree is built in a private temp dir next to `dest` and renamed into place
only after the whole stream was read and hashed, so a rejected or broken layer
leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from engine.atomicfile import fsync_dir
from engine.errors import Conflict, EngineError, InvalidParameter
from engine.images.layers import HashingReader, decompressed

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
# Overlay's own bookkeeping; a layer must not be able to plant redirects or opaque flags directly.
_RESERVED_XATTR_PREFIX = "trusted.overlay."

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
# OS errors caused by what the layer asks for, rather than by the machine.
_BAD_INPUT_ERRNOS = {
    errno.ENAMETOOLONG,
    errno.EINVAL,
    errno.EEXIST,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ELOOP,
    errno.EMLINK,
    errno.ENOTEMPTY,
}


class UnsafeLayer(InvalidParameter):
    """A layer member tried to reach outside the layer root or through a symlink."""


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of regular-file content extracted
    tar_size: int  # bytes of the uncompressed tar stream


def unpack_layer(blob: BinaryIO, dest: Path, *, allow_devices: bool = False) -> str:
    """Extract a (gzip/plain) layer tar into `dest`; returns its diff_id."""
    return extract_layer(blob, dest, allow_devices=allow_devices).diff_id


def extract_layer(
    blob: BinaryIO, dest: Path, *, allow_devices: bool = False, whiteouts: bool = True
) -> LayerInfo:
    """Like unpack_layer, also reporting content and tar sizes.

    `dest` must not exist (or be an empty directory); it appears only when
    extraction fully succeeded. `whiteouts=False` keeps `.wh.*` members as the
    plain files they are in a tar that is not a layer (a build context).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpack", dir=dest.parent))
    try:
        os.chmod(tmp, 0o755)
        info = _extract_into(blob, tmp, allow_devices, whiteouts)
        _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def clean_name(name: str, member: str | None = None) -> list[str]:
    """Docker's filepath.Clean for a member name, as components below the root.

    A leading `/` is dropped (absolute names are relative to the layer root)
    and `..` above `/` stays at `/`; a relative name whose `..` would climb
    above the root is rejected.
    """
    absolute = name.startswith("/")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp != "..":
            parts.append(comp)
        elif parts:
            parts.pop()
        elif not absolute:
            raise UnsafeLayer(
                f"layer member {_show(member or name)} escapes the layer root via '..'"
            )
    return parts


def _show(name: str) -> str:
    return repr(name if len(name) <= 200 else name[:200] + "...")


def _publish(tmp: Path, dest: Path) -> None:
    try:
        os.rename(tmp, dest)
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise Conflict(
                f"{dest} already exists and is not empty; refusing to replace it"
            ) from None
        raise
    fsync_dir(dest.parent)


def _extract_into(
    blob: BinaryIO, root: Path, allow_devices: bool, whiteouts: bool = True
) -> LayerInfo:
    reader = HashingReader(decompressed(blob))
    tree = _Tree(root, allow_devices, whiteouts=whiteouts)
    try:
        try:
            with tarfile.open(fileobj=reader.as_io(), mode="r|") as tar:
                for member in tar:
                    tree.extract(tar, member)
        except tarfile.TarError as e:
            raise InvalidParameter(f"layer is not a valid tar archive: {e}") from None
        reader.drain()
        tree.finish()
    finally:
        tree.close()
    return LayerInfo(reader.digest, tree.size, reader.count)


def _ns(mtime: float) -> int:
    return int(mtime) * 1_000_000_000 if float(mtime).is_integer() else int(mtime * 1e9)


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in member.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX) :]
        if name and not name.startswith(_RESERVED_XATTR_PREFIX):
            out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def _chown(target: int | str, uid: int, gid: int, dir_fd: int | None = None) -> None:
    """Ownership as recorded; an unprivileged engine keeps its own (as rootless Docker does)."""
    try:
        if isinstance(target, int):
            os.fchown(target, uid, gid)
        else:
            os.chown(target, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def _best_effort_setxattr(target: int | str, name: str, value: bytes) -> None:
    """Like Docker: a filesystem that refuses an xattr namespace does not fail the layer."""
    try:
        if isinstance(target, int):
            os.setxattr(target, name, value)
        else:
            os.setxattr(target, name, value, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            raise


@dataclass
class _Tree:
    """The layer root, opened once; every operation is relative to a verified dir fd."""

    root: Path
    allow_devices: bool
    whiteouts: bool = True
    size: int = 0
    fd: int = -1
    dir_times: list[tuple[list[str], int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fd = os.open(self.root, _DIR_FLAGS)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- walking -----------------------------------------------------------------------

    def open_dir(self, parts: list[str], member: str, *, create: bool) -> int:
        """fd of the directory `parts` below the root; never follows a symlink."""
        fd = os.dup(self.fd)
        try:
            for comp in parts:
                nfd = self._step(fd, comp, member, create)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, fd: int, comp: str, member: str, create: bool) -> int:
        try:
            st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                raise InvalidParameter(
                    f"layer member {_show(member)} refers to {comp!r}, which is not in the layer"
                ) from None
            os.mkdir(comp, 0o755, dir_fd=fd)
            nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            os.fchmod(nfd, 0o755)
            return nfd
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeLayer(
                f"layer member {_show(member)} goes through symlink {comp!r}; "
                "refusing to follow symlinks while extracting"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidParameter(f"layer member {_show(member)}: {comp!r} is not a directory")
        return os.open(comp, _DIR_FLAGS, dir_fd=fd)

    # -- members -----------------------------------------------------------------------

    def extract(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        try:
            self._extract(tar, m)
        except EngineError:
            raise
        except OSError as e:
            if e.errno in _BAD_INPUT_ERRNOS:
                raise InvalidParameter(
                    f"layer member {_show(m.name)} could not be extracted: {e.strerror}"
                ) from None
            raise EngineError(f"extracting layer member {_show(m.name)}: {e}") from e

    def _extract(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        if not parts:
            if m.isdir():
                self._apply_fd(self.fd, m)
                self.dir_times.append(([], _ns(m.mtime)))
            return
        name = parts[-1]
        parent = self.open_dir(parts[:-1], m.name, create=True)
        try:
            if self.whiteouts and name == OPAQUE_MARKER:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            elif self.whiteouts and name.startswith(WHITEOUT_META_PREFIX):
                pass  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) means nothing to overlay
            elif self.whiteouts and name.startswith(WHITEOUT_PREFIX):
                self._whiteout(parent, name[len(WHITEOUT_PREFIX) :], m)
            elif m.isdir():
                self._dir(parent, name, parts, m)
            elif m.isreg():
                self._file(tar, parent, name, m)
            elif m.issym():
                self._symlink(parent, name, m)
            elif m.islnk():
                self._hardlink(parent, name, parts, m)
            elif m.ischr() or m.isblk() or m.isfifo():
                self._device(parent, name, m)
            else:
                raise InvalidParameter(
                    f"layer member {_show(m.name)} has unsupported tar type {m.type!r}"
                )
        finally:
            os.close(parent)

    def _clear(self, parent: int, name: str, *, keep_dir: bool = False) -> bool:
        """Remove what sits at `name` (without following it); True if a dir was kept."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return False

    def _whiteout(self, parent: int, target: str, m: tarfile.TarInfo) -> None:
        if target in ("", ".", ".."):
            raise InvalidParameter(f"layer member {_show(m.name)} is a malformed whiteout")
        self._clear(parent, target)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        _chown(target, 0, 0, dir_fd=parent)

    def _dir(self, parent: int, name: str, parts: list[str], m: tarfile.TarInfo) -> None:
        if not self._clear(parent, name, keep_dir=True):
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        try:
            self._apply_fd(fd, m)
        finally:
            os.close(fd)
        self.dir_times.append((parts, _ns(m.mtime)))

    def _file(self, tar: tarfile.TarFile, parent: int, name: str, m: tarfile.TarInfo) -> None:
        self._clear(parent, name)
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            src = tar.extractfile(m)
            written = 0
            if src is not None:
                while chunk := src.read(_CHUNK):
                    _write_all(fd, chunk)
                    written += len(chunk)
            if written != m.size:
                raise InvalidParameter(
                    f"layer member {_show(m.name)} is truncated "
                    f"({written} of {m.size} bytes); the layer is corrupt"
                )
            self._apply_fd(fd, m)
            os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)
        self.size += m.size

    def _symlink(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        self._clear(parent, name)
        os.symlink(m.linkname, name, dir_fd=parent)
        self._apply_at(parent, name, m, chmod=False)

    def _hardlink(self, parent: int, name: str, parts: list[str], m: tarfile.TarInfo) -> None:
        target = clean_name(m.linkname, m.name)
        if not target:
            raise UnsafeLayer(f"layer member {_show(m.name)} hardlinks to the layer root")
        if target == parts:
            return
        tparent = self.open_dir(target[:-1], m.name, create=False)
        try:
            try:
                st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
            except FileNotFoundError:
                raise InvalidParameter(
                    f"layer member {_show(m.name)} hardlinks to {_show(m.linkname)}, "
                    "which is not in the layer"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise UnsafeLayer(f"layer member {_show(m.name)} hardlinks to a directory")
            self._clear(parent, name)
            os.link(
                target[-1],
                name,
                src_dir_fd=tparent,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(tparent)

    def _device(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        if not self.allow_devices:
            return  # neutralised: an image must not smuggle device nodes onto the host
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        self._clear(parent, name)
        os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
        self._apply_at(parent, name, m, chmod=True)

    # -- metadata ----------------------------------------------------------------------

    def _apply_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid bits), then xattrs (chown clears file caps)."""
        _chown(fd, m.uid, m.gid)
        os.fchmod(fd, stat.S_IMODE(m.mode))
        for key, value in _xattrs(m):
            _best_effort_setxattr(fd, key, value)

    def _apply_at(self, parent: int, name: str, m: tarfile.TarInfo, *, chmod: bool) -> None:
        _chown(name, m.uid, m.gid, dir_fd=parent)
        if chmod:  # only for nodes this tree just created, so `name` is not a symlink
            os.chmod(name, stat.S_IMODE(m.mode), dir_fd=parent)
        via_proc = f"/proc/self/fd/{parent}/{name}"  # setxattr has no dir_fd form
        for key, value in _xattrs(m):
            _best_effort_setxattr(via_proc, key, value)
        t = _ns(m.mtime)
        os.utime(name, ns=(t, t), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes last: creating entries inside a directory bumps its mtime."""
        for parts, t in reversed(self.dir_times):
            try:
                fd = self.open_dir(parts, "/".join(parts), create=False)
            except (EngineError, OSError):
                continue  # replaced by a later member
            try:
                os.utime(fd, ns=(t, t))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
