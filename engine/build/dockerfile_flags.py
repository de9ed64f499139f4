"""Instruction flags (`COPY --from=x`, `HEALTHCHECK --interval=5s`): extraction and checks.

Flags are the `--name=value` words at the start of an instruction's arguments,
split off before the instruction's own parser sees the rest. Each instruction
accepts its own set, and Docker's messages for a wrong one ("Unknown flag:
from") are kept so a user searching for them finds the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The flags each instruction accepts: name -> kind ("string" or "bool"). Instructions
# not listed take none. HEALTHCHECK NONE takes none either (checked by the parser).
FLAGS: dict[str, dict[str, str]] = {
    "ADD": {
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "keep-git-dir": "bool",
        "checksum": "string",
    },
    "COPY": {"chown": "string", "from": "string", "chmod": "string", "link": "bool"},
    "FROM": {"platform": "string"},
    "HEALTHCHECK": {
        "interval": "string",
        "timeout": "string",
        "start-period": "string",
        "start-interval": "string",
        "retries": "string",
    },
}

HEALTH_DURATIONS = ("interval", "timeout", "start-period", "start-interval")
_MIN_DURATION_NS = 1_000_000  # Docker's container.MinimumDuration: 1ms


class FlagError(ValueError):
    """A flag the instruction does not accept, or a bad value; the parser adds the line."""


def split_flags(text: str) -> tuple[list[str], str]:
    """The leading `--flag[=value]` words of `text` (unquoted) and the rest of it.

    A word `--` alone ends the flags. Quotes and backslashes inside a flag word
    are removed, as Docker's extractBuilderFlags does.
    """
    flags: list[str] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return flags, ""
        if not text.startswith("--", pos):
            return flags, text[pos:]
        word, pos, quoted = _flag_word(text, pos)
        if word == "--":
            return flags, text[pos:].strip()
        if word or quoted:
            flags.append(word)


def _flag_word(text: str, pos: int) -> tuple[str, int, bool]:
    """One whitespace-delimited word from `pos`, quotes and escapes removed."""
    out: list[str] = []
    quote = ""
    quoted = False
    n = len(text)
    while pos < n:
        ch = text[pos]
        if not quote and ch.isspace():
            break
        pos += 1
        if not quote and ch in "'\"":
            quote, quoted = ch, True
            continue
        if quote and ch == quote:
            quote = ""
            continue
        if ch == "\\":
            if pos == n:
                continue
            ch = text[pos]
            pos += 1
        out.append(ch)
    return "".join(out), pos, quoted


@dataclass(frozen=True)
class _Spec:
    command: str
    known: dict[str, str]


def check_flags(
    command: str, words: list[str], known: dict[str, str] | None = None
) -> dict[str, str]:
    """Validate `words` against what `command` accepts; returns name -> value.

    Bool flags given bare (`--link`) read "true". Names are returned without the
    leading dashes. Messages follow Docker's BFlags.Parse.
    """
    spec = _Spec(command, FLAGS.get(command, {}) if known is None else known)
    out: dict[str, str] = {}
    for word in words:
        if not word.startswith("--"):
            raise FlagError(f"Arg should start with -- : {word}")
        name, eq, value = word[2:].partition("=")
        kind = spec.known.get(name)
        if kind is None:
            raise FlagError(_unknown(spec, name))
        if name in out:
            raise FlagError(f"Duplicate flag specified: {name}")
        out[name] = _flag_value(name, kind, bool(eq), value)
    if command == "HEALTHCHECK":
        _check_health_flags(out)
    return out


def _unknown(spec: _Spec, name: str) -> str:
    message = f"Unknown flag: {name}"
    if spec.command == "RUN" and name in ("mount", "network", "security"):
        message += f" (RUN --{name} needs BuildKit, which this engine does not provide)"
    elif spec.known:
        message += f" ({spec.command} accepts --" + ", --".join(sorted(spec.known)) + ")"
    else:
        message += f" ({spec.command} takes no flags)"
    return message


def _flag_value(name: str, kind: str, has_eq: bool, value: str) -> str:
    if kind == "bool":
        if has_eq and value == "":
            raise FlagError(f"Missing a value on flag: {name}")
        lower = value.lower()
        if lower == "":
            return "true"
        if lower not in ("true", "false"):
            raise FlagError(f"Expecting boolean value for flag {name}, not: {value}")
        return lower
    if not has_eq:
        raise FlagError(f"Missing a value on flag: {name}")
    return value


def _check_health_flags(flags: dict[str, str]) -> None:
    for name in HEALTH_DURATIONS:
        if name in flags and flags[name] != "":
            ns = parse_go_duration(flags[name])
            if 0 < ns < _MIN_DURATION_NS or ns < 0:
                raise FlagError(f'Interval "{name}" cannot be less than 1ms')
    retries = flags.get("retries", "")
    if retries:
        try:
            count = int(retries, 10)
        except ValueError:
            raise FlagError(
                f'strconv.ParseInt: parsing "{retries}": invalid syntax (--retries takes a count)'
            ) from None
        if count < 0:
            raise FlagError(f"--retries cannot be negative ({count})")


_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string ("1m30s", "1.5h", "0"), as time.ParseDuration."""
    body = text
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise FlagError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            raise FlagError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    return sign * round(total)
