"""Per-OS machine paths: pure logic, so Windows and macOS answers are checked on Linux."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from machine import paths

WIN = paths.Host("win32", PureWindowsPath(r"C:\Users\ann\AppData\Local\dockyard"))
MAC = paths.Host("darwin", PurePosixPath("/Users/ann/Library/Application Support/dockyard"))
LINUX = paths.Host("linux", PurePosixPath("/home/ann/.local/share/dockyard"))


def test_linux_socket_is_under_the_machine_dir() -> None:
    assert paths.socket_path(LINUX, "default") == PurePosixPath(
        "/home/ann/.local/share/dockyard/default/docker.sock"
    )
    assert paths.engine_endpoint(LINUX, "default") == (
        "unix:///home/ann/.local/share/dockyard/default/docker.sock"
    )


def test_dockyard_home_overrides_the_platform_dir() -> None:
    host = paths.Host("linux", LINUX.user_data_dir, {"DOCKYARD_HOME": "/tmp/dyh"})
    assert paths.data_dir(host) == PurePosixPath("/tmp/dyh")
    assert paths.machine_dir(host, "m1") == PurePosixPath("/tmp/dyh/m1")


def test_windows_uses_a_named_pipe_and_windows_paths() -> None:
    assert paths.machine_dir(WIN, "default") == PureWindowsPath(
        r"C:\Users\ann\AppData\Local\dockyard\default"
    )
    assert paths.pipe_name("default") == r"\\.\pipe\dockyard-default"
    assert paths.engine_endpoint(WIN, "default") == "npipe:////./pipe/dockyard-default"
    assert paths.socket_too_long(WIN, "x" * 32) == ""


def test_windows_dockyard_home_parses_as_a_windows_path() -> None:
    host = paths.Host("win32", WIN.user_data_dir, {"DOCKYARD_HOME": r"D:\dy"})
    assert paths.machine_dir(host, "m") == PureWindowsPath(r"D:\dy\m")
    assert str(paths.machine_dir(host, "m")) == r"D:\dy\m"


def test_macos_socket_length_limit_is_reported() -> None:
    assert paths.socket_too_long(MAC, "default") == ""
    deep = paths.Host("darwin", PurePosixPath("/Users/" + "a" * 80))
    reason = paths.socket_too_long(deep, "default")
    assert "bytes" in reason and "docker.sock" in reason


def test_current_host_follows_the_environment(monkeypatch: object) -> None:
    host = paths.Host.current()
    assert host.system
    assert paths.data_dir(host).name
