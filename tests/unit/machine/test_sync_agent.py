"""The guest agent as the guest runs it: the zip application under a bare interpreter
(-I -S: no site-packages at all), speaking JSON lines, with real inotify."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import pytest

from machine.sync import agentpack

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the guest agent runs in a Linux guest"
)


def test_the_agent_uses_only_the_standard_library() -> None:
    with zipfile.ZipFile(BytesIO(agentpack.build())) as zf:
        for name in zf.namelist():
            tree = ast.parse(zf.read(name))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = [node.module or ""]
                else:
                    continue
                for mod in mods:
                    top = mod.split(".")[0]
                    assert top in sys.stdlib_module_names or mod.startswith(
                        ("machine.sync", "__future__")
                    ), f"{name} imports {mod}"


def test_the_same_code_gives_the_same_name() -> None:
    assert agentpack.file_name() == agentpack.file_name()
    assert agentpack.file_name().startswith("dockyard-sync-")


def _line(stream: IO[bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(stream.readline())
    return doc


@pytest.fixture
def agent(tmp_path: Path) -> Any:
    pyz = tmp_path / agentpack.file_name()
    agentpack.write(pyz)
    root = tmp_path / "root"
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(pyz)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"root": str(root), "ignore": ["*.swp"]}).encode() + b"\n")
    proc.stdin.flush()
    hello = _line(proc.stdout)
    try:
        yield proc, root, hello
    finally:
        proc.kill()
        proc.wait()


def _ask(proc: Any, doc: dict[str, Any]) -> dict[str, Any]:
    proc.stdin.write(json.dumps(doc).encode() + b"\n")
    proc.stdin.flush()
    while True:
        reply = _line(proc.stdout)
        if reply.get("id") == doc["id"]:
            return reply


def test_requests(agent: Any) -> None:
    proc, root, hello = agent
    assert hello["hello"] == 1 and hello["hostname"]
    (root / "d").mkdir()
    (root / "d" / "f").write_text("abc")
    (root / "d" / "x.swp").write_text("ignored")
    (root / "l").symlink_to("d/f")
    scan = _ask(proc, {"id": 1, "op": "scan", "paths": [""]})["entries"]
    assert sorted(scan) == ["d", "d/f", "l"]
    assert scan["d/f"][:2] == ["f", 3] and scan["l"][0] == "l" and scan["l"][4] == "d/f"
    stat = _ask(proc, {"id": 2, "op": "stat", "paths": ["d", "missing"]})["entries"]
    assert list(stat) == ["d"]
    digests = _ask(proc, {"id": 3, "op": "hash", "paths": ["d/f", "l", "missing"]})["digests"]
    assert digests == {
        "d/f": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "l": None,  # a link is never followed
        "missing": None,
    }
    assert _ask(proc, {"id": 4, "op": "df", "paths": []})["free"] > 0
    assert "unknown op" in _ask(proc, {"id": 5, "op": "nope"})["error"]


def test_events_are_recursive_and_coalesced(agent: Any) -> None:
    proc, root, _ = agent
    (root / "new" / "deeper").mkdir(parents=True)
    time.sleep(0.3)  # its watch is in place once it has been reported
    first = _line(proc.stdout)["ev"]
    assert "new" in first
    for i in range(50):
        (root / "new" / "deeper" / f"f{i}").write_text("x")
    (root / "skip.swp").write_text("x")
    seen: set[str] = set()
    while len(seen) < 50:
        seen.update(_line(proc.stdout)["ev"])
    assert seen >= {f"new/deeper/f{i}" for i in range(50)}
    assert "skip.swp" not in seen


def test_the_agent_ends_with_its_input(tmp_path: Path, agent: Any) -> None:
    proc, _, _ = agent
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


def test_guarded_changes(agent: Any) -> None:
    proc, root, _ = agent
    (root / "d").mkdir()
    (root / "d" / ".dysync-1.tmp").write_text("new")
    good = "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"  # sha256("new")
    commit = {"op": "commit", "tmp": "d/.dysync-1.tmp", "path": "d/f", "mode": 0o600}
    # the target appeared since the pass looked: nothing replaced, the copy discarded
    (root / "d" / "f").write_text("user's")
    reply = _ask(proc, {"id": 1, **commit, "digest": good, "mtime_ns": 5, "expect": None})
    assert reply.get("changed") and (root / "d" / "f").read_text() == "user's"
    assert not (root / "d" / ".dysync-1.tmp").exists()
    # a copy that lost bytes on the way is refused
    (root / "d" / "f").unlink()
    (root / "d" / ".dysync-1.tmp").write_text("ne")
    reply = _ask(proc, {"id": 2, **commit, "digest": good, "mtime_ns": 5, "expect": None})
    assert reply.get("short") and not (root / "d" / "f").exists()
    # the right one takes the name, with its mode and mtime
    (root / "d" / ".dysync-1.tmp").write_text("new")
    reply = _ask(proc, {"id": 3, **commit, "digest": good, "mtime_ns": 5, "expect": None})
    assert reply["entry"] == ["f", 3, 5, 0o600, ""]
    assert (root / "d" / "f").read_text() == "new"
    # a parent that is a link is never written through
    (root / "out").symlink_to("/tmp")
    assert _ask(proc, {"id": 4, "op": "parents", "path": "out/x"})["unsafe"] == "out"
    assert _ask(proc, {"id": 5, "op": "mkdir", "path": "out/x", "mode": 0o755})["unsafe"]
    # removals and renames check what they touch
    assert _ask(proc, {"id": 6, "op": "remove", "path": "d/f", "expect": ["f", 3, 6, 0o600]})[
        "changed"
    ]
    reply = _ask(proc, {"id": 7, "op": "rename", "src": "d/f", "path": "e/g", "expect": None})
    assert reply.get("changed") and (root / "d" / "f").exists()
    key = ["f", 3, 5, 0o600]
    assert _ask(proc, {"id": 8, "op": "rename", "src": "d/f", "path": "e/g", "expect": key}) == {
        "id": 8
    }
    assert (root / "e" / "g").read_text() == "new"
    assert _ask(proc, {"id": 9, "op": "remove", "path": "e/g", "expect": key}) == {"id": 9}
    assert _ask(proc, {"id": 10, "op": "sync"}) == {"id": 10}
    assert not (root / "e" / "g").exists()
