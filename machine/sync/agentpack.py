"""The guest agent as one zip application, built from this package's stdlib-only modules.

Why a zipapp: the agent is several small modules (ignore, tree, inotify, guest_agent), and
python3 runs a zip with a `__main__.py` as a program; so the host uploads one file whose
name carries its content hash (a guest keeps one copy per version, and an upgraded host
never talks to an older agent), and vmimage can carry the very same bytes.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
MODULES = ("__init__.py", "ignore.py", "tree.py", "fsops.py", "inotify.py", "guest_agent.py")
MAIN = "from machine.sync.guest_agent import main\n\nmain()\n"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # the same sources give the same bytes


def _add(zf: zipfile.ZipFile, name: str, text: str) -> None:
    zf.writestr(zipfile.ZipInfo(name, _FIXED_TIME), text)


@cache
def build() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        _add(zf, "__main__.py", MAIN)
        _add(zf, "machine/__init__.py", "")
        for name in MODULES:
            _add(zf, f"machine/sync/{name}", (PACKAGE / name).read_text())
    return buf.getvalue()


def file_name() -> str:
    """`dockyard-sync-<hash>.pyz`: the name changes whenever the agent's code does."""
    return f"dockyard-sync-{hashlib.sha256(build()).hexdigest()[:12]}.pyz"


def write(path: Path) -> None:
    """For vmimage: put the agent at `path`."""
    path.write_bytes(build())
