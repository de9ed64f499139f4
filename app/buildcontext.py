"""The build context a client sends: a tar of the context directory, minus .dockerignore.

What goes in is decided exactly as the docker CLI decides it, with the same
matcher the engine uses (`patternmatcher`): ignored files never leave the
machine (secrets, node_modules), an excluded directory is entered only when
an exception reaches inside it, and the Dockerfile and .dockerignore are
always sent. Owners are written as 0:0 like the CLI's, so the engine's COPY
cache key does not depend on who checked the files out; mtimes stay (the
engine's checksum ignores them). Symlinks are sent as links, never followed.

A Dockerfile outside the context (compose's `dockerfile: ../Dockerfile`) is
added under a generated name, as the CLI does; `Context.dockerfile` is the
name to pass to POST /build.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from patternmatcher import ALWAYS_SENT, BadPattern, DockerIgnore

# Spooled in memory up to this size, then in a temp file.
SPOOL_BYTES = 8 << 20


class ContextError(Exception):
    """The context cannot be packed; the message says which path and what to do."""


@dataclass
class Context:
    tar: IO[bytes]  # positioned at 0
    size: int
    dockerfile: str  # the Dockerfile's name inside the tar
    files: int  # entries written

    def close(self) -> None:
        self.tar.close()


def included(root: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """The paths sent for context `root` (sorted walk order), as `docker build` sends them."""
    try:
        ignore = DockerIgnore.load(root)
    except BadPattern as e:
        raise ContextError(f"{root}/{e.message}") from None
    except OSError as e:
        raise ContextError(f"cannot read {root}/.dockerignore: {e.strerror}") from None
    keep = [*ALWAYS_SENT, dockerfile] if dockerfile else list(ALWAYS_SENT)
    return list(ignore.walk(root, keep))


def _dockerfile_in(root: Path, dockerfile: str) -> tuple[str, Path | None]:
    """(name inside the tar, outside file to add) for the Dockerfile compose names."""
    path = Path(dockerfile)
    full = path if path.is_absolute() else root / path
    try:
        rel = full.resolve().relative_to(root.resolve())
    except ValueError:
        if not full.is_file():
            raise ContextError(f"Dockerfile {full} not found") from None
        return f".dockerfile.{uuid.uuid4().hex[:20]}", full
    return rel.as_posix(), None


def pack(root: Path, dockerfile: str = "Dockerfile") -> Context:
    """The context tar of directory `root`; ContextError when it cannot be read."""
    root = Path(root)
    if not root.is_dir():
        raise ContextError(f"build context {root} is not a directory")
    name, outside = _dockerfile_in(root, dockerfile)
    # Not a with-block: the spool is returned open, and Context.close() closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    count = 0
    try:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in included(root, name):
                count += _add(tar, root / rel, rel)
            if outside is not None:
                count += _add(tar, outside, name)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Context(spool, size, name, count)


def _add(tar: tarfile.TarFile, path: Path, rel: str) -> int:
    """Write one entry (no recursion: the walk lists every path); 0 if it is skipped."""
    try:
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode):
            return 0  # a tar cannot hold a socket; the CLI leaves them out too
        info = tar.gettarinfo(str(path), arcname=rel)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if info.isreg():
            with open(path, "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
    except PermissionError as e:
        raise ContextError(
            f"cannot read {path} for the build context: {e.strerror}; "
            "leave it out with .dockerignore or make it readable"
        ) from None
    except FileNotFoundError:
        return 0  # removed while we walked: the CLI skips it as well
    return 1
