"""The app's log: under DOCKYARD_HOME/logs when set (else the platform's log folder),
rotated at MAX_BYTES with BACKUPS old files, and one handler however often it is set up."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from app import applog


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_log_dir_follows_dockyard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path))
    assert applog.log_dir() == tmp_path / "logs"
    monkeypatch.delenv("DOCKYARD_HOME")
    assert applog.log_dir() == platformdirs.user_log_path("dockyard", appauthor=False)


def test_setup_writes_and_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_handlers: None
) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path))
    path = applog.setup("dockyard-desktop")
    assert applog.setup("dockyard-desktop") == path == tmp_path / "logs/dockyard-desktop.log"
    ours = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path
    ]
    assert len(ours) == 1
    assert (ours[0].maxBytes, ours[0].backupCount) == (applog.MAX_BYTES, applog.BACKUPS)
    log = logging.getLogger("dockyard.test")
    line = "x" * 1000
    for _ in range(applog.MAX_BYTES // 1000 + 10):
        log.info(line)
    ours[0].flush()
    assert path.stat().st_size < applog.MAX_BYTES
    assert (tmp_path / "logs/dockyard-desktop.log.1").is_file()
    assert oct((tmp_path / "logs").stat().st_mode & 0o777) == "0o700"
