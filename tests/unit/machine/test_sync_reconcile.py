"""Sync passes between two local folders: the planner and the executor together, with the
host's file operations standing in for both sides (the SFTP side is tested for real in
tests/integration/test_share_sync.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from machine.sync import fsops
from machine.sync.errors import Changed, EmptySide, UnsafePath
from machine.sync.ignore import IgnoreRules
from machine.sync.index import Index
from machine.sync.reconcile import EMPTIED_MIN, Reconciler, conflict_name, minimal_scopes
from machine.sync.sides import HostSide

T = TypeVar("T")


class Pair:
    def __init__(self, tmp: Path) -> None:
        self.a, self.b = tmp / "a", tmp / "b"
        self.a.mkdir()
        self.b.mkdir()
        rules = IgnoreRules()
        self.host, self.guest = HostSide(str(self.a), rules), HostSide(str(self.b), rules)
        self.guest.hostname = "theguest"
        self.index = Index(tmp / "index.json", str(self.a), str(self.b))
        self.log: list[str] = []

    def sync(self, *scopes: str) -> dict[str, str]:
        result = Reconciler(self.host, self.guest, self.index, self.log.append).run(scopes or ("",))
        return result.errors

    def tree(self, root: Path) -> dict[str, str]:
        out = {}
        for dirpath, dirs, files in os.walk(root):
            for name in files + [d for d in dirs if (Path(dirpath) / d).is_symlink()]:
                p = Path(dirpath) / name
                rel = str(p.relative_to(root))
                out[rel] = "->" + os.readlink(p) if p.is_symlink() else p.read_text()
        return out


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_first_sync_merges_both_folders(pair: Pair) -> None:
    (pair.a / "only-host").write_text("h")
    (pair.b / "sub").mkdir()
    (pair.b / "sub" / "only-guest").write_text("g")
    (pair.a / "same").write_text("same")
    (pair.b / "same").write_text("same")
    (pair.a / "link").symlink_to("/etc/passwd")  # out of the share: kept as a link
    assert pair.sync() == {}
    assert pair.tree(pair.a) == pair.tree(pair.b)
    assert pair.tree(pair.b)["link"] == "->/etc/passwd"
    assert pair.sync() == {} and pair.tree(pair.a) == pair.tree(pair.b)


def test_only_changed_files_are_hashed(pair: Pair) -> None:
    for i in range(20):
        (pair.a / f"f{i}").write_text(str(i))
    pair.sync()
    before = (pair.host.hashed, pair.guest.hashed)
    assert pair.sync() == {}
    assert (pair.host.hashed, pair.guest.hashed) == before  # nothing changed: no hash
    (pair.a / "f3").write_text("changed")
    (pair.a / "new").write_text("new")  # new and nothing deleted: sent, not hashed first
    pair.sync()
    assert (pair.host.hashed - before[0], pair.guest.hashed - before[1]) == (1, 0)
    assert (pair.b / "f3").read_text() == "changed"


def test_a_touch_without_a_change_is_not_sent(pair: Pair) -> None:
    (pair.a / "f").write_text("x")
    pair.sync()
    inode = (pair.b / "f").stat().st_ino
    os.utime(pair.a / "f", (1, 1))
    pair.sync()
    assert (pair.b / "f").stat().st_ino == inode
    assert pair.index.get("f").key("host") == pair.host.stat(["f"])["f"].key()  # type: ignore[union-attr]


def test_a_moved_file_is_renamed_not_sent(pair: Pair) -> None:
    (pair.a / "d").mkdir()
    (pair.a / "d" / "big").write_text("x" * 1000)
    pair.sync()
    inode = (pair.b / "d" / "big").stat().st_ino
    (pair.a / "e").mkdir()
    (pair.a / "d" / "big").rename(pair.a / "e" / "big2")
    pair.sync()
    assert (pair.b / "e" / "big2").stat().st_ino == inode
    assert not (pair.b / "d" / "big").exists()


def test_a_conflict_keeps_both_versions(pair: Pair) -> None:
    (pair.a / "n.txt").write_text("base")
    pair.sync()
    (pair.a / "n.txt").write_text("host version")
    (pair.b / "n.txt").write_text("guest version")
    os.utime(pair.b / "n.txt", (1, 1))  # the guest's edit is the older one: it loses
    pair.sync()
    for root in (pair.a, pair.b):
        files = pair.tree(root)
        (aside,) = [n for n in files if n != "n.txt"]
        assert re.fullmatch(r"n\.txt\.conflict-theguest-\d{8}-\d{6}", aside)
        assert (files["n.txt"], files[aside]) == ("host version", "guest version")
    assert any("conflict on n.txt" in line for line in pair.log)
    assert pair.sync() == {} and pair.tree(pair.a) == pair.tree(pair.b)


def test_a_directory_beats_a_file(pair: Pair) -> None:
    (pair.a / "x").mkdir()
    (pair.a / "x" / "inside").write_text("in")
    (pair.b / "x").write_text("a file in the guest")
    pair.sync()
    for root in (pair.a, pair.b):
        files = pair.tree(root)
        assert files["x/inside"] == "in"
        (aside,) = [n for n in files if n.startswith("x.conflict-")]
        assert files[aside] == "a file in the guest"


def test_an_edit_made_during_the_pass_is_never_overwritten(pair: Pair) -> None:
    (pair.a / "f").write_text("v1")
    pair.sync()
    (pair.a / "f").write_text("v2 from the host")

    class Racy(HostSide):
        def _guard(self, fn: Callable[..., T], *args: Any) -> T:
            if fn is fsops.commit:
                (pair.b / "f").write_text("edited in the guest meanwhile")
            return super()._guard(fn, *args)

    pair.guest = Racy(str(pair.b), IgnoreRules())
    assert pair.sync() == {}  # skipped, to be looked at again
    assert (pair.b / "f").read_text() == "edited in the guest meanwhile"
    assert (pair.a / "f").read_text() == "v2 from the host"
    assert not [n for n in os.listdir(pair.b) if n.startswith(".dysync-")]


def test_a_deleted_directory_with_an_unsynced_file_keeps_it(pair: Pair) -> None:
    (pair.a / "d").mkdir()
    (pair.a / "d" / "old").write_text("old")
    pair.sync()
    (pair.b / "d" / "fresh").write_text("new in the guest")
    (pair.a / "d" / "old").unlink()
    (pair.a / "d").rmdir()
    pair.sync()
    pair.sync()
    assert (pair.b / "d" / "fresh").read_text() == "new in the guest"
    assert (pair.a / "d" / "fresh").read_text() == "new in the guest"
    assert not (pair.b / "d" / "old").exists()


def test_never_writes_through_a_parent_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(outside)
    side = HostSide(str(root), IgnoreRules())
    src = tmp_path / "src"
    src.write_text("x")
    with src.open("rb") as f, pytest.raises(UnsafePath, match="escape"):
        side.write_file("escape/evil", f, 0o644, 0, 1, None)
    assert list(outside.iterdir()) == []


def test_a_deletion_checks_what_it_deletes(tmp_path: Path) -> None:
    side = HostSide(str(tmp_path), IgnoreRules())
    (tmp_path / "f").write_text("x")
    with pytest.raises(Changed):
        side.remove("f", ("f", 999, 0, 0o644))
    assert (tmp_path / "f").exists()


def test_scoped_passes(pair: Pair) -> None:
    (pair.a / "x").mkdir()
    (pair.a / "x" / "1").write_text("1")
    (pair.a / "y").write_text("y")
    pair.sync("x")
    assert pair.tree(pair.b) == {"x/1": "1"}
    assert minimal_scopes(["x/1", "x", "y", "xy"]) == ["x", "xy", "y"]
    assert minimal_scopes(["a", ""]) == [""]


def test_conflict_names_keep_to_safe_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("machine.sync.reconcile.time.strftime", lambda _: "20260102-030405")
    name = conflict_name("dir/a.txt", "my laptop/é", lambda _: False)
    assert name == "dir/a.txt.conflict-my_laptop__-20260102-030405"
    taken = {name}
    assert conflict_name("dir/a.txt", "my laptop/é", taken.__contains__) == name + "-2"


def test_an_emptied_side_is_held_not_mirrored(pair: Pair) -> None:
    names = [f"f{i}" for i in range(EMPTIED_MIN)]
    for name in names:
        (pair.a / name).write_text(name)
    pair.sync()
    for name in names:
        (pair.b / name).unlink()
    with pytest.raises(EmptySide, match=r"guest's folder .* is empty") as e:
        pair.sync()
    assert "remove" in e.value.hint and str(pair.index.path) in e.value.hint
    assert sorted(os.listdir(pair.a)) == names
    (pair.b / "f0").write_text("f0")  # one file back: the other deletions are mirrored
    pair.sync()
    assert sorted(os.listdir(pair.a)) == ["f0"]


def test_a_side_whose_folder_was_missing_is_held(pair: Pair, tmp_path: Path) -> None:
    (pair.a / "only").write_text("1")
    pair.sync()
    os.unlink(pair.b / "only")
    os.rmdir(pair.b)
    guest = HostSide(str(pair.b), IgnoreRules())
    guest.begin()  # the folder is made again, and marked so
    pair.guest = guest
    with pytest.raises(EmptySide):
        pair.sync()
    assert (pair.a / "only").exists()


def test_emptying_a_small_share_by_hand_is_mirrored(pair: Pair) -> None:
    (pair.a / "only").write_text("1")
    pair.sync()
    os.unlink(pair.a / "only")
    pair.sync()
    assert os.listdir(pair.b) == []
