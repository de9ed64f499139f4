"""Where the app finds QEMU: the bundled copy of each package layout first, Homebrew's
prefixes on macOS, and only folders that exist are put on PATH, once."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from app import qemu_path


def test_search_dirs_per_package_layout() -> None:
    mac = qemu_path.search_dirs("darwin", PurePath("/A/Dockyard.app/Contents/MacOS/dockyard"))
    assert mac == [
        PurePath("/A/Dockyard.app/Contents/Resources/qemu/bin"),
        PurePath("/opt/homebrew/bin"),
        PurePath("/usr/local/bin"),
    ]
    win = qemu_path.search_dirs("win32", PurePath("/P/Dockyard/dockyard-desktop.exe"))
    assert win == [PurePath("/P/Dockyard/qemu")]
    assert qemu_path.search_dirs("linux", None) == []
    assert qemu_path.search_dirs("darwin", None)[0] == PurePath("/opt/homebrew/bin")


def test_extend_path_adds_existing_bundled_dir_once(tmp_path: Path) -> None:
    exe = tmp_path / "dockyard"
    (tmp_path / "qemu" / "bin").mkdir(parents=True)
    env = {"PATH": "/usr/bin"}
    added = qemu_path.extend_path(env, "linux", exe)
    assert added == [str(tmp_path / "qemu" / "bin")]
    assert env["PATH"] == os.pathsep.join([str(tmp_path / "qemu" / "bin"), "/usr/bin"])
    assert qemu_path.extend_path(env, "linux", exe) == []
    assert qemu_path.extend_path({"PATH": ""}, "linux", tmp_path / "nowhere" / "x") == []
