"""Resolve Docker's `--user` against the container's own passwd and group files.

Runs after pivot_root, so "/etc/passwd" is the image's, exactly as runc's
GetExecUser does it: a name must exist, a number need not (gid 0 then), an
explicit group replaces the primary gid and suppresses supplementary groups,
which otherwise come from every /etc/group line listing the user by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import EngineError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ExecUser:
    uid: int = 0
    gid: int = 0
    sgids: list[int] = field(default_factory=list)
    home: str = "/"


def _rows(text: bytes | None) -> list[list[str]]:
    if not text:
        return []
    rows = []
    for line in text.decode(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve(spec_user: str, passwd: bytes | None, group: bytes | None) -> ExecUser:
    """Docker's user string -> ids; unknown names raise EngineError with Docker's words."""
    user_arg, _, group_arg = spec_user.partition(":")
    user_arg = user_arg or "0"
    result = ExecUser()
    uid_num = _int(user_arg)
    matched_name = ""
    for row in _rows(passwd):
        if len(row) < 4:
            continue
        name, uid_s, gid_s = row[0], row[2], row[3]
        if (uid_num is None and name == user_arg) or (
            uid_num is not None and _int(uid_s) == uid_num
        ):
            result.uid = _int(uid_s) or 0
            result.gid = _int(gid_s) or 0
            result.home = row[5] if len(row) > 5 and row[5] else "/"
            matched_name = name
            break
    else:
        if uid_num is None:
            raise EngineError(f"unable to find user {user_arg}: no matching entries in passwd file")
        result.uid = uid_num
    if not group_arg and not matched_name:
        return result
    groups = _rows(group)
    if group_arg:
        gid_num = _int(group_arg)
        for row in groups:
            by_number = gid_num is not None and _int(row[2]) == gid_num
            if len(row) >= 3 and (row[0] == group_arg or by_number):
                result.gid = _int(row[2]) or 0
                return result
        if gid_num is None:
            raise EngineError(
                f"unable to find group {group_arg}: no matching entries in group file"
            )
        result.gid = gid_num
        return result
    for row in groups:
        if len(row) >= 4 and matched_name in row[3].split(","):
            gid = _int(row[2])
            if gid is not None and gid not in result.sgids:
                result.sgids.append(gid)
    return result


def with_home(env: list[str], home: str) -> list[str]:
    """Docker sets HOME from passwd unless the image or the user already did."""
    if any(e.startswith("HOME=") for e in env):
        return env
    return [*env, f"HOME={home}"]


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """`docker exec -e` overrides the container's variables of the same name."""
    out: dict[str, str] = {}
    for item in [*base, *extra]:
        key = item.split("=", 1)[0]
        out[key] = item
    return list(out.values())
