"""Variable expansion and word splitting with the Dockerfile shell-lexer rules.

A Dockerfile is not a shell script, yet ENV, COPY, WORKDIR and friends expand
`$VAR` the way Docker's own small lexer does, which differs from sh in ways
Dockerfiles depend on: the escape character is `\\` or the `# escape=` token,
an unset variable expands to nothing (or is kept verbatim for the heredoc
probes), single quotes are literal, and inside double quotes the escape only
protects `"`, `$` and itself. This module is a faithful port of that lexer
(moby/buildkit `frontend/dockerfile/shell/lex.go`) so the same text expands to
the same value as under `docker build`.

Supported forms: `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`,
`${NAME:+word}`, `${NAME+word}`, `${NAME:?msg}`, `${NAME?msg}`, `${NAME#pat}`,
`${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}`, `${NAME/pat/repl}` and
`${NAME//pat/repl}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.errors import InvalidParameter

# Instructions whose arguments Docker expands with the build's ENV and ARG values
# (the commands implementing SupportsSingleWordExpansion in moby's instructions
# package). RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell at run
# time; ONBUILD triggers expand when they run in the child build.
EXPANDING = frozenset(
    {
        "ADD",
        "ARG",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ExpansionError(InvalidParameter):
    """A word could not be expanded (bad `${...}` syntax, `${X:?}` on an unset X, ...)."""


class _Unterminated(ExpansionError):
    """Input ended while a construct was still open; `${` callers reword it."""


@dataclass
class _Words:
    """Word splitting that happens after expansion, as Docker's wordsStruct."""

    word: str = ""
    words: list[str] = field(default_factory=list)
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_expanded(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


@dataclass
class _Lexer:
    text: str
    env: Mapping[str, str]
    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_unset: bool = False
    skip_quotes: bool = False
    pos: int = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def lookup(self, name: str) -> str | None:
        return self.env.get(name)

    # -- the scanner ---------------------------------------------------------------

    def process(self, stop: str = "", raw_escapes: bool | None = None) -> tuple[str, list[str]]:
        """Expand up to `stop` (consumed) or the end; returns the text and its words."""
        saved = self.raw_escapes
        if raw_escapes is not None:
            self.raw_escapes = raw_escapes
        try:
            return self._process(stop)
        finally:
            self.raw_escapes = saved

    def _process(self, stop: str) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        while (ch := self.peek()) != "":
            if stop and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "$":
                value = self.dollar()
                out.append(value)
                words.add_expanded(value)
            elif ch in "'\"" and not self.skip_quotes:
                value = self.single_quote() if ch == "'" else self.double_quote()
                out.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break  # an escape at the very end escapes nothing
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop:
            raise _Unterminated(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quote(self) -> str:
        """Everything up to the next ' is literal; a ' cannot be escaped inside."""
        opening = self.next()
        out = [opening] if self.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise _Unterminated(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        """Literal except `$`; the escape protects only `"`, `$` and itself, as in sh."""
        opening = self.next()
        out = [opening] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise _Unterminated(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    # -- $ ---------------------------------------------------------------------------

    def name(self) -> str:
        """A variable name: letters, digits, _; or digits alone; or one special parameter."""
        first = self.peek()
        if first.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if first and first in _SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while (ch := self.peek()) and (ch.isalnum() or ch == "_"):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self.next()
        first = self.peek()
        if not first:
            raise ExpansionError("syntax error: missing '}'")
        if first in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if not op:
            raise ExpansionError("syntax error: missing '}'")
        if op == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if op == "/":
            return self.replace(name)
        if op in (":", "+", "-", "?", "#", "%"):
            return self.modifier(name, op)
        raise ExpansionError(f"unsupported modifier ({op}) in substitution")

    def _word_until_brace(self, raw_escapes: bool) -> str:
        try:
            word, _ = self.process("}", raw_escapes)
        except _Unterminated:
            if not self.peek():
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        return word

    def modifier(self, name: str, op: str) -> str:
        null_is_unset = op == ":"
        mod = self.next() if null_is_unset else op
        spelled = (":" if null_is_unset else "") + mod
        word = self._word_until_brace(raw_escapes=mod in ("#", "%"))
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + spelled + word + "}"
        unset = value is None or (null_is_unset and value == "")
        if mod == "-":
            return word if unset else str(value)
        if mod == "+":
            return "" if unset else word
        if mod == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if unset:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if mod in ("#", "%"):
            greedy = word.startswith(mod)
            pattern = word[1:] if greedy else word
            return _trim(value or "", pattern, greedy, suffix=mod == "%")
        raise ExpansionError(f"unsupported modifier ({spelled}) in substitution")

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.process("/", raw_escapes=True)
        except _Unterminated:
            if not self.peek():
                raise ExpansionError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._word_until_brace(raw_escapes=True)
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True)
        return regex.sub(lambda _m: replacement, value or "", count=0 if replace_all else 1)


def _pattern_regex(pattern: str, greedy: bool) -> re.Pattern[str]:
    """A shell wildcard (`*`, `?`, backslash escapes; no brackets) as a regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i] if i < len(pattern) else ""
            if following in ("}", "/"):
                continue  # the escape only kept ${...} parsing going
            if following not in ("*", "?", "\\"):
                raise ExpansionError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'"
                )
            out.append(re.escape(following))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim(value: str, pattern: str, greedy: bool, *, suffix: bool) -> str:
    regex = _pattern_regex(pattern, greedy=True)
    cuts = range(len(value) + 1)
    if suffix:
        # the shortest matching suffix starts as late as possible; the longest, as early
        order = cuts if greedy else reversed(cuts)
        for i in order:
            if regex.fullmatch(value, i):
                return value[:i]
        return value
    order = reversed(cuts) if greedy else cuts
    for i in order:
        if regex.fullmatch(value, 0, i):
            return value[i:]
    return value


def _lexer(word: str, env: Mapping[str, str], escape: str, **options: bool) -> _Lexer:
    if escape not in ("\\", "`"):
        raise ValueError(f"escape must be \\ or `, not {escape!r}")
    return _Lexer(word, env, escape, **options)


def _run(lexer: _Lexer) -> tuple[str, list[str]]:
    try:
        return lexer.process()
    except ExpansionError as e:
        raise ExpansionError(f"failed to process {json.dumps(lexer.text)}: {e.message}") from None


def expand(
    word: str,
    env: Mapping[str, str],
    escape: str = "\\",
    *,
    skip_unset: bool = False,
    raw_quotes: bool = False,
    raw_escapes: bool = False,
    skip_quotes: bool = False,
) -> str:
    """`word` with variables expanded and quotes removed, spaces kept (ProcessWord)."""
    lexer = _lexer(
        word,
        env,
        escape,
        skip_unset=skip_unset,
        raw_quotes=raw_quotes,
        raw_escapes=raw_escapes,
        skip_quotes=skip_quotes,
    )
    return _run(lexer)[0]


def expand_words(
    word: str,
    env: Mapping[str, str],
    escape: str = "\\",
    *,
    skip_unset: bool = False,
    raw_quotes: bool = False,
    raw_escapes: bool = False,
) -> list[str]:
    """`word` expanded, then split on unquoted whitespace (ProcessWords).

    Whitespace that came from a variable's value splits too, as in Docker
    (`ENV X="a b"` then `EXPOSE $X` gives two words); quoted text never splits.
    """
    lexer = _lexer(
        word, env, escape, skip_unset=skip_unset, raw_quotes=raw_quotes, raw_escapes=raw_escapes
    )
    return _run(lexer)[1]
