"""Wait until the engine answers `GET /_ping` on its unix socket (guest side, stdlib only).

boot.sh prints the `engine` stage only after this succeeds: a socket file that
exists is not yet an engine that answers.
"""

from __future__ import annotations

import socket
import sys
import time


def ping(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            reply = s.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def main(path: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(path):
            return 0
        time.sleep(0.02)
    print(f"engine did not answer /_ping on {path} within {timeout:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
