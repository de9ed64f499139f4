"""One sync pass over some scopes: scan both sides, hash only the candidates, plan, apply.

A scope is a path whose subtree is looked at ("" = the whole share). A path is a hashing
candidate only when its lstat key differs from the one recorded at the last sync and the
hash can change the decision: the path was synced before, the other side holds a file
there too, or a file of that size was deleted on the same side (a possible rename). A new
file on one side is simply sent, and hashed on the way.

Each operation is applied on its own: a failure (a full disk, a parent that is a link)
is reported for that path and leaves it pending, and a path that changed under the pass
is looked at again; only a lost connection ends the pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import paramiko

from machine.sync.errors import Changed, ConnectionLost, EmptySide, SyncError
from machine.sync.index import Index, Record, Version
from machine.sync.planner import GUEST, HOST, Op, OpKind, other, plan
from machine.sync.sides import Side
from machine.sync.tree import DIR, FILE, LINK, Entry

Log = Callable[[str], None]
EMPTIED_MIN = 10  # an empty side with this many synced paths is held, not mirrored


@dataclass
class PassResult:
    applied: int = 0
    retry: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)


def minimal_scopes(scopes: Iterable[str]) -> list[str]:
    """Drop every scope that lies inside another one."""
    kept: list[str] = []
    for scope in sorted(set(scopes)):
        if scope == "":
            return [""]
        if not any(scope.startswith(k + "/") for k in kept):
            kept.append(scope)
    return kept


def conflict_name(rel: str, hostname: str, taken: Callable[[str], bool]) -> str:
    """`name.conflict-<host>-<YYYYmmdd-HHMMSS>`, with -2, -3 ... if that is taken too."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", hostname)[:32] or "unknown"
    base = f"{rel}.conflict-{host}-{time.strftime('%Y%m%d-%H%M%S')}"
    name, n = base, 1
    while taken(name):
        n += 1
        name = f"{base}-{n}"
    return name


def _version(entry: Entry, digest: str = "") -> Version:
    if entry.kind == FILE:
        return Version(FILE, digest, entry.mode)
    if entry.kind == LINK:
        return Version(LINK, entry.target)
    return Version(DIR)


class Reconciler:
    def __init__(self, host: Side, guest: Side, index: Index, log: Log) -> None:
        self.sides = {HOST: host, GUEST: guest}
        self.index = index
        self.log = log
        self.seen: dict[str, dict[str, Entry]] = {HOST: {}, GUEST: {}}
        self.versions: dict[str, dict[str, Version]] = {HOST: {}, GUEST: {}}

    # -- looking ---------------------------------------------------------------------

    def _check_emptied(self) -> None:
        """Refuse to mirror a side that lost everything: its folder was missing (made
        afresh), or is empty although many paths were synced. That is a wiped or
        unmounted disk far more often than a user's choice."""
        synced = len(self.index.records)
        for side, obj in self.sides.items():
            emptied = synced and not self.seen[side] and self.seen[other(side)]
            if emptied and (obj.created or synced >= EMPTIED_MIN):
                raise EmptySide(side, obj.root, synced, str(self.index.path))
        for obj in self.sides.values():
            obj.created = False  # a full pass has looked: from now on it is the share's

    def _candidates(self, paths: set[str]) -> dict[str, list[str]]:
        seen, index = self.seen, self.index
        gone_sizes: dict[str, set[object]] = {HOST: set(), GUEST: set()}
        for rel in paths:
            rec = index.get(rel)
            for side in (HOST, GUEST):
                if rec and rec.version.kind == FILE and rel not in seen[side]:
                    gone_sizes[side].add(rec.key(side)[1])
        need: dict[str, list[str]] = {HOST: [], GUEST: []}
        for rel in sorted(paths):
            rec = index.get(rel)
            for side in (HOST, GUEST):
                entry = seen[side].get(rel)
                if entry is None:
                    continue
                if rec is not None and entry.key() == rec.key(side):
                    self.versions[side][rel] = rec.version
                    continue
                self.versions[side][rel] = _version(entry)
                twin = seen[other(side)].get(rel)
                if entry.kind == FILE and (
                    rec is not None
                    or (twin is not None and twin.kind == FILE)
                    or entry.size in gone_sizes[side]
                ):
                    need[side].append(rel)
        return need

    def _look(self, scopes: list[str], result: PassResult) -> list[str]:
        for side, obj in self.sides.items():
            obj.begin()
            self.seen[side] = obj.scan(scopes)
            self.versions[side] = {}
        if scopes == [""]:
            self._check_emptied()
        paths = set(self.seen[HOST]) | set(self.seen[GUEST])
        paths.update(self.index.under(scopes))
        for side, rels in self._candidates(paths).items():
            if not rels:
                continue
            for rel, digest in self.sides[side].digests(rels).items():
                if digest is None:  # gone or replaced since the scan: next time
                    result.retry.add(rel)
                    paths.discard(rel)
                else:
                    self.versions[side][rel] = _version(self.seen[side][rel], digest)
        return sorted(paths)

    def _newer(self, rel: str) -> str:
        h, g = self.seen[HOST][rel], self.seen[GUEST][rel]
        return GUEST if g.mtime_ns > h.mtime_ns else HOST

    # -- doing -----------------------------------------------------------------------

    def _record(self, rel: str, version: Version, keys: dict[str, object]) -> None:
        host_key, guest_key = keys[HOST], keys[GUEST]
        assert isinstance(host_key, tuple) and isinstance(guest_key, tuple)
        self.index.put(rel, Record(version, host_key, guest_key))

    def _expect(self, side: str, rel: str) -> tuple[object, ...] | None:
        entry = self.seen[side].get(rel)
        return None if entry is None else entry.key()

    def _transfer(self, rel: str, src_rel: str, to: str, expect: tuple[object, ...] | None) -> None:
        """Copy `src_rel` of the other side to `rel` on side `to`, and record it."""
        frm = other(to)
        source, target = self.sides[frm], self.sides[to]
        entry = self.seen[frm][src_rel]
        if entry.kind == DIR:
            made, version = target.make_dir(rel, entry.mode, expect), Version(DIR)
        elif entry.kind == LINK:
            made, version = target.make_link(rel, entry.target, expect), _version(entry)
        else:
            with source.open_read(src_rel, entry.size) as f:
                made, digest = target.write_file(
                    rel, f, entry.mode, entry.mtime_ns, entry.size, expect
                )
            version = Version(FILE, digest, entry.mode)
        self._record(rel, version, {frm: entry.key(), to: made.key()})

    def _conflict(self, rel: str, loser: str) -> None:
        """Rename the loser's version aside, then give each side the other's version."""
        winner = other(loser)
        lose = self.sides[loser]
        lost = self.seen[loser][rel]

        def taken(name: str) -> bool:
            return any(name in self.seen[s] or self.sides[s].stat([name]) for s in (HOST, GUEST))

        aside = conflict_name(rel, lose.hostname, taken)
        lose.rename(rel, aside, lost.key())
        self.index.forget(rel)
        self.seen[loser].pop(rel)
        self.seen[loser][aside] = lost
        self._transfer(rel, rel, loser, None)
        self._transfer(aside, aside, winner, None)
        self.log(f"conflict on {rel}: the {loser}'s version is kept as {aside}")

    def _apply(self, op: Op) -> None:
        rel, to = op.path, op.side
        if op.kind == OpKind.RECORD:
            version = self.versions[HOST][rel]
            keys = {s: self.seen[s][rel].key() for s in (HOST, GUEST)}
            self._record(rel, version, dict(keys))
        elif op.kind == OpKind.FORGET:
            self.index.forget(rel)
        elif op.kind == OpKind.CONFLICT:
            self._conflict(rel, to)
        elif op.kind in (OpKind.MKDIR, OpKind.COPY):
            self._transfer(rel, rel, to, self._expect(to, rel))
        elif op.kind in (OpKind.DELETE, OpKind.RMDIR):
            expect = self._expect(to, rel)
            if expect is not None:
                self.sides[to].remove(rel, expect)
            self.index.forget(rel)
        elif op.kind == OpKind.RENAME:
            old = self.seen[to][op.src]
            self.sides[to].rename(op.src, rel, old.key())
            self.index.forget(op.src)
            frm = other(to)
            self._record(
                rel, self.versions[frm][rel], {frm: self.seen[frm][rel].key(), to: old.key()}
            )

    def _refresh(self, paths: list[str]) -> None:
        """A path touched but not changed (same hash): record its new lstat keys, so the
        next pass does not hash it again."""
        for rel in paths:
            rec = self.index.get(rel)
            h, g = self.seen[HOST].get(rel), self.seen[GUEST].get(rel)
            if rec is None or h is None or g is None:
                continue
            same = self.versions[HOST].get(rel) == rec.version == self.versions[GUEST].get(rel)
            if same and (h.key(), g.key()) != (rec.host_key, rec.guest_key):
                self.index.put(rel, Record(rec.version, h.key(), g.key()))

    def run(self, scopes: Iterable[str]) -> PassResult:
        result = PassResult()
        paths = self._look(minimal_scopes(scopes), result)
        self._refresh(paths)
        ops = plan(
            paths,
            {rel: r.version for rel in paths if (r := self.index.get(rel)) is not None},
            self.versions[HOST],
            self.versions[GUEST],
            self._newer,
        )
        for op in ops:
            try:
                self._apply(op)
                result.applied += 1
            except Changed:
                result.retry.add(op.path)
            except SyncError as e:
                result.errors[op.path] = e.message + (f"\nhint: {e.hint}" if e.hint else "")
            except ConnectionLost:
                raise
            except (OSError, EOFError, paramiko.SSHException) as e:
                if not all(s.alive() for s in self.sides.values()):
                    raise ConnectionLost(str(e)) from e
                result.errors[op.path] = f"{op.kind} {op.path} to the {to_name(op)}: {e}"
        if result.applied:
            for side in self.sides.values():
                side.flush()  # durable before the session saves the index
        return result


def to_name(op: Op) -> str:
    return op.side or "index"
