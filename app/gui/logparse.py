"""Turn the bytes of `GET /containers/{id}/logs?timestamps=1` into log entries.

Why a pure module: the logs view's worker thread feeds it whatever chunks the socket gives
(frames split anywhere, lines split across frames, a UTF-8 character split across chunks),
and every one of those cases is a plain unit test here. No Qt, no sockets.

Two wire forms: multiplexed frames (8-byte header: stream, 0, 0, 0, size BE32) for a
container without a TTY, raw bytes (one stream) for a TTY container. With timestamps on, the
engine puts `RFC3339NANO ` before every record; the entry keeps it apart so the view can
show or hide it without asking the engine again.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from app.gui import ansi

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxI")


class LogEntry(NamedTuple):
    stream: int  # STDOUT or STDERR
    time: str  # the engine's RFC 3339 timestamp, "" when the stream had none
    line: ansi.Line


class _Partial:
    """One stream's unfinished line: its timestamp, bytes so far, and its ANSI style."""

    def __init__(self) -> None:
        self.time = ""
        self.data = bytearray()
        self.style = ansi.PLAIN


class LogParser:
    """Feed chunks, get complete entries; `finish()` flushes a last line with no newline."""

    def __init__(self, tty: bool, timestamps: bool = True) -> None:
        self.tty = tty
        self.timestamps = timestamps
        self._buf = bytearray()
        self._partial = {STDOUT: _Partial(), STDERR: _Partial()}

    def feed(self, chunk: bytes) -> list[LogEntry]:
        out: list[LogEntry] = []
        if self.tty:
            self._buf += chunk
            end = self._buf.rfind(b"\n") + 1
            if end:
                for raw in bytes(self._buf[:end]).split(b"\n")[:-1]:
                    self._record(STDOUT, raw + b"\n", out)
                del self._buf[:end]
            return out
        self._buf += chunk
        pos, size = 0, len(self._buf)
        view = memoryview(self._buf)
        try:
            while size - pos >= _HEADER.size:
                kind, length = _HEADER.unpack_from(view, pos)
                if size - pos - _HEADER.size < length:
                    break
                start = pos + _HEADER.size
                self._record(
                    STDERR if kind == STDERR else STDOUT, bytes(view[start : start + length]), out
                )
                pos = start + length
        finally:
            view.release()
        del self._buf[:pos]
        return out

    def finish(self) -> list[LogEntry]:
        """The lines still open when the stream ends (a last line without a newline)."""
        out: list[LogEntry] = []
        if self.tty and self._buf:
            self._record(STDOUT, bytes(self._buf), out)
            self._buf.clear()
        for stream, part in self._partial.items():
            if part.data:
                out.append(self._entry(stream, part))
        return out

    def _record(self, stream: int, record: bytes, out: list[LogEntry]) -> None:
        """One engine record: an optional timestamp, then text that may hold several lines
        or end mid-line (the rest follows in the next record of the same stream)."""
        part = self._partial[stream]
        if self.timestamps:
            stamp, sep, rest = record.partition(b" ")
            if sep and _looks_like_time(stamp):
                if not part.data:
                    part.time = stamp.decode("ascii")
                record = rest
        *lines, tail = record.split(b"\n")
        for line in lines:
            part.data += line
            out.append(self._entry(stream, part))
        part.data += tail

    @staticmethod
    def _entry(stream: int, part: _Partial) -> LogEntry:
        text = part.data.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        line, part.style = ansi.parse(text, part.style)
        entry = LogEntry(stream, part.time, line)
        part.data = bytearray()
        return entry


def _looks_like_time(stamp: bytes) -> bool:
    return len(stamp) >= 20 and stamp[4:5] == b"-" and stamp[10:11] == b"T"
