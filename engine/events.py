"""The engine's event bus, served as Docker's `/events` stream.

The VM's port forwarder and the GUI follow this stream instead of polling, so
every state change publishes here, with Docker's field names. A bounded
history answers `--since` for clients that (re)connect late.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

HISTORY = 1024


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: list[queue.SimpleQueue[Event]] = []

    def publish(
        self, kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None
    ) -> Event:
        now = time.time_ns()
        event: Event = {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
            "scope": "local",
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        if kind == "container":  # the pre-1.22 fields, still read by some clients
            event.update(
                status=action,
                id=actor_id,
                **{"from": event["Actor"]["Attributes"].get("image", "")},
            )
        with self._lock:
            self._history.append(event)
            for q in self._subscribers:
                q.put(event)
        return event

    def subscribe(self, since_ns: int | None) -> tuple[list[Event], queue.SimpleQueue[Event]]:
        """Past events at or after `since_ns` plus a queue of every later one."""
        q: queue.SimpleQueue[Event] = queue.SimpleQueue()
        with self._lock:
            past = [e for e in self._history if since_ns is not None and e["timeNano"] >= since_ns]
            self._subscribers.append(q)
        return past, q

    def unsubscribe(self, q: queue.SimpleQueue[Event]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)


def matcher(filters: dict[str, list[str]]) -> Predicate:
    """Docker's /events filters: type, event, container, image, label, network, volume."""

    def ok(event: Event) -> bool:
        attrs = event["Actor"]["Attributes"]
        checks: dict[str, Callable[[str], bool]] = {
            "type": lambda v: event["Type"] == v,
            "event": lambda v: event["Action"].split(":")[0] == v,
            "container": lambda v: (
                event["Type"] == "container"
                and (event["Actor"]["ID"].startswith(v) or attrs.get("name") == v)
            ),
            "image": lambda v: attrs.get("image") == v or event["Actor"]["ID"] == v,
            "network": lambda v: (
                event["Type"] == "network"
                and (event["Actor"]["ID"].startswith(v) or attrs.get("name") == v)
            ),
            "volume": lambda v: event["Type"] == "volume" and event["Actor"]["ID"] == v,
            "label": lambda v: _label_ok(attrs, v),
        }
        for key, values in filters.items():
            check = checks.get(key)
            if check is not None and values and not any(check(v) for v in values):
                return False
        return True

    return ok


def _label_ok(attrs: dict[str, str], spec: str) -> bool:
    key, sep, value = spec.partition("=")
    return key in attrs and (not sep or attrs[key] == value)
