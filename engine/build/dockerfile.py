"""The Dockerfile front end: text in, stages of checked instructions out.

The rules are Docker's (moby/buildkit `frontend/dockerfile/parser` and
`instructions`), because a Dockerfile that builds under `docker build` must
build here and one that fails there should fail here with the same words:

- Parser directives (`# syntax=`, `# escape=`, `# check=`) count only in the
  leading comment block; the first other line (even a blank one) ends it.
- A line ending in the escape character (`\\`, or `` ` `` after
  `# escape=`) continues on the next; comment lines and blank lines inside a
  continuation are skipped (blank ones with a warning, as Docker).
- Each instruction's arguments are split the way its Docker parser splits
  them: JSON (exec) form or shell form for RUN/CMD/ENTRYPOINT/SHELL,
  whitespace lists for COPY/ADD/VOLUME/EXPOSE/FROM, key/value pairs for
  ENV/LABEL/ARG. Values stay as written (quotes and `$VAR` included):
  `dockerfile_words.expand` expands and unquotes them at build time, when the
  ENV and ARG values are known.
- Flags are checked per instruction; an unknown one names itself.

`Instruction.original` is the logical line exactly as Docker prints it in
`Step N/M : ...` and uses in cache keys. Flag names in `Instruction.flags`
have no leading dashes (`flags["from"]`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from engine.build.dockerfile_flags import FlagError, check_flags, split_flags
from engine.build.dockerfile_heredoc import (
    HEREDOC_COMMANDS,
    Heredoc,
    heredocs_in,
    is_terminator,
    parse_heredoc_word,
)
from engine.build.dockerfile_words import EXPANDING, ExpansionError, expand, expand_words
from engine.errors import InvalidParameter

__all__ = [
    "EXPANDING",
    "Dockerfile",
    "DockerfileSyntaxError",
    "ExpansionError",
    "Heredoc",
    "Instruction",
    "Stage",
    "expand",
    "expand_words",
    "healthcheck_test",
    "meta_env",
    "parse",
    "stage_base",
]

COMMANDS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
DIRECTIVES = frozenset({"syntax", "escape", "check"})

_SP = r"[ \t\n\f\r]*"  # Go's \s
_DIRECTIVE = re.compile(rf"^#{_SP}([a-zA-Z][a-zA-Z0-9]*){_SP}={_SP}(.+?){_SP}$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_BOM = "\ufeff"


class DockerfileSyntaxError(InvalidParameter):
    """A Dockerfile that cannot be parsed; names the file and the 1-based line."""

    def __init__(self, message: str, line: int, name: str = "Dockerfile") -> None:
        self.reason = message
        self.line = line
        self.name = name
        super().__init__(f"{name}:{line}: {message}")

    @property
    def docker_message(self) -> str:
        """Docker's own wording, for clients that match on it."""
        return f"dockerfile parse error on line {self.line}: {self.reason}"


@dataclass
class Instruction:
    """One instruction. `args` depends on the instruction's form:

    - shell form (RUN/CMD/ENTRYPOINT/SHELL, HEALTHCHECK's command): one raw string;
    - JSON form: the parsed list (`json_form` is True);
    - ENV, LABEL: flat [key, value, key, value, ...], values raw (quotes kept);
    - ARG: one word per argument, "NAME" or "NAME=default" (raw);
    - HEALTHCHECK: [TYPE, *command] with TYPE "NONE" or "CMD";
    - ONBUILD: [trigger text]; the trigger parsed is in `trigger`;
    - the rest: the whitespace-separated words (WORKDIR/USER/STOPSIGNAL/MAINTAINER: one).
    """

    cmd: str
    original: str
    line: int
    args: list[str]
    json_form: bool = False
    flags: dict[str, str] = field(default_factory=dict)
    heredocs: list[Heredoc] = field(default_factory=list)
    end_line: int = 0
    trigger: Instruction | None = None

    @property
    def pairs(self) -> list[tuple[str, str | None]]:
        """ENV/LABEL/ARG as (key, raw value) pairs; an ARG without default has None."""
        if self.cmd == "ARG":
            out: list[tuple[str, str | None]] = []
            for word in self.args:
                key, eq, value = word.partition("=")
                out.append((key, value if eq else None))
            return out
        if self.cmd in ("ENV", "LABEL"):
            return [(self.args[i], self.args[i + 1]) for i in range(0, len(self.args), 2)]
        raise ValueError(f"{self.cmd} has no key/value pairs")


@dataclass
class Stage:
    """A build stage: its FROM and the instructions after it, up to the next FROM."""

    index: int
    name: str  # lower-cased `AS name`, or ""
    base: str  # the image word of FROM, unexpanded
    platform: str  # FROM --platform=..., unexpanded, or ""
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    directives: dict[str, str]
    meta_args: list[Instruction]
    stages: list[Stage]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)
    name: str = "Dockerfile"

    def stage(self, ref: str) -> Stage | None:
        """A stage by `AS` name (any case) or by index ("0", "1", ...), as COPY --from."""
        lowered = ref.lower()
        for st in self.stages:
            if st.name and st.name == lowered:
                return st
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

    def instructions(self) -> Iterator[Instruction]:
        """Every instruction in file order: meta ARGs, then each stage's FROM and body."""
        yield from self.meta_args
        for st in self.stages:
            yield st.from_instruction
            yield from st.instructions


# -- lines -----------------------------------------------------------------------------


@dataclass
class _Lines:
    """The file's physical lines with a cursor; `number` is the 1-based line last read."""

    lines: list[str]
    number: int = 0

    def next(self) -> str | None:
        if self.number >= len(self.lines):
            return None
        self.number += 1
        return self.lines[self.number - 1]


@dataclass
class _Directives:
    name: str = "Dockerfile"
    escape: str = "\\"
    values: dict[str, str] = field(default_factory=dict)
    done: bool = False

    def feed(self, line: str, number: int) -> bool:
        """Consider a (left-trimmed) line; True when it was a directive."""
        if self.done:
            return False
        m = _DIRECTIVE.match(line)
        if m is None or m.group(1).lower() not in DIRECTIVES:
            self.done = True
            return False
        key, value = m.group(1).lower(), m.group(2)
        if key in self.values:
            raise DockerfileSyntaxError(
                f"only one {key} parser directive can be used", number, self.name
            )
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileSyntaxError(
                    f"invalid escape token '{value}' does not match ` or \\", number, self.name
                )
            self.escape = value
        self.values[key] = value
        return True


def _split_physical(text: str) -> list[str]:
    """Lines split on \n only (as Go's scanner), endings kept: heredoc bodies need them."""
    if text.startswith(_BOM):
        text = text[1:]
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _trim_nl(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _continues(line: str, escape: str) -> tuple[str, bool]:
    """(line without its continuation escape, whether it continues)."""
    body = line.rstrip(" \t")
    if not body.endswith(escape):
        return line, False
    if len(body) >= 2 and body[-2] == escape:
        return line, False  # an escaped escape ends the line
    return body[:-1], True


# -- the parse loop --------------------------------------------------------------------


@dataclass
class _Logical:
    text: str
    start: int
    end: int
    empty_continuation: bool


def _logical_lines(src: _Lines, directives: _Directives) -> Iterator[_Logical]:
    while (raw := src.next()) is not None:
        first = _trim_nl(raw).lstrip()
        directives.feed(first, src.number)
        start = src.number
        text = "" if _is_comment(first) else first
        text, more = _continues(text, directives.escape)
        if not more and text == "":
            continue
        empty = False
        while more and (raw := src.next()) is not None:
            directives.feed(_trim_nl(raw), src.number)
            if _is_comment(raw):
                continue
            if _trim_nl(raw).strip() == "":
                empty = True
                continue
            part, more = _continues(_trim_nl(raw), directives.escape)
            text += part
        yield _Logical(text, start, src.number, empty)


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; DockerfileSyntaxError names the line of the first problem."""
    if text.strip(_BOM + " \t\r\n\v\f") == "":
        raise DockerfileSyntaxError(f"the Dockerfile ({name}) cannot be empty", 1, name)
    src = _Lines(_split_physical(text))
    directives = _Directives(name)
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    warnings: list[str] = []
    seen_any = False
    for logical in _logical_lines(src, directives):
        seen_any = True
        ins = _instruction(logical, directives.escape, src, name)
        if logical.empty_continuation:
            warnings.append(
                f"{name}:{logical.start}: empty continuation line found in: {ins.original}"
            )
        _place(ins, stages, meta_args, name)
    if not seen_any:
        raise DockerfileSyntaxError("file with no instructions", max(src.number, 1), name)
    return Dockerfile(
        directives=dict(directives.values),
        meta_args=meta_args,
        stages=stages,
        escape=directives.escape,
        warnings=warnings,
        name=name,
    )


def _place(ins: Instruction, stages: list[Stage], meta_args: list[Instruction], name: str) -> None:
    if ins.cmd == "FROM":
        stage = _stage(ins, len(stages), name)
        if stage.name and any(s.name == stage.name for s in stages):
            raise DockerfileSyntaxError(f'duplicate stage name "{stage.name}"', ins.line, name)
        stages.append(stage)
    elif not stages:
        if ins.cmd != "ARG":
            raise DockerfileSyntaxError(
                f"no build stage in current context: {ins.cmd} before the first FROM "
                "(only ARG may come before FROM)",
                ins.line,
                name,
            )
        meta_args.append(ins)
    else:
        stages[-1].instructions.append(ins)


def _stage(ins: Instruction, index: int, name: str) -> Stage:
    args = ins.args
    stage_name = ""
    if len(args) == 3 and args[1].lower() == "as":
        stage_name = args[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise DockerfileSyntaxError(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols",
                ins.line,
                name,
            )
    elif len(args) != 1:
        raise DockerfileSyntaxError(
            "FROM requires either one or three arguments (FROM image [AS name])", ins.line, name
        )
    return Stage(
        index=index,
        name=stage_name,
        base=args[0],
        platform=ins.flags.get("platform", ""),
        from_instruction=ins,
    )


def _instruction(logical: _Logical, escape: str, src: _Lines, name: str) -> Instruction:
    try:
        ins = parse_instruction(logical.text, escape, logical.start)
    except (FlagError, ValueError, ExpansionError) as e:
        raise DockerfileSyntaxError(str(e), logical.start, name) from None
    except DockerfileSyntaxError as e:
        raise DockerfileSyntaxError(e.reason, logical.start, name) from None
    if ins.heredocs:
        ins.heredocs = [_read_heredoc(doc, src, logical.start, name) for doc in ins.heredocs]
        if ins.trigger is not None:
            # Docker keeps an ONBUILD trigger's heredoc bodies in its expression.
            ins.trigger.heredocs = ins.heredocs
            ins.args = [ins.args[0] + "".join("\n" + d.content + d.name for d in ins.heredocs)]
    ins.end_line = src.number
    return ins


def _read_heredoc(doc: Heredoc, src: _Lines, start: int, name: str) -> Heredoc:
    body: list[str] = []
    while (raw := src.next()) is not None:
        if is_terminator(raw, doc):
            return Heredoc(doc.name, "".join(body), doc.expand, doc.chomp, doc.fd)
        body.append(raw)
    raise DockerfileSyntaxError(
        f"unterminated heredoc: no line {doc.name!r} ends the heredoc started here", start, name
    )


# -- one instruction ---------------------------------------------------------------------


def parse_instruction(text: str, escape: str = "\\", line: int = 1) -> Instruction:
    """One logical line (continuations already joined) as an Instruction.

    Heredoc bodies are not read here (they follow in the file); `heredocs`
    lists the ones the line opens, with empty content.
    """
    stripped = text.strip()  # Docker's Step lines and cache keys use the trimmed line
    keyword, _, rest = _split_keyword(stripped)
    cmd = keyword.upper()
    if cmd not in COMMANDS:
        raise DockerfileSyntaxError(f"unknown instruction: {keyword}{_suggest(cmd)}", line)
    flag_words, rest = split_flags(rest)
    rest = rest.strip()
    ins = Instruction(cmd=cmd, original=stripped, line=line, args=[])
    if cmd == "ONBUILD":
        _onbuild(ins, flag_words, rest, escape, line)
        return ins
    if cmd == "HEALTHCHECK":
        _healthcheck(ins, flag_words, rest)
        return ins
    ins.flags = check_flags(cmd, flag_words)
    _ARGS[cmd](ins, rest, escape)
    if cmd in HEREDOC_COMMANDS and not ins.json_form:
        ins.heredocs = heredocs_in(stripped)
        if cmd != "RUN":
            _check_copy_heredocs(ins)
    return ins


def _split_keyword(text: str) -> tuple[str, str, str]:
    parts = re.split(r"\s+", text, maxsplit=1)
    return parts[0], "", parts[1] if len(parts) > 1 else ""


def _suggest(cmd: str) -> str:
    best, best_d = "", 3
    for known in sorted(COMMANDS):
        d = _distance(cmd, known)
        if d < best_d:
            best, best_d = known, d
    return f" (did you mean {best}?)" if best else ""


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _onbuild(ins: Instruction, flag_words: list[str], rest: str, escape: str, line: int) -> None:
    ins.flags = check_flags("ONBUILD", flag_words)
    if not rest:
        raise ValueError("ONBUILD requires at least one argument")
    trigger_word = rest.split(None, 1)[0].upper()
    if trigger_word == "ONBUILD":
        raise ValueError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_word in ("MAINTAINER", "FROM"):
        raise ValueError(f"{trigger_word} isn't allowed as an ONBUILD trigger")
    ins.trigger = parse_instruction(rest, escape, line)
    ins.args = [re.sub(r"(?i)^\s*ONBUILD\s*", "", ins.original)]
    ins.heredocs = ins.trigger.heredocs


def _healthcheck(ins: Instruction, flag_words: list[str], rest: str) -> None:
    if not rest:
        raise ValueError("HEALTHCHECK requires at least one argument")
    typ, _, command = _split_keyword(rest)
    typ = typ.upper()
    if typ == "NONE":
        if command.strip():
            raise ValueError("HEALTHCHECK NONE takes no arguments")
        if flag_words:
            raise ValueError("HEALTHCHECK NONE takes no flags (they only apply to CMD)")
        ins.args = ["NONE"]
        return
    ins.flags = check_flags("HEALTHCHECK", flag_words)
    if typ != "CMD":
        raise ValueError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    words, ins.json_form = _maybe_json(command.strip())
    if not words or (ins.json_form is False and not words[0]):
        raise ValueError("Missing command after HEALTHCHECK CMD")
    ins.args = ["CMD", *words]


def meta_env(df: Dockerfile, build_args: Mapping[str, str | None]) -> dict[str, str]:
    """The ARGs declared before the first FROM, as FROM lines see them.

    A --build-arg value wins; otherwise the default, which may use earlier
    meta ARGs. An ARG with neither stays unset. Only these expand FROM lines.
    """
    env: dict[str, str] = {}
    for ins in df.meta_args:
        try:
            for key, default in ins.pairs:
                name = expand(key, env, df.escape)
                given = build_args.get(name)
                if given is not None:
                    env[name] = given
                elif default is not None:
                    env[name] = expand(default, env, df.escape)
        except ExpansionError as e:
            raise DockerfileSyntaxError(e.message, ins.line, df.name) from None
    return env


def stage_base(df: Dockerfile, stage: Stage, env: Mapping[str, str]) -> str:
    """A stage's FROM image (or stage name) with the meta ARGs expanded; never blank."""
    try:
        base = expand(stage.base, env, df.escape)
    except ExpansionError as e:
        raise DockerfileSyntaxError(e.message, stage.from_instruction.line, df.name) from None
    if not base:
        raise DockerfileSyntaxError(
            f"base name ({stage.base}) should not be blank; give the ARG a value with --build-arg "
            "or a default",
            stage.from_instruction.line,
            df.name,
        )
    return base


def healthcheck_test(ins: Instruction) -> list[str]:
    """The image config's Healthcheck.Test: ["NONE"], ["CMD", ...] or ["CMD-SHELL", cmd]."""
    if ins.args[0] == "NONE":
        return ["NONE"]
    return ["CMD", *ins.args[1:]] if ins.json_form else ["CMD-SHELL", *ins.args[1:]]


# -- argument forms ------------------------------------------------------------------------


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    """(args, json_form): a JSON array of strings, else the shell form as one string."""
    if not rest:
        return [], False
    parsed = _json_list(rest)
    if parsed is None:
        return [rest], False
    return parsed, True


def _json_list(rest: str) -> list[str] | None:
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ValueError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _whitespace_words(rest: str) -> list[str]:
    return _WHITESPACE.split(rest) if rest else []


def _args_exec(ins: Instruction, rest: str, escape: str) -> None:
    ins.args, ins.json_form = _maybe_json(rest)
    if ins.cmd == "RUN" and not ins.args:
        raise ValueError("RUN requires at least one argument")
    if ins.cmd == "SHELL":
        if not ins.args or (not ins.json_form and not ins.args[0]):
            raise ValueError("SHELL requires at least one argument")
        if not ins.json_form:
            raise ValueError(
                'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]'
            )


def _args_list(ins: Instruction, rest: str, escape: str) -> None:
    parsed = _json_list(rest)
    ins.json_form = parsed is not None
    ins.args = parsed if parsed is not None else _whitespace_words(rest)
    if ins.cmd in ("COPY", "ADD") and len(ins.args) < 2:
        raise ValueError(
            f"{ins.cmd} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    if ins.cmd == "VOLUME":
        if not ins.args:
            raise ValueError("VOLUME requires at least one argument")
        ins.args = [v.strip() for v in ins.args]
        if any(v == "" for v in ins.args):
            raise ValueError("VOLUME specified can not be an empty string")


def _args_words(ins: Instruction, rest: str, escape: str) -> None:
    ins.args = _whitespace_words(rest)
    if not ins.args:
        raise ValueError(f"{ins.cmd} requires at least one argument")


def _args_one(ins: Instruction, rest: str, escape: str) -> None:
    if not rest:
        raise ValueError(f"{ins.cmd} requires exactly one argument")
    ins.args = [rest]


def _args_key_values(ins: Instruction, rest: str, escape: str) -> None:
    words = quoted_words(rest, escape)
    if not words:
        raise ValueError(f"{ins.cmd} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ValueError(
                f"{ins.cmd} must have two arguments (the legacy {ins.cmd} key value form)"
            )
        ins.args = [parts[0], parts[1]]
        return
    args: list[str] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise ValueError(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        if not key:
            raise ValueError(f"{ins.cmd} names can not be blank")
        args += [key, value]
    ins.args = args


def _args_arg(ins: Instruction, rest: str, escape: str) -> None:
    ins.args = quoted_words(rest, escape)
    if not ins.args:
        raise ValueError("ARG requires at least one argument")
    for word in ins.args:
        if word.startswith("="):
            raise ValueError("ARG names can not be blank")


_ARGS = {
    "ADD": _args_list,
    "ARG": _args_arg,
    "CMD": _args_exec,
    "COPY": _args_list,
    "ENTRYPOINT": _args_exec,
    "ENV": _args_key_values,
    "EXPOSE": _args_words,
    "FROM": _args_words,
    "LABEL": _args_key_values,
    "MAINTAINER": _args_one,
    "RUN": _args_exec,
    "SHELL": _args_exec,
    "STOPSIGNAL": _args_one,
    "USER": _args_one,
    "VOLUME": _args_list,
    "WORKDIR": _args_one,
}


def _check_copy_heredocs(ins: Instruction) -> None:
    if parse_heredoc_word(ins.args[-1]) is not None:
        raise ValueError(f"{ins.cmd} cannot accept a heredoc as a destination")


def quoted_words(rest: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (Docker's parseWords).

    Used for ENV/LABEL/ARG, whose values are unquoted later by `expand`.
    """
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append("".join(word))
                word, blank_ok, in_word = [], False, False
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == n:
                    break  # an escape at the end of the line is dropped
                word.append(ch)
                i += 1
                ch = rest[i]
        else:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    break
                word.append(ch)
                i += 1
                ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def expand_args(words: list[str], env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Each word expanded and unquoted on its own (what COPY, VOLUME, ... do at build time)."""
    return [expand(w, env, escape) for w in words]
