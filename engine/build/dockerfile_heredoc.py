"""Heredocs in RUN, COPY and ADD (`RUN <<EOF` ... `EOF`), with BuildKit's rules.

The classic builder never had heredocs; BuildKit's Dockerfile syntax does, and
Dockerfiles written today use them. A heredoc word is `[fd]<<[-]WORD`: `-`
strips leading tabs from the body and the terminator, and quoting any part of
WORD (`<<"EOF"`, `<<'EOF'`) turns off variable expansion in the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.build.dockerfile_words import ExpansionError, expand_words

# Instructions whose shell form may carry heredocs (ONBUILD may wrap one of them).
HEREDOC_COMMANDS = frozenset({"RUN", "COPY", "ADD"})

_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$", re.DOTALL)
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


@dataclass(frozen=True)
class Heredoc:
    """One heredoc: its terminator `name` and its body as written (newlines kept)."""

    name: str
    content: str = ""
    expand: bool = True  # no part of the terminator word was quoted
    chomp: bool = False  # `<<-`: strip leading tabs
    fd: int = 0  # `3<<EOF` feeds file descriptor 3 (0 when not given)

    def body(self) -> str:
        """The content as the instruction uses it: leading tabs gone when chomped."""
        return _LEADING_TABS.sub("", self.content) if self.chomp else self.content


def parse_heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a single word opens, or None when it is not a heredoc word."""
    m = _HEREDOC_WORD.match(word)
    if m is None or not m.group(3):
        return None
    rest = m.group(3)
    try:
        plain = expand_words(rest, {}, skip_unset=True)
        raw = expand_words(rest, {}, skip_unset=True, raw_quotes=True)
    except ExpansionError:
        return None
    if len(plain) != 1 or len(raw) != 1:
        return None
    quotes = _count_quotes(plain[0])
    return Heredoc(
        name=plain[0],
        expand=quotes == _count_quotes(raw[0]),
        chomp=m.group(2) == "-",
        fd=int(m.group(1) or "0"),
    )


def _count_quotes(word: str) -> int:
    return word.count("'") + word.count('"')


def heredocs_in(line: str) -> list[Heredoc]:
    """Every heredoc opened on an instruction line, in order (bodies still empty)."""
    if "<<" not in line:
        return []
    try:
        words = expand_words(line, {}, skip_unset=True, raw_quotes=True, raw_escapes=True)
    except ExpansionError:
        return []
    docs = []
    for word in words:
        doc = parse_heredoc_word(word)
        if doc is not None:
            docs.append(doc)
    return docs


def is_terminator(raw_line: str, doc: Heredoc) -> bool:
    """Whether a body line ends `doc` (tabs before it are allowed with `<<-`)."""
    text = raw_line.rstrip("\r\n")
    if doc.chomp:
        text = text.lstrip("\t")
    return text == doc.name
