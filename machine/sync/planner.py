"""What to do with each path, given the last synced version and what each side holds now.

Pure: no I/O, so every (host change, guest change) pair is a unit test. The rules:

    neither side changed             nothing
    one side changed                 that side's version goes to the other (a deletion
                                     too: the other side still holds the synced content)
    both changed, to the same thing  only the index is refreshed (or forgets a deletion)
    one deleted, the other modified  the modification wins and is restored on the side
                                     that deleted: a deletion never destroys an edit
    both modified, differently       a conflict: the winner keeps the name, the loser is
                                     renamed `name.conflict-<host>-<time>` on both sides
                                     (nothing is lost). A directory always beats a file or
                                     link; otherwise the newer modification wins, the host
                                     on a tie.

Renames: a deletion and a creation on the same side, in the same pass, of the same
content (hash and mode) become one rename on the other side, so a moved file is not sent
again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from machine.sync.index import Version
from machine.sync.tree import DIR, FILE

HOST, GUEST = "host", "guest"


def other(side: str) -> str:
    return GUEST if side == HOST else HOST


class Action(enum.StrEnum):
    NONE = "none"
    RECORD = "record"  # both sides agree on a new version
    FORGET = "forget"  # both sides deleted it
    PUSH = "push"  # host -> guest
    PULL = "pull"  # guest -> host
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Decision:
    action: Action
    winner: str = ""  # for CONFLICT: the side that keeps the name


def decide(
    base: Version | None, host: Version | None, guest: Version | None, newer: str = HOST
) -> Decision:
    """`newer` is the side whose modification is more recent (used only for a conflict)."""
    host_changed, guest_changed = host != base, guest != base
    if not host_changed and not guest_changed:
        return Decision(Action.NONE)
    if not guest_changed:
        return Decision(Action.PUSH)
    if not host_changed:
        return Decision(Action.PULL)
    if host == guest:
        return Decision(Action.FORGET if host is None else Action.RECORD)
    if host is None:
        return Decision(Action.PULL)
    if guest is None:
        return Decision(Action.PUSH)
    if host.kind == DIR:
        return Decision(Action.CONFLICT, HOST)
    if guest.kind == DIR:
        return Decision(Action.CONFLICT, GUEST)
    return Decision(Action.CONFLICT, newer)


class OpKind(enum.StrEnum):
    RECORD = "record"  # index only
    FORGET = "forget"  # index only
    CONFLICT = "conflict"  # `side` is the loser's side
    MKDIR = "mkdir"  # a directory copied to `side`
    RENAME = "rename"  # on `side`, `src` -> `path`
    COPY = "copy"  # a file or link copied to `side`
    DELETE = "delete"  # a file or link deleted on `side`
    RMDIR = "rmdir"  # a directory deleted on `side` (once empty)


@dataclass(frozen=True)
class Op:
    kind: OpKind
    path: str
    side: str = ""
    src: str = ""


def _order(op: Op, base: Mapping[str, Version]) -> tuple[int, int, str]:
    depth = op.path.count("/")
    rank = {
        OpKind.RECORD: 0,
        OpKind.FORGET: 0,
        OpKind.CONFLICT: 1,
        OpKind.MKDIR: 2,
        OpKind.RENAME: 3,
        OpKind.COPY: 4,
        OpKind.DELETE: 5,
        OpKind.RMDIR: 6,
    }[op.kind]
    if op.kind == OpKind.COPY and (b := base.get(op.path)) is not None and b.kind == DIR:
        rank = 7  # a file replacing a directory waits for the directory's removal
    if op.kind == OpKind.RMDIR:
        depth = -depth  # deepest first
    return rank, depth, op.path


def _transfer(path: str, to: str, source: Version | None) -> Op:
    if source is None:
        return Op(OpKind.DELETE, path, to)
    return Op(OpKind.MKDIR if source.kind == DIR else OpKind.COPY, path, to)


def _renames(ops: list[Op], base: Mapping[str, Version], sources: Mapping[str, Version]) -> None:
    """Pair each file deletion on a side with a creation on that side of the same content."""
    created: dict[tuple[str, Version], list[int]] = {}
    for i, op in enumerate(ops):
        v = sources.get(op.path)
        if op.kind == OpKind.COPY and op.path not in base and v and v.kind == FILE and v.digest:
            created.setdefault((op.side, v), []).append(i)
    replaced: dict[int, Op] = {}
    for i, op in enumerate(ops):
        old = base.get(op.path)
        if op.kind != OpKind.DELETE or old is None or old.kind != FILE:
            continue
        candidates = created.get((op.side, old))
        if candidates:
            j = candidates.pop(0)
            replaced[j] = Op(OpKind.RENAME, ops[j].path, op.side, op.path)
            replaced[i] = Op(OpKind.RECORD, "")  # dropped below
    ops[:] = [replaced.get(i, op) for i, op in enumerate(ops)]
    ops[:] = [op for op in ops if op.path or op.kind != OpKind.RECORD]


def plan(
    paths: Iterable[str],
    base: Mapping[str, Version],
    host: Mapping[str, Version],
    guest: Mapping[str, Version],
    newer: Callable[[str], str] = lambda _: HOST,
) -> list[Op]:
    """The operations for `paths`, in a safe order: index-only, conflicts, directories
    (parents first), renames, copies, deletions, directory removals (children first)."""
    ops: list[Op] = []
    sources: dict[str, Version] = {}
    for path in paths:
        b, h, g = base.get(path), host.get(path), guest.get(path)
        d = decide(b, h, g, newer(path) if h is not None and g is not None else HOST)
        if d.action == Action.NONE:
            continue
        if d.action in (Action.RECORD, Action.FORGET):
            ops.append(Op(OpKind(d.action.value), path))
        elif d.action == Action.CONFLICT:
            ops.append(Op(OpKind.CONFLICT, path, other(d.winner)))
        else:
            to, source = (GUEST, h) if d.action == Action.PUSH else (HOST, g)
            if source is not None:
                sources[path] = source
            op = _transfer(path, to, source)
            if op.kind == OpKind.DELETE and b is not None and b.kind == DIR:
                op = Op(OpKind.RMDIR, path, to)
            ops.append(op)
    _renames(ops, base, sources)
    ops.sort(key=lambda op: _order(op, base))
    return ops
