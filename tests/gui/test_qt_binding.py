"""The pinned Qt binding keeps Python's reference counts of None, True and False intact.

Why this test exists: PySide6 6.12.0 on CPython 3.11 gives back a borrowed None from every
call returning void (and from a Python `data()` returning None), one reference lost per call.
None is not immortal before 3.12, so a GUI that runs long enough dies with "Fatal Python
error: none_dealloc" (the logs view's tests reached it in seconds). 6.11.3 does not do it;
this test fails if a future bump brings the fault back.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Signal
from PySide6.QtWidgets import QApplication, QLabel

CALLS = 2_000


class _Model(QAbstractListModel):
    def rowCount(self, parent: Any = None) -> int:
        return 1

    def data(self, index: Any, role: int = 0) -> Any:
        return None


class _Emitter(QObject):
    fired = Signal(bool)


def _lost(obj: object, call: Any) -> int:
    before = sys.getrefcount(obj)
    for _ in range(CALLS):
        call()
    return before - sys.getrefcount(obj)


def test_void_calls_and_none_results_keep_reference_counts(qapp: QApplication) -> None:
    label = QLabel()
    model = _Model()
    emitter = _Emitter()
    index = model.index(0, 0)
    assert _lost(None, lambda: label.setText("x")) < CALLS // 2
    assert _lost(None, label.update) < CALLS // 2
    assert _lost(None, lambda: index.data()) < CALLS // 2
    assert _lost(None, lambda: model.index(0, 0).data(QModelIndex().row())) < CALLS // 2
    assert _lost(True, lambda: emitter.fired.emit(True)) < CALLS // 2
