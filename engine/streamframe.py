"""Docker's multiplexed stream framing, shared by the shim, logs and exec.

Each frame is a stream byte (0 stdin, 1 stdout, 2 stderr), three zero bytes and
a big-endian length, then the data: how clients tell stdout from stderr on one
connection when there is no tty.
"""

from __future__ import annotations

import struct

STDOUT = 1
STDERR = 2


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data
