"""`${VAR}` interpolation over a loaded compose document, like compose v2.

Forms: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
`${VAR:?error}` / `${VAR?error}` (required), `${VAR:+alt}` / `${VAR+alt}`, and `$$` for a
literal `$`. Defaults may themselves hold `${...}`. Only string scalars are touched, never
mapping keys, so a service named `$x` stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from app.compose.errors import ComposeError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate_str(text: str, env: Mapping[str, str], where: str) -> str:
    """The text with every variable replaced; `where` (file:line: key) prefixes errors."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2, where)
            out.append(_braced(text[i + 2 : end], env, where))
            i = end + 1
        elif m := _NAME.match(text, i + 1):
            out.append(env.get(m[0], ""))
            i = m.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int, where: str) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ComposeError(f"{where}: invalid interpolation format {text!r}: missing '}}'")


def _braced(body: str, env: Mapping[str, str], where: str) -> str:
    m = _NAME.match(body)
    if not m:
        raise ComposeError(f"{where}: invalid interpolation format for ${{{body}}}")
    name, rest = m[0], body[m.end() :]
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            return _apply(op, name, value, arg, env, where)
    raise ComposeError(f"{where}: invalid interpolation format for ${{{body}}}")


def _apply(
    op: str, name: str, value: str | None, arg: str, env: Mapping[str, str], where: str
) -> str:
    unset = value is None or (op.startswith(":") and value == "")

    def sub() -> str:
        return interpolate_str(arg, env, where)

    if op in (":-", "-"):
        return sub() if unset else str(value)
    if op in (":+", "+"):
        return "" if unset else sub()
    if unset:
        message = sub() or f"variable {name} is required"
        raise ComposeError(f"{where}: required variable {name} is missing a value: {message}")
    return str(value)


def interpolate(
    doc: Any, env: Mapping[str, str], where: Callable[[tuple[str | int, ...]], str]
) -> Any:
    """A copy of the document with every string value interpolated."""

    def walk(node: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            return interpolate_str(node, env, where(path))
        return node

    return walk(doc, ())
