"""Ignore patterns of the sync share mode: gitignore's rules, applied to "/" paths."""

from __future__ import annotations

import pytest

from machine.sync.ignore import DEFAULT_PATTERNS, IgnoreRules


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "ignored"),
    [
        (DEFAULT_PATTERNS, ".git", True, True),
        (DEFAULT_PATTERNS, ".git/HEAD", False, True),  # under an ignored directory
        (DEFAULT_PATTERNS, "a/b/node_modules/x/y.js", False, True),
        (DEFAULT_PATTERNS, "node_modules", False, False),  # `dir/` matches directories only
        (DEFAULT_PATTERNS, "src/.main.c.swp", False, True),
        (DEFAULT_PATTERNS, "src/main.c", False, False),
        (DEFAULT_PATTERNS, "x.swpx", False, False),
        ([], "a/.dysync-0a1b.tmp", False, True),  # the sync's own temp files, always
        (["/build/"], "build", True, True),  # a leading / anchors at the root
        (["/build/"], "sub/build", True, False),
        (["build/"], "sub/build", True, True),
        (["docs/*.md"], "docs/a.md", False, True),  # a / inside anchors too
        (["docs/*.md"], "x/docs/a.md", False, False),
        (["docs/*.md"], "docs/sub/a.md", False, False),  # * stays in one component
        (["**/cache"], "a/b/cache", True, True),
        (["**/cache"], "cache", False, True),
        (["logs/**"], "logs/a/b.txt", False, True),
        (["a/**/z"], "a/z", False, True),
        (["a/**/z"], "a/b/c/z", False, True),
        (["file?.txt"], "file1.txt", False, True),
        (["file?.txt"], "file10.txt", False, False),
        (["[ab].o"], "b.o", False, True),
        (["[!ab].o"], "b.o", False, False),
        (["[!ab].o"], "c.o", False, True),
        (["*.log", "!keep.log"], "keep.log", False, False),  # re-included
        (["*.log", "!keep.log"], "other.log", False, True),
        (["out/", "!out/keep"], "out/keep", False, True),  # not under an ignored dir
        (["# comment", "", "   "], "# comment", False, False),
        (["\\#hash"], "#hash", False, True),
    ],
)
def test_matching(patterns: list[str], path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules(patterns).ignored(path, is_dir) is ignored


def test_the_root_itself_is_never_ignored() -> None:
    assert not IgnoreRules(["*"]).ignored("", True)
