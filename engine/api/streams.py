"""Copying bytes between a hijacked client connection and a container's stdio.

Two sources exist: a shim's attach socket (already framed by the shim) and an
exec process's file descriptors (framed here). In both, the client's half-close
closes the process's stdin, and the end of output ends the connection, which
is how `docker run` and `docker exec` learn the stream is over.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO

from engine.streamframe import frame

CHUNK = 65536


def _read_client(rfile: BinaryIO) -> bytes:
    read1 = getattr(rfile, "read1", None)
    return bytes(read1(CHUNK) if read1 else rfile.read(CHUNK))


def _forward_stdin(
    rfile: BinaryIO, write: Callable[[bytes], object], close: Callable[[], object]
) -> None:
    try:
        while True:
            data = _read_client(rfile)
            if not data:
                break
            write(data)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            close()


def pump_socket(
    client: socket.socket, rfile: BinaryIO, upstream: socket.socket, stdin: bool
) -> None:
    """Client <-> shim attach socket, until the shim's output ends."""
    if stdin:
        threading.Thread(
            target=_forward_stdin,
            args=(rfile, upstream.sendall, lambda: upstream.shutdown(socket.SHUT_WR)),
            daemon=True,
        ).start()
    try:
        while True:
            data = upstream.recv(CHUNK)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        upstream.close()
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)


def pump_fds(
    client: socket.socket,
    rfile: BinaryIO,
    outputs: dict[int, int],
    stdin_fd: int | None,
    tty: bool,
    before_close: Callable[[], object],
) -> None:
    """Client <-> exec process: `outputs` maps fd -> stream number (1 stdout, 2 stderr).

    `before_close` runs between the end of output and the end of the connection:
    the CLI asks for the exit code as soon as the stream ends, so it must be known by then.
    """
    if stdin_fd is not None:
        threading.Thread(
            target=_forward_stdin,
            args=(rfile, lambda d: _write_all(stdin_fd, d), lambda: _close_stdin(stdin_fd, tty)),
            daemon=True,
        ).start()
    sel = selectors.DefaultSelector()
    for fd, stream in outputs.items():
        sel.register(fd, selectors.EVENT_READ, stream)
    try:
        while sel.get_map():
            for key, _ in sel.select():
                fd = int(key.fd)
                try:
                    data = os.read(fd, CHUNK)
                except OSError:  # EIO on a pty master once the slave side is gone
                    data = b""
                if not data:
                    sel.unregister(fd)
                    continue
                client.sendall(data if tty else frame(int(key.data), data))
    except OSError:
        pass
    finally:
        sel.close()
        before_close()
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close_stdin(fd: int, tty: bool) -> None:
    if tty:
        _write_all(
            fd, b"\x04"
        )  # EOF for the pty's line discipline; the master stays open for output
    else:
        os.close(fd)
