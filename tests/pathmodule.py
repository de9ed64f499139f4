"""Load a Python file that is not importable by its name as a module.

Why: the guest's scripts (vmimage/guest), packaging/ (PyPI's `packaging` owns that name)
and scripts/ are run as files, not imported, yet their tests need their functions.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load(name: str, path: Path) -> ModuleType:
    """The module in `path`, registered as `name` (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
