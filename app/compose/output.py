"""What compose prints: progress lines like compose v2 (" Container p-web-1  Started") on
stderr, and log lines prefixed with a coloured `service-1  | ` on stdout.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)


class Printer:
    """Serializes lines from several threads (log followers) onto the two streams."""

    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, colour: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.colour = self.out.isatty() if colour is None else colour
        self._lock = threading.Lock()

    def progress(self, kind: str, name: str, status: str) -> None:
        self._write(self.err, f" {kind} {name}  {status}" if kind else f" {name}  {status}")

    def warn(self, message: str) -> None:
        self._write(self.err, f"WARN[0000] {message}")

    def line(self, text: str) -> None:
        self._write(self.out, text)

    def prefixed(self, prefix: str, index: int, text: str) -> None:
        if self.colour:
            code = _COLOURS[index % len(_COLOURS)]
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        self._write(self.out, f"{prefix}{text}")

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text + "\n")
            stream.flush()


def prefixes(names: list[str]) -> dict[str, str]:
    """`web-1  | ` padded so every service's lines line up."""
    width = max((len(n) for n in names), default=0)
    return {n: f"{n.ljust(width)}  | " for n in names}
