"""How many bytes a directory tree holds, for `docker system df` and prunes."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def du(path: Path) -> int:
    """Bytes in regular files under `path`; hard links counted once, symlinks not followed."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue  # removed while we walked
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
