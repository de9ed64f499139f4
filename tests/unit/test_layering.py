"""Layering rules, read from the source with `ast` so they hold without importing anything.

Why: engine/ must run from plain python3 inside a minimal guest, so it may import only the
standard library and itself; the host halves must not leak into it. machine/ must stay usable
headless, so it never imports Qt. A failing test names the file, line and offending import.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QT_MODULES = {"PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "pytestqt"}


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path, own_top: str) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute top-level module) for every import; relative ones resolve
    inside the file's own package, so they are reported as `own_top`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield node.lineno, own_top
            elif node.module:
                yield node.lineno, node.module.split(".")[0]


def violations(package: str, allowed: set[str] | None, forbidden: set[str]) -> list[str]:
    """Every import in `package` that is forbidden or (if `allowed` is set) not allowed."""
    found = []
    for path in python_files(package):
        for line, mod in imported_modules(path, package):
            bad = mod in forbidden or (allowed is not None and mod not in allowed)
            if bad:
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {mod}")
    return found


def test_engine_imports_only_stdlib_and_itself() -> None:
    """...and patternmatcher, the .dockerignore rules it shares with app's context packer."""
    allowed = set(sys.stdlib_module_names) | {"engine", "patternmatcher", "__future__"}
    assert violations("engine", allowed, {"app", "machine", "vmimage"}) == []


def test_patternmatcher_imports_only_stdlib() -> None:
    """Both halves import it, so it may import neither (and nothing outside the stdlib)."""
    allowed = set(sys.stdlib_module_names) | {"patternmatcher", "__future__"}
    assert violations("patternmatcher", allowed, {"engine", "app", "machine"}) == []


def test_machine_never_imports_qt_or_app() -> None:
    assert violations("machine", None, QT_MODULES | {"app"}) == []


def test_app_never_imports_engine_internals() -> None:
    """app/ is an API client: it talks to the engine over the socket, never by import."""
    assert violations("app", None, {"engine"}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os.path", ["os"]),
        ("from machine.qemu import x", ["machine"]),
        ("from . import sibling", ["engine"]),
        ("import PySide6.QtCore as qc", ["PySide6"]),
        ("def f():\n    import requests", ["requests"]),
    ],
)
def test_import_reader_sees_every_form(tmp_path: Path, source: str, expected: list[str]) -> None:
    """The checker itself must catch nested, dotted, aliased and relative imports."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    assert [m for _, m in imported_modules(probe, "engine")] == expected


def test_checker_flags_a_third_party_import_in_engine(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import requests\nimport json\n", encoding="utf-8")
    allowed = set(sys.stdlib_module_names) | {"engine"}
    assert [m for _, m in imported_modules(probe, "engine") if m not in allowed] == ["requests"]
