"""The installed Dockyard's version, from its package metadata (pyproject.toml's version)."""

from __future__ import annotations

from importlib import metadata

UNKNOWN = "0+unknown"  # running from a source tree that was never installed


def version() -> str:
    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return UNKNOWN
