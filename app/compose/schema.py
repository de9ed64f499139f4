"""Validation against the official compose-spec JSON schema, with file:line errors.

Why the official schema rather than our own checks: it is what other compose tools accept,
so a file valid for them is valid for us and the other way round. jsonschema's own messages
for `oneOf` are vague ("is not valid under any of the given schemas"), so `describe` turns
the most relevant error into a sentence naming the key and what it must be.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from app.compose.errors import ComposeError

if TYPE_CHECKING:
    from app.compose.loader import LoadedFile

SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
_UNEXPECTED = re.compile(r"'([^']+)' (?:was|were) unexpected|\('([^']+)'")


@cache
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))


def validate(loaded: LoadedFile) -> None:
    """Raise a ComposeError for the most relevant schema violation of one file."""
    error = best_match(validator().iter_errors(loaded.data))
    if error is None:
        return
    path = tuple(error.absolute_path)
    extra = _unexpected_keys(error)
    if extra:
        where = loaded.where(path, line_of=(*path, extra[0]))
        raise ComposeError(f"{where}: additional property {extra[0]!r} is not allowed")
    raise ComposeError(f"{loaded.where(path)}: {describe(error)}")


def _unexpected_keys(error: ValidationError) -> list[str]:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    known = set(error.schema.get("properties", {}))
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    return [
        str(k)
        for k in error.instance
        if k not in known and not any(p.search(str(k)) for p in patterns)
    ]


def describe(error: ValidationError) -> str:
    """What is wrong, in the words a user needs: what the value is and what it must be."""
    value = error.instance
    if error.validator == "type":
        return f"must be {_types(error.validator_value)}, not {_kind(value)}"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"must be one of {allowed}, not {value!r}"
    if error.validator in ("oneOf", "anyOf"):
        types: list[str] = []
        for sub in error.validator_value:
            types += _schema_types(sub)
        if types:
            return f"must be {_types(types)}, not {_kind(value)}"
        return f"{value!r} does not match any allowed form"
    if error.validator == "uniqueItems":
        return "has duplicate entries; each entry must be unique"
    return str(error.message)


def _schema_types(sub: dict[str, Any]) -> list[str]:
    if "type" in sub:
        t = sub["type"]
        return list(t) if isinstance(t, list) else [t]
    ref = str(sub.get("$ref", ""))
    if ref.startswith("#/definitions/"):
        target = validator().schema["definitions"].get(ref.rsplit("/", 1)[1], {})
        if "type" in target:
            return _schema_types(target)
        if "oneOf" in target:
            out: list[str] = []
            for s in target["oneOf"]:
                out += _schema_types(s)
            return out
    return []


_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "empty",
}


def _types(types: Any) -> str:
    listed = types if isinstance(types, list) else [types]
    names = list(dict.fromkeys(_NAMES.get(str(t), str(t)) for t in listed))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"a string ({value!r})"
