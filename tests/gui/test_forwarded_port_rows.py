"""The machine page's port rows from the port forwarder's record: the source reads the
ports.json a forwarder wrote next to the engine socket, failures with their reason."""

from __future__ import annotations

import json
from pathlib import Path

from app.engine_client import EngineClient
from app.gui.models.ports import REACHABLE, forwarded_ports
from machine import filenames
from machine.portplan import FAILED, LISTENING, Forward, ForwardState


def test_rows_come_from_the_forwarders_record(tmp_path: Path) -> None:
    ok = ForwardState(
        Forward("a", "web", "tcp", "127.0.0.1", 8080, "10.0.2.15", 8080), LISTENING, "", "ssh"
    )
    bad = ForwardState(
        Forward("b", "db", "tcp", "127.0.0.1", 5432, "10.0.2.15", 5432), FAILED, "taken", "ssh"
    )
    doc = {"updated": 0, "forwards": [ok.as_dict(), bad.as_dict()]}
    (tmp_path / filenames.PORTS).write_text(json.dumps(doc))
    client = EngineClient(f"unix://{tmp_path / filenames.SOCKET}")
    rows = forwarded_ports(client, "qemu")
    assert [(r.container, r.host, r.target, r.state) for r in rows] == [
        ("db", "127.0.0.1:5432", "db:5432/tcp", FAILED),
        ("web", "127.0.0.1:8080", "web:8080/tcp", REACHABLE),
    ]
    assert rows[0].reason == "taken" and not rows[0].ok and rows[1].ok
