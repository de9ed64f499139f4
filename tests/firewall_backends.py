"""Engines that find only one firewall backend, so every backend is tested on one host.

Why through PATH: the engine picks nft when `nft` runs, else iptables when `iptables-save`
runs, else none (engine/network/firewall.py). An engine started with a PATH that leads to
the iptables tools but not to nft, or to neither, takes the same decision a host without
them would, with the real tools and the real kernel underneath.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.engine_process import EngineProcess

BACKENDS = ("nft", "iptables", "none")
SBIN_DIRS = (Path("/usr/sbin"), Path("/sbin"))
BASE_PATH = ["/usr/local/bin", "/usr/bin", "/bin"]  # nft and iptables live in the sbin dirs
IPTABLES_TOOLS = ("iptables", "iptables-save", "iptables-restore")


class BackendEngine(EngineProcess):
    """An EngineProcess whose daemon sees only `backend`'s tools on its PATH."""

    def __init__(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        super().__init__()
        self.backend = backend
        self.bin_dir = Path(tempfile.mkdtemp(prefix="fwbin-", dir=self.dir))
        if backend == "iptables":
            for tool in IPTABLES_TOOLS:
                found = shutil.which(tool, path=":".join(map(str, SBIN_DIRS)))
                if found is None:
                    raise FileNotFoundError(f"{tool} is not installed")
                (self.bin_dir / tool).symlink_to(found)

    def search_path(self) -> str:
        if self.backend == "nft":
            return ":".join([*map(str, SBIN_DIRS), *BASE_PATH])
        return ":".join([str(self.bin_dir), *BASE_PATH])

    def argv(self) -> list[str]:
        return ["env", f"PATH={self.search_path()}", *super().argv()]
