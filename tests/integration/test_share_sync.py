"""The `sync` share mode against real parts, no VM: a real OpenSSH sshd on 127.0.0.1 stands
for the guest's, a temp folder is the "guest" folder, the guest agent runs from the zip the
host uploads, and the host's folder is watched for real.

Propagation is checked by polling with a generous limit; each time taken is reported at
the end against the issue's 1 s target (tests assert behaviour, not wall-clock time).
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from machine import ssh
from machine.sync.session import SyncSession, SyncShare, running
from machine.sync.status import STATE_DIR, sync_status
from tests.sshd import run_sshd

WAIT_S = 15.0
TARGET_S = 1.0
LATENCIES: dict[str, float] = {}
NO_TARGET = {"after reconnect"}  # includes a new SSH login (this host's shell profile)


@dataclass
class Server:
    machine_dir: Path
    port: int
    pidfile: Path

    def connect(self) -> Callable[[], object]:
        return lambda: ssh.connect(self.machine_dir, self.port, time.monotonic() + 10)

    def drop_connections(self) -> int:
        """SIGKILL sshd's per-connection processes (its children), as a network cut would."""
        listener = int(self.pidfile.read_text().split()[0])
        killed = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == listener:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        return killed


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("sync-sshd")
    machine_dir = base / "m"
    machine_dir.mkdir(mode=0o700)
    with run_sshd(machine_dir, base / "sshd") as port:
        yield Server(machine_dir, port, base / "sshd" / "sshd.pid")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not LATENCIES:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nsync propagation (target {TARGET_S} s):")
        for name, seconds in LATENCIES.items():
            mark = "n/a" if name in NO_TARGET else "ok" if seconds <= TARGET_S else "SLOW"
            reporter.write_line(f"  {name}: {seconds:.3f} s {mark}")


@dataclass
class Pair:
    host: Path
    guest: Path
    state: Path
    session: SyncSession


def _session(server: Server, root: Path, tag: str = "t", **share: object) -> SyncSession:
    (root / "agent").mkdir(exist_ok=True)
    spec = SyncShare(tag, root / "host", str(root / "guest"), **share)  # type: ignore[arg-type]
    return SyncSession(spec, server.connect(), root / STATE_DIR, agent_dir=str(root / "agent"))  # type: ignore[arg-type]


@pytest.fixture
def pair(server: Server, tmp_path: Path) -> Iterator[Pair]:
    session = _session(server, tmp_path)
    session.start()
    try:
        assert session.wait_idle(WAIT_S), session.status()
        yield Pair(tmp_path / "host", tmp_path / "guest", tmp_path / STATE_DIR, session)
    finally:
        session.stop()


def eventually(name: str, check: Callable[[], bool]) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < WAIT_S, f"{name}: not seen within {WAIT_S} s"
        time.sleep(0.005)
    LATENCIES[name] = time.monotonic() - start


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _no_temp_files(*roots: Path) -> None:
    for root in roots:
        for _, _, files in os.walk(root):
            assert not [f for f in files if f.startswith(".dysync-")], files


@pytest.mark.parametrize("direction", ["host->guest", "guest->host"])
def test_create_modify_rename_delete(pair: Pair, direction: str) -> None:
    src, dst = (pair.host, pair.guest) if direction == "host->guest" else (pair.guest, pair.host)
    (src / "a.txt").write_text("one")
    eventually(f"{direction} create", lambda: _text(dst / "a.txt") == "one")
    (src / "a.txt").write_text("two, longer")
    eventually(f"{direction} modify", lambda: _text(dst / "a.txt") == "two, longer")
    inode = (dst / "a.txt").stat().st_ino
    (src / "a.txt").rename(src / "b.txt")
    eventually(
        f"{direction} rename",
        lambda: _text(dst / "b.txt") == "two, longer" and not (dst / "a.txt").exists(),
    )
    assert (dst / "b.txt").stat().st_ino == inode  # renamed there, not sent again
    (src / "b.txt").unlink()
    eventually(f"{direction} delete", lambda: not (dst / "b.txt").exists())
    _no_temp_files(pair.host, pair.guest)


@pytest.mark.parametrize("direction", ["host->guest", "guest->host"])
def test_directories_links_and_modes(pair: Pair, direction: str) -> None:
    src, dst = (pair.host, pair.guest) if direction == "host->guest" else (pair.guest, pair.host)
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "run.sh").write_text("#!/bin/sh\n")
    (src / "d" / "e" / "run.sh").chmod(0o750)
    (src / "d" / "up").symlink_to("../../..")  # points out of the share: kept as a link
    (src / "d" / "empty").mkdir()
    eventually(
        f"{direction} tree",
        lambda: (
            _text(dst / "d" / "e" / "run.sh") == "#!/bin/sh\n"
            and (dst / "d" / "up").is_symlink()
            and (dst / "d" / "empty").is_dir()
        ),
    )
    assert stat.S_IMODE((dst / "d" / "e" / "run.sh").stat().st_mode) == 0o750
    assert os.readlink(dst / "d" / "up") == "../../.."
    (src / "d" / "e" / "run.sh").chmod(0o640)
    eventually(
        f"{direction} chmod",
        lambda: stat.S_IMODE((dst / "d" / "e" / "run.sh").stat().st_mode) == 0o640,
    )
    subprocess.run(["rm", "-rf", str(src / "d")], check=True)
    eventually(f"{direction} rm -r", lambda: not (dst / "d").exists())


def test_initial_scan_is_incremental(server: Server, tmp_path: Path) -> None:
    """A restarted session hashes only the files whose size or mtime changed."""
    session = _session(server, tmp_path)
    host, guest = tmp_path / "host", tmp_path / "guest"
    host.mkdir()
    for i in range(40):
        (host / f"f{i:02}").write_text(f"content {i}")
    session.start()
    try:
        assert session.wait_idle(WAIT_S)
    finally:
        session.stop()
    assert sorted(p.name for p in guest.iterdir()) == [f"f{i:02}" for i in range(40)]
    (host / "f03").write_text("changed on the host while stopped")
    (guest / "f07").write_text("changed in the guest while stopped")
    (host / "new").write_text("new")

    again = _session(server, tmp_path)
    again.start()
    try:
        assert again.wait_idle(WAIT_S)
        st = again.status()
    finally:
        again.stop()
    assert (st.hashed_host, st.hashed_guest) == (1, 1)  # f03 on the host, f07 in the guest
    assert _text(guest / "f03") == "changed on the host while stopped"
    assert _text(host / "f07") == "changed in the guest while stopped"
    assert _text(guest / "new") == "new"


def test_conflict_keeps_both_versions(pair: Pair) -> None:
    """Acceptance 5: the same file edited on both sides while paused."""
    (pair.host / "notes.md").write_text("base")
    eventually("conflict setup", lambda: _text(pair.guest / "notes.md") == "base")
    pair.session.pause()
    assert pair.session.wait_idle(WAIT_S)
    (pair.guest / "notes.md").write_text("guest edit")
    time.sleep(0.05)  # the host's edit is the newer one
    (pair.host / "notes.md").write_text("host edit")
    eventually(
        "pending while paused",
        lambda: (
            (pair.session.status().to_guest, pair.session.status().to_host)
            == (["notes.md"], ["notes.md"])
        ),
    )
    eventually(  # what `dockyard machine sync status` prints, from the status file
        "status file while paused",
        lambda: "1 host->guest, 1 guest->host" in sync_status(pair.state.parent),
    )
    pair.session.resume()
    assert pair.session.wait_idle(WAIT_S)
    for side in (pair.host, pair.guest):
        names = sorted(p.name for p in side.iterdir())
        assert len(names) == 2, names
        assert re.fullmatch(r"notes\.md\.conflict-[\w.-]+-\d{8}-\d{6}", names[1]), names
        assert _text(side / "notes.md") == "host edit"
        assert _text(side / names[1]) == "guest edit"


def test_deleted_on_one_side_edited_on_the_other_keeps_the_edit(pair: Pair) -> None:
    (pair.host / "keep.txt").write_text("v1")
    eventually("delete/edit setup", lambda: _text(pair.guest / "keep.txt") == "v1")
    pair.session.pause()
    assert pair.session.wait_idle(WAIT_S)
    (pair.host / "keep.txt").unlink()
    (pair.guest / "keep.txt").write_text("v2 from the guest")
    pair.session.resume()
    assert pair.session.wait_idle(WAIT_S)
    assert _text(pair.host / "keep.txt") == "v2 from the guest"
    assert _text(pair.guest / "keep.txt") == "v2 from the guest"


def test_ignore_patterns_both_ways(server: Server, tmp_path: Path) -> None:
    session = _session(server, tmp_path, ignore=[".git/", "node_modules/", "*.swp", "/build/"])
    session.start()
    host, guest = tmp_path / "host", tmp_path / "guest"
    try:
        assert session.wait_idle(WAIT_S)
        for root in (host, guest):
            (root / "node_modules" / "pkg").mkdir(parents=True)
            (root / "node_modules" / "pkg" / "index.js").write_text(str(root))
            (root / ".git").mkdir()
            (root / ".git" / "HEAD").write_text(str(root))
            (root / "build").mkdir()
            (root / "build" / "out.o").write_text(str(root))
            (root / "sub" / "build").mkdir(parents=True)  # not at the root: synced
            (root / f"{root.name}.swp").write_text("x")
        (host / "sub" / "build" / "h").write_text("h")
        (guest / "sub" / "build" / "g").write_text("g")
        eventually(
            "ignore: the rest syncs",
            lambda: (
                _text(guest / "sub" / "build" / "h") == "h"
                and _text(host / "sub" / "build" / "g") == "g"
            ),
        )
        assert session.wait_idle(WAIT_S)
    finally:
        session.stop()
    for root in (host, guest):
        assert _text(root / "node_modules" / "pkg" / "index.js") == str(root)
        assert _text(root / ".git" / "HEAD") == str(root)
        assert _text(root / "build" / "out.o") == str(root)
        assert sorted(p.name for p in root.glob("*.swp")) == [f"{root.name}.swp"]


def test_a_dropped_connection_recovers(pair: Pair, server: Server) -> None:
    (pair.host / "before").write_text("1")
    eventually("before drop", lambda: _text(pair.guest / "before") == "1")
    assert server.drop_connections() >= 1
    (pair.host / "during").write_text("2")
    (pair.guest / "from-guest").write_text("3")
    eventually(
        "after reconnect",
        lambda: _text(pair.guest / "during") == "2" and _text(pair.host / "from-guest") == "3",
    )
    (pair.host / "after").write_text("4")
    eventually("watching again", lambda: _text(pair.guest / "after") == "4")


def test_a_full_guest_disk_fails_clearly_and_loses_nothing(server: Server, tmp_path: Path) -> None:
    guest = tmp_path / "guest"
    guest.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "dysync-test", str(guest)], check=True
    )
    session = _session(server, tmp_path)
    try:
        (guest / "old.bin").write_bytes(b"g" * 1000)
        session.start()
        assert session.wait_idle(WAIT_S)
        big = os.urandom(2 << 20)
        (tmp_path / "host" / "big.bin").write_bytes(big)
        (tmp_path / "host" / "small.txt").write_text("fits")
        eventually("small file beside a full disk", lambda: _text(guest / "small.txt") == "fits")
        eventually("disk-full reported", lambda: "big.bin" in session.status().errors)
        why = session.status().errors["big.bin"]
        assert "guest's disk is full" in why and "big.bin" in why, why
        eventually(
            "disk-full in the status file",
            lambda: "not synced: big.bin: the guest's disk is full" in sync_status(tmp_path),
        )
        assert (tmp_path / "host" / "big.bin").read_bytes() == big
        assert _text(tmp_path / "host" / "old.bin") == "g" * 1000
        assert not (guest / "big.bin").exists()
        _no_temp_files(tmp_path / "host", guest)
    finally:
        session.stop()
        subprocess.run(["umount", str(guest)], check=True)


def test_a_wiped_guest_folder_is_held_not_mirrored(server: Server, tmp_path: Path) -> None:
    """A guest disk that comes back empty (recreated, not mounted) must not empty the host."""
    host, guest = tmp_path / "host", tmp_path / "guest"
    host.mkdir()
    for i in range(5):
        (host / f"f{i}").write_text(str(i))
    with running(_session(server, tmp_path)):
        pass
    subprocess.run(["rm", "-rf", str(guest)], check=True)
    session = _session(server, tmp_path)
    session.start()
    try:
        eventually("held", lambda: session.status().state == "held")
        assert "guest's folder" in session.status().last_error
        eventually(
            "held in the status file", lambda: "held: the guest's folder" in sync_status(tmp_path)
        )
        assert len(list(host.iterdir())) == 5
        (tmp_path / STATE_DIR / "t.index.json").unlink()  # what the hint says to do
        session.resume()
        assert session.wait_idle(WAIT_S)
        assert sorted(p.name for p in guest.iterdir()) == [f"f{i}" for i in range(5)]
        assert session.status().state == "watching"
    finally:
        session.stop()
