"""The pure parts of the Linux packaging: the frozen entry's reading of interpreter command
lines (how the engine's helpers start in a frozen app), the .deb's control file and the
drawn placeholder icon. The build itself is tested for real in
tests/integration/test_packaging_linux.py."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

from tests import pathmodule

REPO = Path(__file__).resolve().parents[3]


def load(rel: str) -> ModuleType:
    """packaging/ is not importable by name (PyPI's `packaging` owns that name)."""
    name = "dockyard_packaging_" + rel.replace("/", "_").removesuffix(".py")
    return pathmodule.load(name, REPO / "packaging" / rel)


entry = load("pyinstaller/entry.py")
deb = load("linux/deb.py")


def run_as_interpreter(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["dockyard"])
    helper = entry.as_interpreter(argv)
    assert helper is not None
    helper()


def test_a_shim_command_line_runs_its_code_with_argv_as_python_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = "import sys, os; os.environ['K1_SEEN'] = repr(sys.argv)"
    monkeypatch.delenv("K1_SEEN", raising=False)
    run_as_interpreter(["-S", "-E", "-c", code, "/root", "state", "5"], monkeypatch)
    assert os.environ["K1_SEEN"] == repr(["-c", "/root", "state", "5"])


def test_a_module_command_line_runs_the_module_as_main(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "k1_probe.py").write_text(
        "import os, sys\n"
        "if __name__ == '__main__':\n"
        "    os.environ['K1_MOD'] = repr(sys.argv[1:])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("K1_MOD", raising=False)
    run_as_interpreter(["-m", "k1_probe", "a", "b"], monkeypatch)
    assert os.environ["K1_MOD"] == repr(["a", "b"])


@pytest.mark.parametrize(
    "argv", [[], ["engine", "serve"], ["machine", "start"], ["-S", "-E"], ["-c"], ["-x", "-c", "1"]]
)
def test_other_command_lines_are_not_interpreter_ones(argv: list[str]) -> None:
    assert entry.as_interpreter(argv) is None


def test_the_library_path_of_the_bundle_is_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/dockyard/_internal")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    entry.restore_library_path()
    assert os.environ["LD_LIBRARY_PATH"] == "/usr/local/lib"
    assert "LD_LIBRARY_PATH_ORIG" not in os.environ
    entry.restore_library_path()  # none was set before the bootloader: none after
    assert "LD_LIBRARY_PATH" not in os.environ


def test_control_names_the_runtime_packages_and_the_size() -> None:
    text = deb.control("1.2.3", 4096)
    fields = dict(line.split(": ", 1) for line in text.splitlines() if not line.startswith(" "))
    assert fields["Package"] == "dockyard" and fields["Version"] == "1.2.3"
    assert fields["Architecture"] == "amd64" and fields["Installed-Size"] == "4096"
    depends = fields["Depends"].split(", ")
    assert "qemu-system-x86" in depends and "nftables | iptables" in depends
    assert text.endswith("\n") and "\n\n" not in text  # one stanza


@pytest.mark.parametrize("size", [16, 256])
def test_the_placeholder_icon_is_a_valid_png_of_its_size(size: int) -> None:
    data = deb.png(size)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (size, size)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == size * (1 + 4 * size)  # filter byte + RGBA per row
