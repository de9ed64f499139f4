"""The shim's channel to its container init, on real SEQPACKET socket pairs.

An init that fails while building its rootfs sends its reason and exits before
it reads the shim's "joined". The kernel then reports a reset on the shim's end
ahead of the queued reason; the reason must still be what the user sees.
"""

from __future__ import annotations

import socket

import pytest

from engine.runtime import shim

REASON = b"error:mount /data: No such file or directory"


def _failed_init(reason: bytes | None) -> socket.socket:
    """Our end of a channel whose init sent `reason` (None: nothing) and exited
    with our "joined" unread."""
    ours, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.settimeout(5)
    ours.send(b"joined")
    if reason is not None:
        init.send(reason)
    init.close()
    return ours


def test_the_kernel_reports_the_reset_ahead_of_the_queued_reason() -> None:
    with _failed_init(REASON) as ours, pytest.raises(ConnectionResetError):
        ours.recv(65536)


def test_the_reason_is_read_past_the_reset() -> None:
    with _failed_init(REASON) as ours:
        assert shim._past_reset(lambda: ours.recv(65536)) == REASON
        assert ours.recv(65536) == b""  # then EOF, not a second reset


def test_the_early_error_reads_the_reason_past_the_reset_and_never_waits() -> None:
    with _failed_init(REASON) as ours:
        assert shim._early_error(ours) == "mount /data: No such file or directory"
    ours, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, init:
        assert shim._early_error(ours) == ""  # nothing sent yet


def test_an_init_that_died_silently_reads_as_eof() -> None:
    with _failed_init(None) as ours:
        assert shim._past_reset(lambda: ours.recv(65536)) == b""
