"""A second engine on the same root is refused with a message naming the first."""

from __future__ import annotations

import subprocess
import sys

from tests.engine_process import REPO, EngineProcess


def test_second_engine_on_one_root_is_refused(engine: EngineProcess) -> None:
    argv = engine.argv()
    argv[argv.index("--host") + 1] = f"unix://{engine.dir}/second.sock"
    res = subprocess.run(
        [sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 1
    assert engine.proc is not None
    assert f"another engine (pid {engine.proc.pid})" in res.stderr
    assert engine.ping()  # the first one is untouched
    assert not (engine.dir / "second.sock").exists()
