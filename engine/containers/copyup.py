"""Pre-populate an empty volume with the image's content at its mount point.

Docker copies what the image has under a volume's destination into the volume
when the volume is empty (unless `nocopy`), so `-v data:/var/lib/app` starts
with the image's seed files instead of hiding them. The image here is a stack
of unpacked overlay layers (top-most first), so the copy is of their *union*:
an upper entry wins over a lower one, a whiteout (0:0 character device) hides
the name below it, and an opaque directory (`trusted.overlay.opaque=y`) hides
everything below it. Modes, owners, times, hard links and xattrs are kept;
overlay's own `trusted.overlay.*` bookkeeping is not.

Nothing is ever followed: entries are read with lstat and copied as what they
are, so a hostile layer's symlink cannot make us read or write outside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

OVERLAY_XATTR_PREFIX = "trusted.overlay."
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20


@dataclass
class _Union:
    """What upper layers decided, keyed by path relative to the volume root."""

    made: dict[str, bool] = field(default_factory=dict)  # rel -> is a directory
    hidden: set[str] = field(default_factory=set)  # whited out by an upper layer
    opaque: set[str] = field(default_factory=set)  # dirs whose lower content is hidden
    links: dict[tuple[int, int], str] = field(default_factory=dict)  # (dev, ino) -> dest
    dir_times: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # set last


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def is_empty(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True


def clear(path: Path) -> None:
    """Remove everything inside `path` (after a failed copy), keeping `path` itself."""
    with os.scandir(path) as it:
        entries = list(it)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def populate(dest: Path, layer_dirs: list[str], target: str) -> bool:
    """Copy the union of `layer_dirs` at `target` into the empty `dest`.

    Returns whether the image had a directory there (nothing is copied otherwise)."""
    parts = [p for p in target.split("/") if p]
    union = _Union()
    found = False
    for layer in layer_dirs:
        has_dir, stop_below = _path_in_layer(layer, parts)
        if has_dir:
            src = os.path.join(layer, *parts)
            if not found:
                _copy_meta(src, str(dest), os.lstat(src), union)
                found = True
            _merge(src, str(dest), "", union)
            stop_below = stop_below or is_opaque(src)
        if stop_below:
            break
    for path, times in reversed(union.dir_times):
        os.utime(path, ns=times, follow_symlinks=False)
    return found


def _path_in_layer(layer: str, parts: list[str]) -> tuple[bool, bool]:
    """(does `layer` have a directory at the path, does it hide the layers below).

    A whiteout or a non-directory on the path hides everything below; so does an
    opaque ancestor, though this layer's own content under it still counts."""
    current = layer
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return False, False
        if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
            return False, True
        if i < len(parts) - 1 and is_opaque(current):
            return _is_real_dir(os.path.join(current, *parts[i + 1 :])), True
    return True, False


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _merge(src: str, dst: str, rel: str, union: _Union) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        if child_rel in union.hidden:
            continue
        st = entry.stat(follow_symlinks=False)
        already = union.made.get(child_rel)
        if is_whiteout(st):
            if already is None:
                union.hidden.add(child_rel)
            continue
        target = os.path.join(dst, entry.name)
        if stat.S_ISDIR(st.st_mode):
            if already is False:
                continue  # an upper layer has a file here
            if already is None:
                os.mkdir(target, 0o700)
                union.made[child_rel] = True
            if already is None:
                _copy_meta(entry.path, target, st, union)
            if child_rel not in union.opaque:
                _merge(entry.path, target, child_rel, union)
            if is_opaque(entry.path):
                union.opaque.add(child_rel)
            continue
        if already is not None:
            continue
        _copy_entry(entry.path, target, st, union)
        union.made[child_rel] = False


def _copy_entry(src: str, dst: str, st: os.stat_result, union: _Union) -> None:
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in union.links:
        os.link(union.links[key], dst)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src, dst)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        os.mknod(dst, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
    else:
        return  # sockets and the like are not image content
    _copy_meta(src, dst, st, union)
    if st.st_nlink > 1:
        union.links[key] = dst


def _copy_file(src: str, dst: str) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            while chunk := os.read(fd_in, _CHUNK):
                os.write(fd_out, chunk)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _copy_meta(src: str, dst: str, st: os.stat_result, union: _Union) -> None:
    """Owner first (chown clears setuid bits), then xattrs, mode and times; a
    directory's times are set at the very end, after its entries are written."""
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    for name in _xattrs(src):
        with contextlib.suppress(OSError):
            value = os.getxattr(src, name, follow_symlinks=False)
            os.setxattr(dst, name, value, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    times = (st.st_atime_ns, st.st_mtime_ns)
    if stat.S_ISDIR(st.st_mode):
        union.dir_times.append((dst, times))
    else:
        os.utime(dst, ns=times, follow_symlinks=False)


def _xattrs(path: str) -> list[str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    return [n for n in names if not n.startswith(OVERLAY_XATTR_PREFIX)]
