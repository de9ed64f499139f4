"""The sync planner: what to do for each (host change, guest change) pair, and the order
and pairing (renames) of the resulting operations."""

from __future__ import annotations

import pytest

from machine.sync.index import Version
from machine.sync.planner import GUEST, HOST, Action, Decision, Op, OpKind, decide, plan

A = Version("f", "aaa", 0o644)
B = Version("f", "bbb", 0o644)
C = Version("f", "ccc", 0o644)
A_EXEC = Version("f", "aaa", 0o755)
D = Version("d")
L = Version("l", "../target")


@pytest.mark.parametrize(
    ("base", "host", "guest", "expected"),
    [
        (A, A, A, Decision(Action.NONE)),
        (A, B, A, Decision(Action.PUSH)),  # modified on the host
        (A, A, B, Decision(Action.PULL)),  # modified in the guest
        (A, A_EXEC, A, Decision(Action.PUSH)),  # a chmod is a change
        (A, None, A, Decision(Action.PUSH)),  # deleted on the host: delete in the guest
        (A, A, None, Decision(Action.PULL)),
        (A, B, B, Decision(Action.RECORD)),  # the same edit on both sides
        (A, None, None, Decision(Action.FORGET)),
        (A, None, B, Decision(Action.PULL)),  # deleted vs edited: the edit is restored
        (A, B, None, Decision(Action.PUSH)),
        (A, B, C, Decision(Action.CONFLICT, HOST)),  # `newer` is the host here
        (A, D, B, Decision(Action.CONFLICT, HOST)),  # a directory always wins
        (A, B, D, Decision(Action.CONFLICT, GUEST)),
        (None, A, None, Decision(Action.PUSH)),  # created on one side
        (None, None, A, Decision(Action.PULL)),
        (None, A, A, Decision(Action.RECORD)),  # created identical on both (first sync)
        (None, A, B, Decision(Action.CONFLICT, HOST)),
        (None, D, D, Decision(Action.RECORD)),
        (D, D, D, Decision(Action.NONE)),
        (L, Version("l", "elsewhere"), L, Decision(Action.PUSH)),  # a link's target changed
        (A, L, A, Decision(Action.PUSH)),  # a file became a link
    ],
)
def test_decide(
    base: Version | None, host: Version | None, guest: Version | None, expected: Decision
) -> None:
    assert decide(base, host, guest) == expected


def test_the_newer_modification_wins_a_conflict() -> None:
    assert decide(A, B, C, newer=GUEST) == Decision(Action.CONFLICT, GUEST)
    assert decide(A, D, C, newer=GUEST) == Decision(Action.CONFLICT, HOST)  # but a dir beats it


def test_an_unhashed_new_file_is_still_sent() -> None:
    assert decide(None, Version("f", "", 0o644), None) == Decision(Action.PUSH)


def test_plan_orders_directories_copies_and_deletions() -> None:
    base = {"old": D, "old/x": A, "old/x/deep": A}
    host = {"new": D, "new/sub": D, "new/sub/f": B}
    ops = plan(sorted({*base, *host}), {**base, "old/x": D}, host, {**base, "old/x": D})
    assert ops == [
        Op(OpKind.MKDIR, "new", GUEST),
        Op(OpKind.MKDIR, "new/sub", GUEST),
        Op(OpKind.COPY, "new/sub/f", GUEST),
        Op(OpKind.DELETE, "old/x/deep", GUEST),
        Op(OpKind.RMDIR, "old/x", GUEST),
        Op(OpKind.RMDIR, "old", GUEST),
    ]


def test_a_deletion_and_a_creation_of_the_same_content_become_a_rename() -> None:
    base = {"a.txt": A, "keep": B}
    host = {"b.txt": A, "keep": B}  # a.txt moved to b.txt on the host
    guest = {"a.txt": A, "keep": B}
    ops = plan(["a.txt", "b.txt", "keep"], base, host, guest)
    assert ops == [Op(OpKind.RENAME, "b.txt", GUEST, src="a.txt")]


def test_no_rename_when_the_content_differs_or_is_unknown() -> None:
    base = {"a.txt": A}
    for new in (B, Version("f", "", 0o644)):
        ops = plan(["a.txt", "b.txt"], base, {"b.txt": new}, {"a.txt": A})
        assert [op.kind for op in ops] == [OpKind.COPY, OpKind.DELETE]


def test_renames_pair_one_to_one() -> None:
    base = {"a": A}
    host = {"b": A, "c": A}  # one source, two copies of it
    ops = plan(["a", "b", "c"], base, host, {"a": A})
    assert sorted(op.kind for op in ops) == [OpKind.COPY, OpKind.RENAME]


def test_a_file_replacing_a_directory_waits_for_its_removal() -> None:
    base = {"p": D, "p/child": A}
    host = {"p": B}
    ops = plan(["p", "p/child"], base, host, dict(base))
    assert ops == [Op(OpKind.DELETE, "p/child", GUEST), Op(OpKind.COPY, "p", GUEST)]


def test_conflicts_name_the_losing_side() -> None:
    ops = plan(["f"], {"f": A}, {"f": B}, {"f": C}, newer=lambda _: GUEST)
    assert ops == [Op(OpKind.CONFLICT, "f", HOST)]


def test_index_only_operations() -> None:
    ops = plan(["same", "gone"], {"same": A, "gone": A}, {"same": B}, {"same": B})
    assert ops == [Op(OpKind.FORGET, "gone"), Op(OpKind.RECORD, "same")]
