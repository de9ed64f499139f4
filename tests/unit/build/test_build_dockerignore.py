""".dockerignore: moby's patternmatcher tables, ReadAll's normalization, and walking a
real directory (excluded directories entered only when an exception reaches inside)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.build.dockerignore import BadPattern, DockerIgnore, go_clean, read_patterns
from engine.errors import InvalidParameter

# moby/patternmatcher TestMatches: (pattern, path, expected). "parent" rows match only
# through a parent directory. The rows matching "/" are left out: paths here are relative
# to the context, and its root is never excluded.
MATCHES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**/", "file/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", "parent"),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", "parent"),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        True,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\\\", "a\\", True),
    ("a\\*b", "a*b", True),
]


def compiled(*patterns: str) -> DockerIgnore:
    return DockerIgnore.parse("\n".join(patterns))


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_moby_match_table(pattern: str, path: str, expected: bool | str) -> None:
    # Our matcher is MatchesOrParentMatches: "parent" rows match through a parent dir.
    # Rows are fed as moby feeds them (New() without ReadAll's leading-/ strip).
    ignore = DockerIgnore.parse(pattern)
    assert ignore.matches(path) is bool(expected), (pattern, path)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (
            ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            False,
        ),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        (["*"], "fileutils.go", True),
        (["*.go"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        (["*.go"], ".", False),
        ([], "any/path/there", False),
        (["docs"], "docs/deep/down/file", True),
        (["/abs", "./dot"], "abs", True),
        (["/abs", "./dot"], "dot/x", True),
        (["a/../b"], "b", True),
        (["# comment", "  # not a comment"], "# not a comment", True),
        (["secret", "!secret/keep", "secret/keep/no"], "secret/keep/yes", False),
        (["secret", "!secret/keep", "secret/keep/no"], "secret/keep/no", True),
    ],
)
def test_pattern_lists(patterns: list[str], path: str, expected: bool) -> None:
    assert compiled(*patterns).matches(path) is expected


# Go's filepath.Match table, as moby's TestMatch runs it (single pattern, Matches()).
GO_MATCH = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "\u03b1", True),  # Greek alpha
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("*x", "xxx", True),
]
BAD = ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "!"]


@pytest.mark.parametrize(("pattern", "path", "expected"), GO_MATCH)
def test_go_filepath_match_table(pattern: str, path: str, expected: bool) -> None:
    assert compiled(pattern).matches(path) is expected


@pytest.mark.parametrize("pattern", BAD)
def test_bad_patterns_are_errors_naming_the_line(pattern: str) -> None:
    with pytest.raises(BadPattern, match=r"\.dockerignore line 3: ") as info:
        DockerIgnore.parse(f"ok\n# comment\n{pattern}\n")
    assert isinstance(info.value, InvalidParameter)


def test_read_patterns_normalizes_like_readall() -> None:
    text = "\ufeff# c\n\n  /abs/  \n!  /keep\n./x/../y\n!\n   \n//double//slash/\n"
    assert read_patterns(text) == [
        (3, "abs"),
        (4, "!keep"),
        (5, "y"),
        (6, "!"),
        (8, "double/slash"),
    ]


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("", "."),
        ("a//b/./c/..", "a/b"),
        ("/../x", "/x"),
        ("../../x", "../../x"),
        ("a/../..", ".."),
        ("/", "/"),
    ],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean


# -- walking a directory ------------------------------------------------------------------


def make_tree(root: Path, files: list[str]) -> None:
    for rel in files:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(rel)


TREE = [
    "Dockerfile",
    ".dockerignore",
    "app.py",
    "README.md",
    "secret.env",
    "docs/guide.md",
    "docs/README.md",
    "node_modules/a/index.js",
    "node_modules/keep/index.js",
    "build/",
    "src/main.go",
    "src/main_test.go",
    "src/vendor/x.go",
]


def test_walk_lists_included_paths_in_order(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    (tmp_path / "link").symlink_to("/etc")
    ignore = compiled("*.env", "**/*_test.go", "docs", "!docs/README.md", "node_modules", "build")
    assert list(ignore.walk(tmp_path)) == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "app.py",
        "docs/README.md",
        "link",
        "src",
        "src/main.go",
        "src/vendor",
        "src/vendor/x.go",
    ]


def test_walk_keeps_dockerfile_and_dockerignore(tmp_path: Path) -> None:
    make_tree(tmp_path, [*TREE, "ci/Dockerfile.ci"])
    ignore = compiled("*", "!app.py")
    assert list(ignore.walk(tmp_path, keep=("ci/Dockerfile.ci", ".dockerignore"))) == [
        ".dockerignore",
        "app.py",
        "ci/Dockerfile.ci",
    ]
    assert list(ignore.walk(tmp_path)) == [".dockerignore", "Dockerfile", "app.py"]


def test_walk_enters_excluded_dirs_only_for_exceptions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, TREE)
    entered: list[str] = []
    real_scandir = os.scandir

    def spy(path: str | os.PathLike[str]) -> object:
        entered.append(os.path.relpath(path, tmp_path))
        return real_scandir(path)

    monkeypatch.setattr("patternmatcher.os.scandir", spy)
    ignore = compiled("node_modules", "!node_modules/keep", "docs", "build")
    got = list(ignore.walk(tmp_path))
    assert "node_modules/keep/index.js" in got and "node_modules/a/index.js" not in got
    assert "node_modules" not in got
    assert "node_modules" in entered and "node_modules/keep" in entered
    assert "node_modules/a" not in entered and "docs" not in entered and "build" not in entered


def test_walk_wildcard_exception_reaches_inside(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    ignore = compiled("src", "!src/*.go")
    got = list(ignore.walk(tmp_path))
    assert "src/main.go" in got and "src/main_test.go" in got
    assert "src/vendor/x.go" not in got and "src" not in got


def test_load_without_file_excludes_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a", "b/c"])
    assert list(DockerIgnore.load(tmp_path).walk(tmp_path)) == ["a", "b", "b/c"]
    (tmp_path / ".dockerignore").write_text("b\n")
    assert list(DockerIgnore.load(tmp_path).walk(tmp_path)) == [".dockerignore", "a"]
