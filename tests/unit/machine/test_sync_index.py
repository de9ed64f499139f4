"""The sync index: what both sides held after the last sync, persisted per share."""

from __future__ import annotations

import stat
from pathlib import Path

from machine.sync.index import Index, Record, Version


def _record(digest: str) -> Record:
    return Record(Version("f", digest, 0o644), ("f", 3, 10, 0o644), ("f", 3, 20, 0o644))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "t.index.json"
    index = Index(path, "/h", "/g")
    index.put("a/b.txt", _record("ab"))
    index.put("d", Record(Version("d"), ("d",), ("d",)))
    index.put("l", Record(Version("l", "../x"), ("l", "../x"), ("l", "../x")))
    index.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Index.load(path, "/h", "/g")
    assert again.records == index.records
    assert again.get("a/b.txt") == _record("ab")
    assert again.get("a/b.txt").key("guest") == ("f", 3, 20, 0o644)  # type: ignore[union-attr]


def test_another_folder_pair_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.index.json"
    index = Index(path, "/h", "/g")
    index.put("x", _record("x"))
    index.save()
    assert Index.load(path, "/h", "/other").records == {}
    assert Index.load(path, "/h", "/g").records != {}


def test_a_damaged_or_missing_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.index.json"
    assert Index.load(path, "/h", "/g").records == {}
    path.write_text("{not json")
    assert Index.load(path, "/h", "/g").records == {}


def test_under_a_scope(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.json", "/h", "/g")
    for rel in ("a", "a/b", "a/b/c", "ab", "z"):
        index.put(rel, _record(rel))
    assert sorted(index.under(["a"])) == ["a", "a/b", "a/b/c"]
    assert sorted(index.under(["a/b/c", "z", "missing"])) == ["a/b/c", "z"]
    assert sorted(index.under(["x", ""])) == ["a", "a/b", "a/b/c", "ab", "z"]


def test_save_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "i.json"
    index = Index(path, "/h", "/g")
    index.save()
    assert not path.exists()
    index.put("x", _record("x"))
    index.save()
    index.forget("missing")
    assert not index.dirty
