"""`.env` and `env_file:` files: KEY=VALUE lines, the same rules for both.

Compose's rules: blank lines and `#` comments are skipped, `export ` is allowed, values may
be single-quoted (literal) or double-quoted (with \\n, \\t, \\" escapes); an unquoted value
ends at ` #`. A line with a bare KEY takes its value from the shell environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from app.compose.errors import ComposeError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse(text: str, source: str, shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY -> value from the file's text; `source` names the file in errors."""
    env = os.environ if shell is None else shell
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _KEY.match(key):
            raise ComposeError(f"{source}:{number}: {key!r} is not a valid variable name")
        if not sep:
            if key in env:
                out[key] = env[key]
            continue
        out[key] = _value(value.strip())
    return out


def _value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), value[1:-1])
    comment = value.find(" #")
    return (value[:comment] if comment >= 0 else value).rstrip()


def read(path: Path, shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """The file's variables; a missing or unreadable file is a ComposeError naming it."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ComposeError(f"cannot read env file {path}: {e.strerror or e}") from None
    return parse(text, str(path), shell)
