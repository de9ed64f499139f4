""".dockerignore: which files of a build context are sent, with Docker's pattern rules.

Shared by the engine (which applies .dockerignore to a context it receives, as
Docker's daemon does) and the app's context packer (which leaves ignored files
out before sending, as the docker CLI does): both must pick the same files, so
both import this one standard-library-only package. app/ may not import
engine/, and engine/ may import nothing outside the standard library but
itself and this package; the guest image bundles it next to engine/.

A `.dockerignore` that keeps secrets out of an image must behave exactly as
it does under `docker build`, so the rules are moby's (`patternmatcher` and
`dockerignore.ReadAll`), not gitignore's:

- Lines starting with `#` are comments; the rest is trimmed, cleaned like Go's
  `filepath.Clean`, and a leading `/` is dropped: patterns are relative to the
  context root. A leading `!` marks an exception.
- Patterns use Go's `filepath.Match` syntax (`*` and `?` never cross `/`,
  `[a-z]`, `[^a-z]`, `\\` escapes) plus `**`, which crosses any number of
  directories. A malformed pattern is an error, as in Docker.
- The last pattern that matches a path decides; a pattern matching a directory
  also matches everything below it.
- An excluded directory is only entered when an exception names a path
  inside it literally (`!src/*.go` for `src`; a leading wildcard, as in
  `!*/keep`, does not reach inside), which is what the docker CLI and
  BuildKit do.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

# Docker always sends these (the CLI re-includes them whatever .dockerignore says).
ALWAYS_SENT = ("Dockerfile", ".dockerignore")

_REGEX_SPECIAL = set(".+()|{}$")


class BadPattern(ValueError):
    """A .dockerignore line that is not a valid pattern; the message names the line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def go_clean(path: str) -> str:
    """Go's path.Clean: collapse `//`, `.` and `..`; "" becomes "."."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[tuple[int, str]]:
    """(line number, pattern) for each pattern line, normalized as Docker's ReadAll."""
    out: list[tuple[int, str]] = []
    if text.startswith("\ufeff"):
        text = text[1:]
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out


def check_go_pattern(pattern: str) -> None:
    """Raise ValueError where Go's filepath.Match would return ErrBadPattern."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            i += 2
        elif ch == "[":
            i = _check_class(pattern, i + 1)
        else:
            i += 1


def _check_class(pattern: str, i: int) -> int:
    """Validate a `[...]` class starting after `[`; returns the index after `]`."""
    n = len(pattern)
    if i < n and pattern[i] == "^":
        i += 1
    ranges = 0
    while True:
        if i < n and pattern[i] == "]" and ranges > 0:
            return i + 1
        i = _class_char(pattern, i)
        if pattern[i] == "-":
            i = _class_char(pattern, i + 1)
        ranges += 1


def _class_char(pattern: str, i: int) -> int:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise ValueError("bad character class")
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise ValueError("bad escape in character class")
    i += 1
    if i >= n:
        raise ValueError("unterminated character class")
    return i


@dataclass
class Pattern:
    """One compiled pattern, matched the way moby's patternmatcher.Pattern matches."""

    text: str  # cleaned, without the leading "!"
    exclusion: bool
    line: int = 0
    kind: str = "exact"  # exact, prefix, suffix or regexp
    regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def compile_pattern(text: str, exclusion: bool, line: int = 0) -> Pattern:
    """Translate to exact/prefix/suffix/regexp the way patternmatcher's compile does."""
    regex = "^"
    kind = "exact"
    i, n = 0, len(text)
    first = True
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        regex += ".*"
                        kind = "regexp"
                else:
                    regex += "(.*/)?"
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                regex += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            regex += "[^/]"
            kind = "regexp"
        elif ch in _REGEX_SPECIAL:
            regex += "\\" + ch
        elif ch == "\\":
            if i < n:
                regex += "\\" + text[i]
                i += 1
                kind = "regexp"
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex += ch
            kind = "regexp"
        else:
            regex += ch
        first = False
    pattern = Pattern(text, exclusion, line, kind)
    if kind == "regexp":
        try:
            pattern.regex = re.compile(regex + r"\Z")  # Go's $: the very end, not before a \n
        except re.error as e:
            raise BadPattern(
                f".dockerignore line {line}: bad pattern {text!r}: {e}; fix or remove the line"
            ) from None
    return pattern


class DockerIgnore:
    """The patterns of one .dockerignore, ready to match context paths."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    @classmethod
    def parse(cls, text: str) -> Self:
        """Compile a .dockerignore; BadPattern names the line of a malformed pattern."""
        compiled: list[Pattern] = []
        for line, raw in read_patterns(text):
            p = go_clean(raw.strip())
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise BadPattern(
                        f'.dockerignore line {line}: illegal exclusion pattern: "!" '
                        "(write the path to re-include after the !)"
                    )
                p = p[1:]
            try:
                check_go_pattern(p)
            except ValueError as e:
                raise BadPattern(
                    f".dockerignore line {line}: syntax error in pattern {p!r} ({e}); "
                    "fix or remove the line"
                ) from None
            compiled.append(compile_pattern(p, exclusion, line))
        return cls(compiled)

    @classmethod
    def load(cls, root: Path) -> Self:
        """The context's .dockerignore, or one that excludes nothing when there is none."""
        try:
            text = (Path(root) / ".dockerignore").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return cls([])
        return cls.parse(text)

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative to the context root) is excluded.

        Like patternmatcher.MatchesOrParentMatches: a pattern that matches one
        of the path's parent directories matches the path.
        """
        rel = _relative(path)
        if rel == ".":
            return False  # the root itself is never excluded
        parents = rel.split("/")[:-1]
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # only an exception can undo a match, only a match can start one
            hit = p.match(rel)
            if not hit:
                hit = any(p.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not p.exclusion
        return matched

    def walk(self, root: Path, keep: Iterable[str] = ALWAYS_SENT) -> Iterator[str]:
        """Included paths below `root` (dirs and files), depth-first, names sorted.

        Symlinks are listed, never followed. `keep` names paths sent whatever
        the patterns say (the Dockerfile and .dockerignore, as Docker does). An
        excluded directory is listed only if it is itself kept; its children
        may still be, when an exception re-includes them.
        """
        kept = {_relative(k) for k in keep}
        yield from self._walk(Path(root), "", kept)

    def _walk(self, top: Path, prefix: str, kept: set[str]) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            rel = prefix + entry.name
            excluded = self.matches(rel) and rel not in kept
            is_dir = stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode)
            if not excluded:
                yield rel
            if is_dir and (not excluded or self._may_include_below(rel, kept)):
                yield from self._walk(Path(entry.path), rel + "/", kept)

    def _may_include_below(self, rel: str, kept: set[str]) -> bool:
        """Whether to enter excluded dir `rel`: Docker's rule, to send the same files.

        Docker enters it only when an exception's text starts with `rel/`, so
        `!src/*.go` reaches into an excluded `src` but `!*/keep` does not.
        """
        dir_slash = rel + "/"
        if any(k.startswith(dir_slash) for k in kept):
            return True
        return any(p.exclusion and (p.text + "/").startswith(dir_slash) for p in self.patterns)


def _relative(path: str) -> str:
    """A context path as patterns see it: slash-separated, cleaned, no leading / or ./."""
    return go_clean(path.lstrip("/")) if path else "."
