"""Interpolation forms as compose v2 resolves them, and errors that name file, line, key."""

from __future__ import annotations

import pytest

from app.compose.errors import ComposeError
from app.compose.interpolate import interpolate, interpolate_str

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${SET}", "value"),
        ("$SET/x", "value/x"),
        ("${UNSET}", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${SET:-dflt}", "value"),
        ("${SET:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${UNSET:-${SET}}", "value"),
        ("$$SET and $${SET}", "$SET and ${SET}"),
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_forms(text: str, expected: str) -> None:
    assert interpolate_str(text, ENV, "f:1: k") == expected


def test_required_variable_error_names_where_and_message() -> None:
    with pytest.raises(ComposeError, match=r"^f:3: services.web.image: .*TAG.*set TAG"):
        interpolate_str("busybox:${TAG:?set TAG}", ENV, "f:3: services.web.image")
    with pytest.raises(ComposeError, match="required variable EMPTY"):
        interpolate_str("${EMPTY:?}", ENV, "f:1: k")
    assert interpolate_str("${EMPTY?}", ENV, "f:1: k") == ""


def test_unclosed_brace_is_an_error() -> None:
    with pytest.raises(ComposeError, match="missing '}'"):
        interpolate_str("${SET", ENV, "f:1: k")


def test_walks_values_not_keys() -> None:
    doc = {"services": {"$SET": {"image": "${SET}", "ports": ["${SET}", 3]}}}
    out = interpolate(doc, ENV, lambda path: ".".join(map(str, path)))
    assert out == {"services": {"$SET": {"image": "value", "ports": ["value", 3]}}}
