"""Guarded changes to one folder: the same code on the host (HostSide) and in the guest
(the agent), so both sides follow exactly the same safety rules.

- A file is written to a temporary name beside its target and renamed over it only at the
  end, so a reader (or a crash) sees the old content or the new, never a torn mix.
- Right before that rename, or a deletion, or a rename, the target is checked to still
  hold what the pass planned on (`expect`: its lstat key, None for absent). If the user
  changed it meanwhile, the operation is abandoned (`Changed`) and nothing of theirs is
  replaced; in the guest the check and the change are one request, with no round trip
  between them.
- Parents are created as directories, and a parent that is a link or a file is never
  written through (`Unsafe`), so a link can never lead a write out of the share.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
from collections.abc import Sequence

from machine.sync import tree
from machine.sync.ignore import TEMP_PREFIX
from machine.sync.tree import DIR, Entry

ExpectKey = Sequence[object] | None


class Changed(Exception):
    """The path no longer holds what the pass planned on; it is looked at again later."""


class Unsafe(Exception):
    """A parent of the path is a link or a file."""

    def __init__(self, rel: str, parent: str) -> None:
        super().__init__(f"{parent} is not a directory")
        self.rel = rel
        self.parent = parent


def sync_fs(root: str) -> None:
    """Make everything written under `root` durable: one syncfs(2) per pass, before the
    index that describes it is saved, instead of an fsync per file (about 6 ms each on a
    plain disk). After a crash the index is then never ahead of the data; a file that was
    renamed in but not yet written out is seen as changed on both sides, a conflict, and
    both versions are kept."""
    fd = os.open(root, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass  # not Linux: no syncfs
    finally:
        os.close(fd)
    if hasattr(os, "sync"):
        os.sync()


def temp_name(rel: str) -> str:
    head, _, _ = rel.rpartition("/")
    name = f"{TEMP_PREFIX}{secrets.token_hex(6)}.tmp"
    return f"{head}/{name}" if head else name


def _same(entry: Entry | None, expect: ExpectKey) -> bool:
    if entry is None or expect is None:
        return entry is None and expect is None
    return list(entry.key()) == list(expect)


def _is_dir(expect: ExpectKey) -> bool:
    return expect is not None and list(expect) == [DIR]


def check(root: str, rel: str, expect: ExpectKey) -> None:
    if not _same(tree.lstat(root, rel), expect):
        raise Changed(rel)


def parents(root: str, rel: str) -> None:
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        entry = tree.lstat(root, parent)
        if entry is None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(tree.local(root, parent))
            entry = tree.lstat(root, parent)
        if entry is None or entry.kind != DIR:
            raise Unsafe(rel, parent)


def _place(root: str, tmp: str, rel: str, expect: ExpectKey) -> Entry:
    """Rename `tmp` over `rel` if `rel` still holds `expect` (an empty directory that was
    synced may be replaced too)."""
    check(root, rel, expect)
    if _is_dir(expect):
        try:
            os.rmdir(tree.local(root, rel))
        except OSError as e:
            raise Changed(rel) from e  # something new inside: it syncs first
    os.replace(tree.local(root, tmp), tree.local(root, rel))
    entry = tree.lstat(root, rel)
    if entry is None:
        raise Changed(rel)
    return entry


def commit(root: str, tmp: str, rel: str, mode: int, mtime_ns: int, expect: ExpectKey) -> Entry:
    """Give the written `tmp` its mode and mtime, then put it in place of `rel`."""
    try:
        path = tree.local(root, tmp)
        os.chmod(path, mode)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        return _place(root, tmp, rel, expect)
    except BaseException:
        discard(root, tmp)
        raise


def discard(root: str, tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tree.local(root, tmp))


def make_dir(root: str, rel: str, mode: int, expect: ExpectKey) -> Entry:
    parents(root, rel)
    if expect is not None and not _is_dir(expect):
        remove(root, rel, expect)  # a synced file or link becoming a directory
    with contextlib.suppress(FileExistsError):
        os.mkdir(tree.local(root, rel), mode)
    entry = tree.lstat(root, rel)
    if entry is None or entry.kind != DIR:
        raise Changed(rel)
    os.chmod(tree.local(root, rel), mode)
    return tree.lstat(root, rel) or entry


def make_link(root: str, rel: str, target: str, expect: ExpectKey) -> Entry:
    parents(root, rel)
    tmp = temp_name(rel)
    os.symlink(target, tree.local(root, tmp))
    try:
        return _place(root, tmp, rel, expect)
    except BaseException:
        discard(root, tmp)
        raise


def remove(root: str, rel: str, expect: ExpectKey) -> None:
    check(root, rel, expect)
    try:
        if _is_dir(expect):
            os.rmdir(tree.local(root, rel))
        else:
            os.unlink(tree.local(root, rel))
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise Changed(rel) from e  # something new inside: it syncs first
        raise


def check_rename(root: str, src: str, dst: str, expect: ExpectKey) -> None:
    """`src` holds `expect`, `dst` is free and its parents are directories."""
    parents(root, dst)
    check(root, src, expect)
    check(root, dst, None)


def rename(root: str, src: str, dst: str, expect: ExpectKey) -> None:
    check_rename(root, src, dst, expect)
    os.rename(tree.local(root, src), tree.local(root, dst))
