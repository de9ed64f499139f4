"""Acceptance 3: 1,000 containers through the containers model stay cheap, by signal count.

A full refresh is one modelReset; one container's update is one dataChanged; an event for a
new or removed container is one insert or remove. Counted with connected counters, never
timed. QAbstractItemModelTester checks the tree's index/parent/rowCount consistency.
"""

from __future__ import annotations

from collections import Counter

import pytest
from PySide6.QtCore import QModelIndex, QSortFilterProxyModel
from PySide6.QtTest import QAbstractItemModelTester

from app.gui.models.container_row import ContainerRow, row_from_summary
from app.gui.models.containers import CPU, MEMORY, STATUS, ContainersModel

N = 1000


def summary(i: int, project: str = "", state: str = "running") -> dict[str, object]:
    labels = {"com.docker.compose.project": project} if project else {}
    return {
        "Id": f"{i:064x}",
        "Names": [f"/c{i}"],
        "Image": "busybox",
        "State": state,
        "Status": "Up 5 minutes" if state == "running" else "Exited (0) 1 second ago",
        "Ports": [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8000 + i, "Type": "tcp"}],
        "Labels": labels,
    }


def project_of(i: int) -> str:
    """Every tenth container belongs to one of ten compose projects (ten in each)."""
    return f"p{(i // 10) % 10}" if i % 10 == 0 else ""


def rows(n: int = N) -> list[ContainerRow]:
    return [row_from_summary(summary(i, project_of(i))) for i in range(n)]


class Signals:
    """Counts every structural and data signal a model emits."""

    NAMES = (
        "modelReset",
        "rowsInserted",
        "rowsRemoved",
        "rowsMoved",
        "dataChanged",
        "layoutChanged",
        "columnsInserted",
        "columnsRemoved",
    )

    def __init__(self, model: ContainersModel) -> None:
        self.counts: Counter[str] = Counter()
        self.changed: list[tuple[QModelIndex, QModelIndex]] = []
        for name in self.NAMES:
            getattr(model, name).connect(lambda *a, n=name: self._seen(n, a))

    def _seen(self, name: str, args: tuple[object, ...]) -> None:
        self.counts[name] += 1
        if name == "dataChanged":
            self.changed.append((args[0], args[1]))  # type: ignore[arg-type]

    def total(self) -> int:
        return sum(self.counts.values())

    def clear(self) -> None:
        self.counts.clear()
        self.changed.clear()


@pytest.fixture
def model(qapp: object) -> ContainersModel:
    m = ContainersModel()  # its state icons are pixmaps, which need the application
    m.tester = QAbstractItemModelTester(  # type: ignore[attr-defined]
        m, QAbstractItemModelTester.FailureReportingMode.Fatal
    )
    return m


def test_full_refresh_is_one_reset(model: ContainersModel) -> None:
    spy = Signals(model)
    model.reset(rows())
    assert dict(spy.counts) == {"modelReset": 1}
    assert len(model.container_ids()) == N
    stacks = [
        model.index(r, 0) for r in range(model.rowCount()) if model.rowCount(model.index(r, 0))
    ]
    assert len(stacks) == 10 and all(model.rowCount(s) == 10 for s in stacks)
    assert model.rowCount() == N - 100 + 10
    model.reset(rows())  # a refresh after a reconnect: still one signal
    assert dict(spy.counts) == {"modelReset": 2}


def test_one_container_update_is_one_data_changed(model: ContainersModel) -> None:
    model.reset(rows())
    spy = Signals(model)
    changed = row_from_summary(summary(501, state="exited"))
    model.upsert(changed)
    assert dict(spy.counts) == {"dataChanged": 1}
    first, last = spy.changed[0]
    assert first.row() == last.row() == model.index_of(changed.id).row()
    assert model.data(model.index_of(changed.id, STATUS)).startswith("Exited (0)")


def test_a_stack_member_update_touches_its_row_and_its_stack_summary(
    model: ContainersModel,
) -> None:
    model.reset(rows())
    spy = Signals(model)
    model.upsert(
        row_from_summary(summary(30, project_of(30), state="running"))
    )  # unchanged summary
    assert dict(spy.counts) == {"dataChanged": 1}
    spy.clear()
    model.upsert(row_from_summary(summary(30, project_of(30), state="exited")))  # 9/10 running now
    assert dict(spy.counts) == {"dataChanged": 2}
    stack = model.index_of(f"{30:064x}").parent()
    assert model.data(stack.siblingAtColumn(STATUS)) == "9/10 running"


def test_events_insert_and_remove_one_row_each(model: ContainersModel) -> None:
    model.reset(rows())
    spy = Signals(model)
    new = row_from_summary(summary(N + 1))
    model.upsert(new)
    model.remove(new.id)
    assert dict(spy.counts) == {"rowsInserted": 1, "rowsRemoved": 1}
    spy.clear()
    model.upsert(row_from_summary(summary(N + 2, "fresh")))  # a new stack with its first row
    assert dict(spy.counts) == {"rowsInserted": 1}
    model.remove(f"{N + 2:064x}")  # its last container: the stack goes too
    assert spy.counts["rowsRemoved"] == 1
    assert model.rowCount() == N - 100 + 10


def test_stats_and_uptime_ticks_are_bounded_by_parents_not_rows(model: ContainersModel) -> None:
    model.reset(rows())
    spy = Signals(model)
    model.set_stats({f"{i:064x}": (1.5, 4096 * i) for i in range(N)})
    assert spy.counts["dataChanged"] <= 1 + 10  # the top level, and each stack
    assert all(f.column() == CPU and last.column() == MEMORY for f, last in spy.changed)
    spy.clear()
    model.set_stats({f"{i:064x}": (1.5, 4096 * i) for i in range(N)})  # nothing changed
    assert spy.total() == 0
    model.tick()
    assert spy.counts["dataChanged"] == 1 + 10
    assert spy.total() == 11


def test_a_sorting_filtering_proxy_on_top_stays_consistent(model: ContainersModel) -> None:
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setRecursiveFilteringEnabled(True)
    proxy.setFilterKeyColumn(-1)
    proxy.sort(0)
    model.reset(rows())
    proxy.setFilterFixedString("c99")
    names = {proxy.index(r, 0).data() for r in range(proxy.rowCount())}
    assert {"c99", "c991", "c999", "p9"} <= names  # c990 is in stack p9
    stack = next(
        proxy.index(r, 0) for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == "p9"
    )
    assert [proxy.index(r, 0, stack).data() for r in range(proxy.rowCount(stack))] == ["c990"]
    model.upsert(row_from_summary(summary(99, state="exited")))
    model.remove(f"{999:064x}")
    names = {proxy.index(r, 0).data() for r in range(proxy.rowCount())}
    assert "c999" not in names and "c99" in names


def test_through_the_pages_sorted_proxy_an_update_stays_one_signal(qtbot: object) -> None:
    """The view sees the proxy: a status change that keeps the name order is one
    dataChanged there too (no layoutChanged re-sorting 1,000 rows)."""
    from app.gui.pages.containers import ContainersPage

    page = ContainersPage()
    page.model.reset(rows())
    proxy_spy = Signals(page.proxy)  # type: ignore[arg-type]
    page.model.upsert(row_from_summary(summary(501, state="exited")))
    assert dict(proxy_spy.counts) == {"dataChanged": 1}
    proxy_spy.clear()
    page.model.set_stats({f"{i:064x}": (2.0, 8192) for i in range(N)})
    assert proxy_spy.counts["layoutChanged"] == 0
    # The proxy may split each source range where sorting interleaves it: still a few per
    # parent (11 parents here), never one per row (1,000).
    assert proxy_spy.counts["dataChanged"] <= 2 * (1 + 10)
    page.shutdown()
