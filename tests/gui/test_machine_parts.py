"""The machine page's parts that need no engine: the port rows, the stage timeline's
arithmetic, the graphs' scale, and the log tail on a real file (grown, then started afresh)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.gui.models.ports import NOT_FORWARDED, REACHABLE, port_rows
from app.gui.views.sparkline import Sparkline, nice_ceiling
from app.gui.views.stage_timeline import duration_text, failed_stage, total_seconds
from app.gui.workers.machine_watch import TAIL_BYTES, MachineWatcher
from tests.gui.conftest import WAIT_MS

CONTAINERS = [
    {
        "Names": ["/web"],
        "Ports": [
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"PrivatePort": 443, "Type": "tcp"},  # exposed, not published
        ],
    },
    {
        "Names": ["/dns"],
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"}],
    },
]


def test_published_ports_say_where_they_are_reachable() -> None:
    native = port_rows(CONTAINERS, "native")
    assert [(r.host, r.target, r.state) for r in native] == [
        ("0.0.0.0:5353", "dns:53/udp", REACHABLE),
        ("127.0.0.1:8080", "web:80/tcp", REACHABLE),
    ]
    vm = port_rows(CONTAINERS, "qemu")
    assert {r.state for r in vm} == {NOT_FORWARDED}
    assert all("machine ssh" in r.reason for r in vm)
    assert port_rows([{"Names": ["/x"], "Ports": None}], "native") == []


def test_stage_arithmetic() -> None:
    stages = [
        {"name": "qemu", "started": 0.0, "duration": 0.25, "status": "done"},
        {"name": "kernel", "started": 0.25, "duration": 2.5, "status": "failed", "hint": "h"},
        {"name": "init", "started": 2.75, "duration": None, "status": "running"},
    ]
    assert total_seconds(stages) == 2.75
    assert failed_stage(stages) == stages[1]
    assert [duration_text(s) for s in stages] == ["250 ms", "2.50 s", "…"]
    assert failed_stage(stages[:1]) is None and total_seconds([]) == 0.0


def test_graph_scale_is_round_and_never_below_its_floor(qtbot: QtBot) -> None:
    assert [nice_ceiling(v) for v in (0.3, 1, 1.2, 3, 7, 12, 180)] == [
        0.5, 1, 2, 5, 10, 20, 200,
    ]  # fmt: skip
    graph = Sparkline("CPU", lambda v: f"{v:.0f}%", floor=10.0)
    qtbot.addWidget(graph)
    assert graph.scale() == 10.0
    graph.add(2.0)
    assert graph.scale() == 10.0
    graph.add(37.0)
    assert graph.scale() == 50.0
    mib = 1024 * 1024
    memory = Sparkline("Memory", str, floor=16 * mib, unit=mib)
    qtbot.addWidget(memory)
    memory.add(1.5 * mib)
    assert memory.scale() == 20 * mib
    graph.add(-1.0)  # a negative reading is drawn at zero
    assert graph.values[-1] == 0.0


def test_the_log_tail_follows_appends_and_restarts(qtbot: QtBot, tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"x" * (TAIL_BYTES + 100) + b"\nbooted\n")
    got: list[tuple[str, bool]] = []
    watcher = MachineWatcher()
    watcher.log_appended.connect(lambda text, reset: got.append((text, reset)))
    watcher.follow(log, "", "qemu")
    watcher.start()
    try:
        qtbot.waitUntil(lambda: len(got) == 1, timeout=WAIT_MS)
        text, reset = got[0]
        assert reset and text.endswith("booted\n") and len(text) == TAIL_BYTES
        with log.open("a") as f:
            f.write("dockyard-stage init 1.5\n")
        qtbot.waitUntil(lambda: len(got) == 2, timeout=WAIT_MS)
        assert got[1] == ("dockyard-stage init 1.5\n", False)
        log.write_text("a new run\n")  # shorter: the file was started afresh
        qtbot.waitUntil(lambda: len(got) == 3, timeout=WAIT_MS)
        assert got[2] == ("a new run\n", True)
    finally:
        watcher.stop()
