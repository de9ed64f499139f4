"""Validation against the official compose-spec JSON schema, with file:line errors.

Why the official schema rather than our own checks: it is what other compose tools accept,
so a file valid for them is valid for us and the other way round. jsonschema's own messages
for `oneOf` are vague ("is not valid under any of the given schemas"), so `describe` turns
the most relevant error into a sentence naming the key and what it must be.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from app.compose.errors import ComposeError

if TYPE_CHECKING:
    from app.compose.loader import LoadedFile

# Written by scripts/fetch_compose_schema.py (make deps) from a pinned compose release.
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
_UNEXPECTED = re.compile(r"'([^']+)' (?:was|were) unexpected|\('([^']+)'")


@cache
def validator() -> jsonschema.Draft7Validator:
    try:
        schema = json.loads(SCHEMA_FILE.read_text())
    except FileNotFoundError:
        raise ComposeError(
            f"the compose schema is missing ({SCHEMA_FILE}): run `make deps` to fetch it"
        ) from None
    return jsonschema.Draft7Validator(_modernize(schema))


def _modernize(schema: dict[str, Any]) -> dict[str, Any]:
    """Later additions of the spec that compose v2 accepts and the pinned schema predates:
    a top-level `name:`, booleans as values of an environment or label map, the long
    port syntax's `host_ip`, `name`, `app_protocol` and string `published` ranges, and
    the build's `no_cache` and `pull`."""
    schema["properties"].setdefault("name", {"type": "string"})
    build = schema["definitions"]["service"]["properties"]["build"]["oneOf"][1]["properties"]
    for key in ("no_cache", "pull"):
        build.setdefault(key, {"type": "boolean"})
    port = schema["definitions"]["service"]["properties"]["ports"]["items"]["oneOf"][2]
    port["properties"]["published"] = {"type": ["string", "integer"]}
    for key in ("host_ip", "name", "app_protocol"):
        port["properties"].setdefault(key, {"type": "string"})
    value = schema["definitions"]["list_or_dict"]["oneOf"][0]["patternProperties"][".+"]
    if "boolean" not in value["type"]:
        value["type"].append("boolean")
    return schema


def validate(loaded: LoadedFile) -> None:
    """Raise a ComposeError for the most relevant schema violation of one file."""
    error = best_match(validator().iter_errors(_as_compose_reads(loaded.data)))
    if error is None:
        return
    path = tuple(error.absolute_path)
    extra = _unexpected_keys(error)
    if extra:
        where = loaded.where(path, line_of=(*path, extra[0]))
        raise ComposeError(f"{where}: additional property {extra[0]!r} is not allowed")
    raise ComposeError(f"{loaded.where(path)}: {describe(error)}")


def _as_compose_reads(data: Any) -> Any:
    """A copy with numeric strings where the schema wants numbers.

    Interpolation yields strings (`published: ${PORT}`), and compose casts such values by
    the schema's type before it validates; the model reads the original data either way.
    """
    data = copy.deepcopy(data)
    for _ in range(_MAX_CASTS):
        casts = [e for e in _all_errors(validator().iter_errors(data)) if _castable(e)]
        if not casts:
            break
        for e in casts:
            _set(data, tuple(e.absolute_path), _number(e.instance))
    return data


_MAX_CASTS = 8


def _all_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    for e in errors:
        yield e
        yield from _all_errors(e.context or [])


def _castable(e: ValidationError) -> bool:
    wanted = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
    numeric = "integer" in wanted or "number" in wanted
    return (
        e.validator == "type"
        and numeric
        and isinstance(e.instance, str)
        and (_number(e.instance) is not None)
    )


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    if path:
        data[path[-1]] = value


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
