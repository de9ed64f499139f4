"""Networks on disk: one `<root>/networks/<id>.json` per network, written atomically.

A network outlives the engine (compose expects `docker network create` to
stick), so each is its own file: a torn or hand-edited file costs that one
network, logged and skipped, never the engine's start.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.atomicfile import read_json, write_json
from engine.network.model import Network

log = logging.getLogger("engine.network")


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, net_id: str) -> Path:
        return self.root / f"{net_id}.json"

    def load(self) -> list[Network]:
        nets = []
        for path in sorted(self.root.glob("*.json")):
            try:
                net = Network.from_record(read_json(path))
                if net.id != path.stem:
                    raise ValueError(f"id {net.id!r} does not match the file name")
            except (OSError, ValueError, TypeError) as exc:
                log.error("skipping unreadable network record %s: %s", path, exc)
                continue
            nets.append(net)
        return nets

    def save(self, net: Network) -> None:
        write_json(self.path(net.id), net.to_record(), mode=0o600)

    def delete(self, net_id: str) -> None:
        self.path(net_id).unlink(missing_ok=True)
