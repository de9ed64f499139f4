"""Ignore patterns, gitignore-like, applied the same way on the host and in the guest.

Supported, as in .gitignore: `#` comments, `!` re-includes, a trailing `/` matches only
directories, a pattern with a `/` before its end is anchored at the share's root (a
leading `/` just anchors), `*` and `?` stay within one path component, `**` spans any
number of them, `[...]` classes. As in git, nothing under an ignored directory can be
re-included: we never descend into it, so a watcher never watches it either.

The sync's own temporary files (TEMP_PREFIX) are always ignored, on both sides, so a
half-written copy is never itself synced back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TEMP_PREFIX = ".dysync-"
DEFAULT_PATTERNS = (".git/", "node_modules/", "*.swp")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"(?!/)[{body}]")
                i = end
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _rule(line: str) -> _Rule | None:
    text = line.rstrip("\n").rstrip(" ")
    if not text or text.startswith("#"):
        return None
    negated = text.startswith("!")
    if negated:
        text = text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    text = text.lstrip("/")
    body = _translate(text)
    regex = f"^{body}$" if anchored else f"^(?:.*/)?{body}$"
    return _Rule(re.compile(regex, re.DOTALL), negated, dir_only)


class IgnoreRules:
    """Compiled patterns; `ignored(rel, is_dir)` for a "/"-separated path under the root."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_PATTERNS) -> None:
        self.patterns = list(patterns)
        self._rules = [r for r in map(_rule, self.patterns) if r is not None]

    def _matches(self, rel: str, is_dir: bool) -> bool:
        if rel.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            return True
        result = False
        for rule in self._rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(rel):
                result = not rule.negated
        return result

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True when `rel` or one of its parent directories is ignored."""
        if not rel:
            return False
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self._matches("/".join(parts[:depth]), True):
                return True
        return self._matches(rel, is_dir)
