"""The clock watch's arithmetic and the guest engine's publish address, without a VM."""

from __future__ import annotations

from machine import clockwatch
from machine.qemu_backend import GUEST_ENGINE_IP, guest_engine_args


def test_skew_takes_the_guest_answer_at_the_round_trips_midpoint() -> None:
    assert clockwatch.skew(100.0, 102.0, "70.5\n") == 30.5
    assert clockwatch.skew(100.0, 100.2, "100.1") == 0.0
    assert clockwatch.skew(100.0, 100.2, "Traceback ...") is None


def test_guest_engine_publishes_on_the_user_network_address_unless_told() -> None:
    assert guest_engine_args(["--insecure-registry", "x"]) == [
        "--insecure-registry",
        "x",
        "--ip",
        GUEST_ENGINE_IP,
    ]
    assert guest_engine_args(["--ip=127.0.0.1"]) == ["--ip=127.0.0.1"]
    assert guest_engine_args(["--ip", "0.0.0.0"]) == ["--ip", "0.0.0.0"]
