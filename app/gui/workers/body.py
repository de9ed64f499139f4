"""A streamed HTTP reply body read in large pieces, chunked encoding undone here.

Why not `HTTPResponse.read1`: with chunked encoding it returns one HTTP chunk per call, and
the engine writes one chunk per log record, so a 100,000-line log became 100,000 reads, each
a trip through the socket layer and a hand-over of the GIL that the GUI thread was waiting
for. Reading whatever the socket has (up to 64 KiB) and splitting the chunks ourselves turns
that into a few hundred reads. `pieces` does both on the reading thread (pull progress);
the logs view moves the raw bytes and runs `ChunkDecoder` on the GUI thread in its frame
budget (workers/logs_stream.py says why).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

READ_SIZE = 65536


class BadChunk(ValueError):
    pass


def pieces(resp: http.client.HTTPResponse, size: int = READ_SIZE) -> Iterator[bytes]:
    """The body as it arrives, in pieces of up to about `size` bytes, until it ends."""
    fp = resp.fp
    if fp is None:
        return
    if not resp.chunked:
        while data := fp.read1(size):
            yield data
        return
    decoder = ChunkDecoder()
    while not decoder.done and (data := fp.read1(size)):
        if body := decoder.feed(data):
            yield body


class ChunkDecoder:
    """Undoes `Transfer-Encoding: chunked` over arbitrary splits of the wire bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # bytes of the current chunk's data still to come
        self._crlf = 0  # bytes of the CRLF after a chunk's data still to skip
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes that `data` completes (possibly none)."""
        self._buf += data
        out = bytearray()
        pos = 0
        buf = self._buf
        while pos < len(buf) and not self.done:
            if self._crlf:
                skip = min(self._crlf, len(buf) - pos)
                pos += skip
                self._crlf -= skip
            elif self._left:
                take = min(self._left, len(buf) - pos)
                out += buf[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    self._crlf = 2
            else:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                size_text = bytes(buf[pos:end]).split(b";", 1)[0].strip()
                try:
                    self._left = int(size_text, 16)
                except ValueError:
                    raise BadChunk(f"bad chunk size {size_text!r} in the reply") from None
                pos = end + 2
                if self._left == 0:
                    self.done = True
        del buf[:pos]
        return bytes(out)
