"""One-shot Engine API calls on the thread pool, answered through Qt signals.

Why a relay object: a QRunnable is not a QObject, and a signal connected to a plain Python
callable may run it in the emitting (pool) thread. The relay lives in the GUI thread and is
the receiver of its own signals, so Qt queues the delivery and every callback runs on the GUI
thread. A job raises on failure; the failure is a signal, never a `{'ok': False}` value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Signal, Slot

from app.engine_client import EngineClient

Job = Callable[[EngineClient], Any]
OnDone = Callable[[Any], None]
OnError = Callable[[Exception], None]


class CallRelay(QObject):
    """Carries one job's outcome back to the GUI thread and calls the callbacks there."""

    succeeded = Signal(object)
    failed = Signal(object)
    # Relays in flight: nothing else holds one while its job runs, and a relay collected
    # before its queued signal arrives would drop the answer.
    _in_flight: set[CallRelay] = set()

    def __init__(self, on_done: OnDone | None, on_error: OnError | None) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        CallRelay._in_flight.add(self)
        self.succeeded.connect(self._deliver_result)
        self.failed.connect(self._deliver_error)

    @Slot(object)
    def _deliver_result(self, result: object) -> None:
        CallRelay._in_flight.discard(self)
        if self._on_done is not None and _alive(self._on_done):
            self._on_done(result)

    @Slot(object)
    def _deliver_error(self, error: object) -> None:
        CallRelay._in_flight.discard(self)
        if self._on_error is not None and isinstance(error, Exception) and _alive(self._on_error):
            self._on_error(error)


def _alive(callback: Callable[..., None]) -> bool:
    """False for a method of a widget Qt has already deleted (its page closed while the call
    ran): the answer has nobody left to show it to."""
    owner = getattr(callback, "__self__", None)
    return not isinstance(owner, QObject) or shiboken6.isValid(owner)


class CallWorker(QRunnable):
    """Runs `job(client)` on a pool thread with a fresh client (one connection per call)."""

    def __init__(self, job: Job, client: Callable[[], EngineClient], relay: CallRelay) -> None:
        super().__init__()
        self._job = job
        self._client = client
        self.relay = relay

    def run(self) -> None:
        try:
            result = self._job(self._client())
        except Exception as e:  # every failure goes back as a signal, whatever its type
            self.relay.failed.emit(e)
        else:
            self.relay.succeeded.emit(result)
