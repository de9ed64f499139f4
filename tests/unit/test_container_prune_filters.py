"""Prune filters and `until` parsing of engine/containers/filters.py (pure)."""

from __future__ import annotations

import pytest

from engine.api import schema
from engine.containers import filters
from engine.errors import InvalidParameter

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - 86400),
        ("1h30m", NOW - 5400),
        ("1.5s", NOW - 1.5),
        ("1699999000", 1699999000.0),
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14", NOW - (22 * 3600 + 13 * 60 + 20)),
    ],
)
def test_parse_until(text: str, expected: float) -> None:
    assert filters.parse_until(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "10 min", "-", ""])
def test_bad_until_is_a_400(text: str) -> None:
    with pytest.raises(InvalidParameter, match="until"):
        filters.parse_until(text, NOW)


def test_unknown_prune_filter_is_a_400() -> None:
    with pytest.raises(InvalidParameter, match="invalid filter 'status'"):
        schema.filters({"status": ["exited"]}, filters.PRUNE_KEYS)
    with pytest.raises(InvalidParameter):
        schema.filters(["label=x"], filters.PRUNE_KEYS)


def test_unknown_status_is_a_400() -> None:
    with pytest.raises(InvalidParameter, match="status=sleeping"):
        filters.check_statuses({"status": ["sleeping"]})


def test_shows_all_when_a_filter_or_limit_implies_stopped_ones() -> None:
    assert not filters.shows_all({}, -1)
    assert filters.shows_all({}, 1)
    assert filters.shows_all({"before": ["x"]}, -1)
    assert not filters.shows_all({"label": ["a"]}, -1)


def test_before_since_without_lookup_is_refused() -> None:
    with pytest.raises(InvalidParameter):
        filters.matcher({"before": ["x"]}, lambda _c, _r: True)
