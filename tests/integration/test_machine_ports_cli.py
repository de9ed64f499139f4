"""`dockyard machine ports` renders the forwarder's record: each forward, a failure with
its reason, and --json as the record itself (no VM: the record is written by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from machine import filenames
from machine.portplan import FAILED, LISTENING, Forward, ForwardState

REPO = Path(__file__).resolve().parents[2]
TAKEN = "127.0.0.1:5432 is already in use on this host"


def dockyard(home: Path, *args: str) -> str:
    env = dict(os.environ, DOCKYARD_HOME=str(home), PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "machine", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_ports_lists_each_forward_with_state_and_reason(tmp_path: Path) -> None:
    dockyard(tmp_path, "create", "--disk", "1")
    assert "no published ports are forwarded" in dockyard(tmp_path, "ports")
    ok = ForwardState(
        Forward("i", "web", "tcp", "127.0.0.1", 8080, "10.0.2.15", 8080), LISTENING, "", "qmp"
    )
    bad = ForwardState(
        Forward("j", "db", "tcp", "127.0.0.1", 5432, "10.0.2.15", 5432), FAILED, TAKEN, "qmp"
    )
    doc = {"updated": 0, "forwards": [ok.as_dict(), bad.as_dict()]}
    (tmp_path / "default" / filenames.PORTS).write_text(json.dumps(doc))
    lines = dockyard(tmp_path, "ports").splitlines()
    assert lines[0].split() == ["CONTAINER", "PROTO", "HOST", "ADDRESS", "GUEST", "PORT", "STATE"]
    assert lines[1].split() == ["web", "tcp", "127.0.0.1:8080", "8080", "listening"]
    assert lines[2].split() == ["db", "tcp", "127.0.0.1:5432", "5432", "failed"]
    assert lines[3] == f"  reason: {TAKEN}"
    assert json.loads(dockyard(tmp_path, "ports", "--json")) == doc["forwards"]
