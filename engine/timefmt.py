"""Docker's timestamps: RFC 3339 in UTC, and its zero time for "never"."""

from __future__ import annotations

from datetime import UTC, datetime

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; 0 for Docker's zero time or anything unparsable."""
    if not text or text.startswith("0001-"):
        return 0.0
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return moment.timestamp() + (float(f"0.{frac}") if frac.isdigit() else 0.0)
