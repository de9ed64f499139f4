""".dockerignore for the builder: the shared rules, with errors the API understands.

The pattern rules live in the top-level `patternmatcher` package, which the
app's context packer imports too: the files a client leaves out and the
files the engine leaves out must be the same, so there is one matcher. Here a
malformed pattern becomes an InvalidParameter (HTTP 400) naming the line.
"""

from __future__ import annotations

from typing import Self

import patternmatcher
from engine.errors import InvalidParameter
from patternmatcher import ALWAYS_SENT, Pattern, go_clean, read_patterns

__all__ = ["ALWAYS_SENT", "BadPattern", "DockerIgnore", "Pattern", "go_clean", "read_patterns"]


class BadPattern(InvalidParameter):
    """A .dockerignore line that is not a valid pattern."""


class DockerIgnore(patternmatcher.DockerIgnore):
    """The shared matcher; a bad pattern is the client's mistake, reported as a 400."""

    @classmethod
    def parse(cls, text: str) -> Self:
        try:
            return cls(patternmatcher.DockerIgnore.parse(text).patterns)
        except patternmatcher.BadPattern as e:
            raise BadPattern(e.message) from None
