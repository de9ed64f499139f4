"""Docker's json-file log driver, written by the shim.

One JSON object per line: {"log":"hi\\n","stream":"stdout","time":"...Z"}.
Output is cut at newlines; a line longer than 16 KiB, or an unterminated tail
at EOF, is flushed as its own record, as Docker's copier does. Rotation keeps
`max_file` files: name, name.1 ... name.<max_file-1>.
The shim imports this, so it avoids the `json` package (it pulls in `re`).
"""

from __future__ import annotations

import os
import time

try:
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - interpreters without the C accelerator
    from json import dumps as _quote

PARTIAL_LIMIT = 16 * 1024


def rfc3339_nano(ns: int | None = None) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction trimmed."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def record(stream: str, data: bytes, ns: int | None = None) -> bytes:
    text = _quote(data.decode("utf-8", errors="replace"))
    return f'{{"log":{text},"stream":"{stream}","time":"{rfc3339_nano(ns)}"}}\n'.encode()


class LogWriter:
    """Appends records, rotating before a write would pass max_size."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self._pending: dict[str, bytes] = {}
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        buf = self._pending.get(stream, b"") + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._emit(stream, buf[start : nl + 1])
            start = nl + 1
        rest = buf[start:]
        while len(rest) >= PARTIAL_LIMIT:
            self._emit(stream, rest[:PARTIAL_LIMIT])
            rest = rest[PARTIAL_LIMIT:]
        self._pending[stream] = rest

    def flush(self) -> None:
        """At EOF: the unterminated tail of each stream becomes its own record."""
        for stream, rest in list(self._pending.items()):
            if rest:
                self._emit(stream, rest)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _emit(self, stream: str, line: bytes) -> None:
        rec = record(stream, line)
        if self.max_size > 0 and self._size > 0 and self._size + len(rec) > self.max_size:
            self._rotate()
        os.write(self._fd, rec)
        self._size += len(rec)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file > 1:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        else:
            os.truncate(self.path, 0)
        self._fd = self._open()
        self._size = 0
