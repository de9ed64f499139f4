"""The engine sources bundled into the guest: the committed tree (HEAD) or the working tree.

Builds use the commit by default: several people edit engine/ at once, and a
build should neither pick up a half-saved file nor change when nobody
committed anything. `worktree` bundles local edits, for trying them in a VM; any other value
names a commit (tests pin one so two builds bundle the same engine).
"""

from __future__ import annotations

import ast
import hashlib
import io
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

SOURCES = ("head", "worktree")  # or a commit id
# engine/ and the one top-level package it imports (the .dockerignore rules it shares
# with the app's build-context packer; tests/unit/test_layering.py keeps it stdlib-only).
PACKAGES = ("engine", "patternmatcher")


class EngineSourceError(RuntimeError):
    """The engine sources could not be read."""


def engine_files(repo: Path, source: str) -> tuple[dict[str, bytes], str]:
    """({"engine/...py": content, ...}, version: engine/'s git tree id, or "worktree").

    Besides engine/, every top-level package of the repository that the bundled
    code imports (patternmatcher, shared with the app) comes along.
    """
    head = source != "worktree" and (repo / ".git").exists()
    rev = "HEAD" if source == "head" else source
    commit = (
        _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()
        if head
        else "worktree"
    )
    files: dict[str, bytes] = {}
    wanted, seen = ["engine"], set()
    while wanted:
        package = wanted.pop()
        seen.add(package)
        got = _package_at(repo, commit, package) if head else _package_here(repo, package)
        files.update(got)
        for name in sorted(_imported_tops(got.values()) - seen):
            if (repo / name / "__init__.py").exists():
                wanted.append(name)
    # The version names engine/'s git tree, not the commit: commits elsewhere in the
    # repository leave it (and so the image's manifest) unchanged.
    version = (
        "git-tree:" + _git(repo, "rev-parse", f"{commit}:engine").decode().strip()
        if head
        else commit
    )
    return files, version


def _package_here(repo: Path, package: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted((repo / package).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _package_at(repo: Path, commit: str, package: str) -> dict[str, bytes]:
    data = _git(repo, "archive", "--format=tar", commit, package)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".py"):
                f = tar.extractfile(member)
                assert f is not None
                files[member.name] = f.read()
    return files


def _imported_tops(sources: Iterable[bytes]) -> set[str]:
    """Top-level names of absolute imports in these sources."""
    tops: set[str] = set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                tops.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module.split(".")[0])
    return tops


def digest(files: dict[str, bytes]) -> str:
    """sha256 over every path and content, in path order."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + files[path] + b"\0")
    return h.hexdigest()


def write(files: dict[str, bytes], dest: Path) -> None:
    """Lay the files out under dest (dest/engine/...)."""
    for rel, data in sorted(files.items()):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise EngineSourceError(f"git {' '.join(args)}: {proc.stderr.decode().strip()}")
    return proc.stdout
