"""The saved boot state's bookkeeping (key, meta, discard) and the wake-up protocol,
with the host half talking to the guest half's own parser over a real unix socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine import bootstate, filenames, wakeup
from machine.errors import MachineError
from tests import pathmodule

GUEST = Path(__file__).resolve().parents[3] / "vmimage" / "guest"
ARGV = ["qemu-system-x86_64", "-M", "microvm", "-m", "1024"]
SEED = {"version": 1, "engine_args": ["--ip", "10.0.2.15"], "time": 1}


guest = pathmodule.load("guest_wakeup", GUEST / "wakeup.py")


def key(**change: object) -> str:
    parts: dict[str, object] = {"argv": ARGV, "seed_doc": SEED, "manifest": b"m", "disk_gb": 4}
    parts.update(change)
    return bootstate.key(**parts)  # type: ignore[arg-type]


def test_the_key_ignores_the_seed_clock_and_nothing_else() -> None:
    assert key() == key(seed_doc={**SEED, "time": 999})
    assert key() != key(seed_doc={**SEED, "engine_args": []})
    assert key() != key(argv=[*ARGV, "-smp", "4"])
    assert key() != key(manifest=b"other image")
    assert key() != key(disk_gb=8)


def test_a_state_is_used_only_under_its_own_key(tmp_path: Path) -> None:
    assert bootstate.usable(tmp_path, "k") is None and bootstate.should_save(tmp_path, "k")
    (tmp_path / filenames.BOOT_STATE).write_bytes(b"state")
    bootstate.record(tmp_path, bootstate.Meta("k", True, size=5))
    assert bootstate.usable(tmp_path, "k") == tmp_path / filenames.BOOT_STATE
    assert bootstate.usable(tmp_path, "other") is None
    assert not bootstate.should_save(tmp_path, "k") and bootstate.should_save(tmp_path, "other")
    bootstate.discard(tmp_path)
    assert not (tmp_path / filenames.BOOT_STATE).exists()
    assert bootstate.read_meta(tmp_path) is None


def test_a_refused_save_is_remembered_for_its_key(tmp_path: Path) -> None:
    bootstate.record(tmp_path, bootstate.Meta("k", False, "vhost-user-fs cannot migrate"))
    assert bootstate.usable(tmp_path, "k") is None
    assert not bootstate.should_save(tmp_path, "k")
    assert bootstate.read_meta(tmp_path) == bootstate.Meta(
        "k", False, "vhost-user-fs cannot migrate"
    )


def test_a_damaged_meta_file_means_no_state(tmp_path: Path) -> None:
    (tmp_path / filenames.BOOT_STATE).write_bytes(b"state")
    (tmp_path / filenames.BOOT_META).write_text("{not json")
    assert bootstate.usable(tmp_path, "k") is None
    assert bootstate.should_save(tmp_path, "k")


def test_the_migration_uris_quote_the_path() -> None:
    path = Path("/home/a b/m/boot.state")
    assert bootstate.save_uri(path) == "exec:cat > '/home/a b/m/boot.state'"
    assert bootstate.load_uri(path) == "exec:cat '/home/a b/m/boot.state'"


def test_the_host_line_is_what_the_guest_parses() -> None:
    when, entropy = guest.parse(wakeup.line(now=1234.5))
    assert when == 1234.5 and len(entropy) == wakeup.ENTROPY_BYTES
    assert guest.parse(wakeup.line())[1] != guest.parse(wakeup.line())[1]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "not {time, entropy}"),
        (b'{"time": 1}\n', "not {time, entropy}"),
        (b'{"time": 1, "entropy": "zz"}\n', "not {time, entropy}"),
        (b'{"time": 1, "entropy": "00ff"}\n', "2 bytes, fewer than 32"),
    ],
)
def test_the_guest_refuses_a_bad_line(line: bytes, error: str) -> None:
    with pytest.raises(guest.WakeError, match=error.replace("{", r"\{").replace("}", r"\}")):
        guest.parse(line)


def test_the_guest_reseeds_through_the_kernel_interface() -> None:
    """RNDADDENTROPY and RNDRESEEDCRNG are real ioctls on /dev/urandom (root only): a wrong
    number would fail every wake-up, so they are exercised here."""
    guest.reseed(bytes(range(64)))


def test_the_guest_finds_its_control_port_by_name(tmp_path: Path) -> None:
    for port, name in (("vport0p1", "other"), ("vport1p1", guest.PORT_NAME)):
        (tmp_path / port).mkdir()
        (tmp_path / port / "name").write_text(name + "\n")
    assert guest.control_port(str(tmp_path)) == "/dev/vport1p1"
    assert guest.control_port(str(tmp_path / "none")) is None


@pytest.fixture
def guest_port(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A unix socket in QEMU's place whose far end answers as the guest would: the guest
    half's own parser judges each line (the clock and the RNG are left alone)."""
    path = tmp_path / "ctl.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            line = conn.makefile("rb").readline()
            seen.append(line)
            if line == b"":
                return
            try:
                guest.parse(line)
                conn.sendall(b'{"ok": true}\n')
            except guest.WakeError as e:
                conn.sendall(json.dumps({"error": str(e)}).encode() + b"\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield path, seen
    server.close()
    thread.join(5)


def test_the_host_wakes_the_guest(guest_port: tuple[Path, list[bytes]]) -> None:
    path, seen = guest_port
    wakeup.wake(path, time.monotonic() + 5)
    assert json.loads(seen[0])["time"] == pytest.approx(time.time(), abs=5)


def test_a_refusal_carries_the_guest_reason(
    guest_port: tuple[Path, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeup, "ENTROPY_BYTES", 8)
    with pytest.raises(wakeup.WakeRefused, match="8 bytes, fewer than 32"):
        wakeup.wake(guest_port[0], time.monotonic() + 5)


def test_a_guest_that_never_answers_times_out(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)
        with pytest.raises(MachineError, match="did not answer its wake-up in time"):
            wakeup.wake(path, time.monotonic() + 0.3)


def test_no_control_socket_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MachineError, match="does not accept connections"):
        wakeup.wake(tmp_path / "missing.sock", time.monotonic() + 0.1)


def test_a_failed_save_leaves_nothing_and_is_tried_again(tmp_path: Path) -> None:
    """Not a refusal (no QMP here, a full disk in the guest test): nothing is recorded."""
    meta = bootstate.save(tmp_path, tmp_path / "no-qmp.sock", "k", timeout=0.2)
    assert not meta.saved and meta.reason
    assert list(tmp_path.iterdir()) == []
    assert bootstate.should_save(tmp_path, "k")
