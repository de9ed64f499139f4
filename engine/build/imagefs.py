"""Read-only questions about a stage's filesystem, answered from its unpacked layers.

COPY needs to know whether its destination is a directory, `--chown` needs
the stage's /etc/passwd and /etc/group, and WORKDIR whether its directory
exists; none of that is worth a container. The layers are overlay lower
dirs, top-most first: the first layer holding a path wins, a 0:0 character
device there is a whiteout (the path was deleted) and an opaque directory
hides what the layers below hold under it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import InvalidParameter

_OPAQUE = "trusted.overlay.opaque"


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def find(layer_dirs: list[str], path: str) -> Path | None:
    """The host path holding image path `path`, or None. Symlinks are not followed."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for layer in layer_dirs:
        candidate = Path(layer, *parts)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            if _hidden_below(layer, parts):
                return None
            continue
        return None if _whiteout(st) else candidate
    return None


def _hidden_below(layer: str, parts: list[str]) -> bool:
    """Whether a whiteout or an opaque dir in `layer` hides `parts` in lower layers."""
    current = Path(layer)
    for comp in parts[:-1]:
        current = current / comp
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return False
        if _whiteout(st) or not stat.S_ISDIR(st.st_mode):
            return True
        if _opaque(current):
            return True
    return False


def is_dir(layer_dirs: list[str], path: str) -> bool:
    found = find(layer_dirs, path)
    return found is not None and found.is_dir() and not found.is_symlink()


def read_text(layer_dirs: list[str], path: str) -> str:
    found = find(layer_dirs, path)
    if found is None or not found.is_file():
        return ""
    return found.read_text(encoding="utf-8", errors="replace")


def _lookup(text: str, name: str, id_field: int) -> int | None:
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > id_field and fields[0] == name and fields[id_field].isdigit():
            return int(fields[id_field])
    return None


def resolve_chown(layer_dirs: list[str], spec: str) -> tuple[int, int]:
    """`--chown=user[:group]` as numeric ids; names come from the stage's own files."""
    user, sep, group = spec.partition(":")
    if not user:
        raise InvalidParameter(f"invalid --chown value {spec!r}: give user[:group]")
    passwd = read_text(layer_dirs, "/etc/passwd")
    if user.isdigit():
        uid = int(user)
        default_gid = _gid_of_uid(passwd, uid)
    else:
        found = _lookup(passwd, user, 2)
        if found is None:
            raise InvalidParameter(
                f"unable to convert uid/gid chown string to host mapping: can't find uid for "
                f"user {user}: no such user: {user}"
            )
        uid = found
        default_gid = _lookup(passwd, user, 3) or 0
    if not sep:
        return uid, uid if user.isdigit() else default_gid
    if group.isdigit():
        return uid, int(group)
    gid = _lookup(read_text(layer_dirs, "/etc/group"), group, 2)
    if gid is None:
        raise InvalidParameter(
            f"unable to convert uid/gid chown string to host mapping: can't find gid for "
            f"group {group}: no such group: {group}"
        )
    return uid, gid


def _gid_of_uid(passwd: str, uid: int) -> int:
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return uid
