"""`dockyard machine sync status`: the status files sessions write, as the CLI prints them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from app import cli
from machine.backend import ShareSpec
from machine.errors import ConfigError
from machine.sync import shares
from machine.sync.status import STATE_DIR, SyncStatus, format_status, sync_status


def _status(**kw: object) -> SyncStatus:
    base: dict[str, object] = {
        "tag": "src",
        "host_path": "/home/me/src",
        "guest_path": "/src",
        "state": "watching",
        "pid": os.getpid(),
        "last_sync": time.time() - 5,
    }
    return SyncStatus(**{**base, **kw})  # type: ignore[arg-type]


def test_pending_changes_per_direction() -> None:
    text = format_status(_status(state="paused", paused=True, to_guest=["a", "b"], to_host=["c"]))
    assert text.splitlines()[0].startswith("src: /home/me/src <-> guest /src: paused")
    assert "pending: 2 host->guest, 1 guest->host" in text
    assert "host->guest: a, b" in text and "guest->host: c" in text


def test_many_paths_are_summed_up(tmp_path: Path) -> None:
    text = format_status(_status(to_guest=[f"f{i}" for i in range(25)]))
    assert "and 15 more" in text
    many = _status(to_host=[f"f{i}" for i in range(5000)])
    many.write(tmp_path)
    again = SyncStatus.read(tmp_path / "src.status.json")
    assert (again.n_to_host, len(again.to_host)) == (5000, 100)
    assert "pending: 0 host->guest, 5000 guest->host" in format_status(again)
    assert "and 4990 more" in format_status(again)


def test_errors_show_their_hint() -> None:
    text = format_status(_status(errors={"big.bin": "the guest's disk is full\nhint: free it"}))
    assert "not synced: big.bin: the guest's disk is full" in text
    assert "    hint: free it" in text


def test_a_session_that_is_gone_shows_as_stopped() -> None:
    assert ": stopped" in format_status(_status(pid=2**22 + 12345))


def test_sync_status_reads_every_share(tmp_path: Path) -> None:
    assert sync_status(tmp_path) == "no sync shares have run on this machine"
    _status(tag="a").write(tmp_path / STATE_DIR)
    _status(tag="b", to_host=["x"]).write(tmp_path / STATE_DIR)
    (tmp_path / STATE_DIR / "c.status.json").write_text("{broken")
    text = sync_status(tmp_path)
    assert text.index("a: ") < text.index("b: ")
    assert "0 host->guest, 1 guest->host" in text
    assert "c.status.json: unreadable status" in text


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="creating a native machine needs Linux and root",
)
def test_the_cli_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    assert cli.main(["machine", "create", "m", "--backend", "native"]) == 0
    capsys.readouterr()
    assert cli.main(["machine", "sync", "status", "m"]) == 0
    assert "no sync shares" in capsys.readouterr().out
    _status(to_guest=["new.txt"]).write(tmp_path / "home" / "m" / STATE_DIR)
    assert cli.main(["machine", "sync", "status", "m"]) == 0
    assert "1 host->guest, 0 guest->host" in capsys.readouterr().out
    assert cli.main(["machine", "sync", "status", "nosuch"]) == 1
    assert "no machine named" in capsys.readouterr().err


def test_a_machines_sync_shares_become_sessions(tmp_path: Path) -> None:
    specs = [
        ShareSpec(Path("/a"), "/a", "9p"),
        ShareSpec(Path("/b"), "/guest/b", "sync"),
    ]
    (session,) = shares.sessions(tmp_path, specs, lambda: None)  # type: ignore[arg-type,return-value]
    assert (session.share.tag, session.share.host_path, session.share.guest_path) == (
        "share1",
        Path("/b"),
        "/guest/b",
    )
    assert session.state_dir == tmp_path / STATE_DIR
    assert ".git/" in session.share.ignore


def test_a_read_only_sync_share_is_refused(tmp_path: Path) -> None:
    spec = ShareSpec(Path("/b"), "/b", "sync", readonly=True)
    with pytest.raises(ConfigError, match="read-only sync share") as e:
        shares.sessions(tmp_path, [spec], lambda: None)  # type: ignore[arg-type,return-value]
    assert "9p or virtiofs" in e.value.hint
    assert not (tmp_path / STATE_DIR).exists()
