"""The client-side context packer: what `docker build` would send, as a tar the engine takes.

The pattern rules themselves are tested against moby's tables in
tests/unit/build/test_build_dockerignore.py (one shared matcher); here the
packer's own choices: what it always sends, how entries are written, and the
errors it gives.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from app.buildcontext import ContextError, included, pack


def tree(root: Path, files: dict[str, str], ignore: str | None = None) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore)
    return root


def members(root: Path, dockerfile: str = "Dockerfile") -> dict[str, tarfile.TarInfo]:
    ctx = pack(root, dockerfile)
    try:
        with tarfile.open(fileobj=ctx.tar) as tar:
            return {m.name: m for m in tar.getmembers()}
    finally:
        ctx.close()


FILES = {
    "Dockerfile": "FROM busybox\n",
    "app.py": "print()\n",
    "secret.env": "K=V\n",
    "src/main.go": "",
    "src/main_test.go": "",
    "node_modules/a/i.js": "",
    "node_modules/keep/i.js": "",
    "docs/README.md": "",
    "docs/guide.md": "",
}


@pytest.mark.parametrize(
    ("patterns", "absent", "present"),
    [
        ("*.env\n", ["secret.env"], ["app.py", "src/main.go"]),
        ("**/*_test.go\n", ["src/main_test.go"], ["src/main.go"]),
        (
            "node_modules\n!node_modules/keep\n",
            ["node_modules/a/i.js", "node_modules/a", "node_modules"],
            ["node_modules/keep", "node_modules/keep/i.js"],
        ),
        ("docs\n!docs/README.md\n", ["docs/guide.md"], ["docs/README.md"]),
        ("# just a comment\n/secret.env\n", ["secret.env"], ["docs/guide.md"]),
        ("*\n!src\n", ["app.py", "docs"], ["src/main.go", "Dockerfile", ".dockerignore"]),
        ("Dockerfile\n.dockerignore\n", [], ["Dockerfile", ".dockerignore"]),
    ],
)
def test_dockerignore_decides_what_is_sent(
    tmp_path: Path, patterns: str, absent: list[str], present: list[str]
) -> None:
    got = members(tree(tmp_path, FILES, patterns))
    for name in absent:
        assert name not in got, name
    for name in present:
        assert name in got, name
    assert sorted(got) == sorted(included(tmp_path))


def test_entries_are_root_owned_links_kept_modes_kept(tmp_path: Path) -> None:
    tree(tmp_path, {"Dockerfile": "FROM busybox\n", "bin/run.sh": "#!/bin/sh\n"})
    os.chmod(tmp_path / "bin/run.sh", 0o750)
    (tmp_path / "bin/link").symlink_to("run.sh")
    (tmp_path / "outside").symlink_to("/etc")
    got = members(tmp_path)
    assert {m.uid for m in got.values()} == {0} and {m.gid for m in got.values()} == {0}
    assert {m.uname for m in got.values()} == {""}
    assert got["bin/run.sh"].mode == 0o750 and got["bin/run.sh"].size == len("#!/bin/sh\n")
    assert got["bin/link"].issym() and got["bin/link"].linkname == "run.sh"
    assert got["outside"].issym() and "outside/passwd" not in got  # never followed
    assert got["bin"].isdir()


def test_context_size_is_the_tar_size(tmp_path: Path) -> None:
    tree(tmp_path, {"Dockerfile": "FROM busybox\n", "big.bin": "x" * 100_000})
    ctx = pack(tmp_path)
    try:
        assert ctx.size == len(ctx.tar.read()) and ctx.files == 2
    finally:
        ctx.close()


def test_a_dockerfile_outside_the_context_is_added_under_a_generated_name(
    tmp_path: Path,
) -> None:
    ctx_dir = tree(tmp_path / "ctx", {"a.txt": "a"})
    (tmp_path / "Dockerfile.web").write_text("FROM busybox\nCOPY a.txt /\n")
    ctx = pack(ctx_dir, "../Dockerfile.web")
    try:
        assert ctx.dockerfile.startswith(".dockerfile.")
        with tarfile.open(fileobj=ctx.tar) as tar:
            f = tar.extractfile(ctx.dockerfile)
            assert f is not None and f.read() == b"FROM busybox\nCOPY a.txt /\n"
    finally:
        ctx.close()


def test_an_ignored_dockerfile_in_a_subdirectory_is_still_sent(tmp_path: Path) -> None:
    tree(tmp_path, {"build/Dockerfile.dev": "FROM busybox\n", "build/other": ""}, "build\n")
    got = members(tmp_path, "build/Dockerfile.dev")
    assert "build/Dockerfile.dev" in got and "build/other" not in got


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="is not a directory"):
        pack(tmp_path / "missing")
    tree(tmp_path, {"Dockerfile": ""}, "ok\n[z-a\n")
    with pytest.raises(ContextError, match=r"\.dockerignore line 2: syntax error in pattern"):
        pack(tmp_path)
    with pytest.raises(ContextError, match=r"Dockerfile .*nope.* not found"):
        pack(tmp_path / "", "../nope")
