"""The persisted record of one container, and its Docker-shaped views.

The record keeps Docker's own `Config` and `HostConfig` dictionaries (as the
client sent them, after defaults were merged) next to the `ContainerSpec` the
runtime needs, so `docker inspect` round-trips what the user asked for while
the runtime never parses Docker's JSON.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from engine.containers.health import Health
from engine.containers.status import Status
from engine.network.model import Endpoint
from engine.runtime.spec import ContainerSpec, ExitStatus
from engine.timefmt import ZERO_TIME, now_rfc3339


@dataclass
class State:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Health | None = None  # only for a container with a healthcheck that has started

    def to_docker(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "Status": self.status.value,
            "Running": self.status in (Status.RUNNING, Status.PAUSED),
            "Paused": self.status is Status.PAUSED,
            "Restarting": self.status is Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status is Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            view["Health"] = self.health.to_docker()
        return view

    def record_exit(self, exit: ExitStatus) -> None:
        self.status = Status.EXITED
        self.pid = 0
        self.exit_code = exit.exit_code
        self.oom_killed = exit.oom_killed
        self.error = exit.error
        self.finished_at = exit.finished_at or now_rfc3339()
        if self.health is not None:
            self.health.stopped()


@dataclass
class Container:
    id: str
    name: str
    created: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    spec: ContainerSpec
    mounts: list[dict[str, Any]]
    state: State = field(default_factory=State)
    restart_count: int = 0
    manually_stopped: bool = False
    # Network name -> this container's endpoint on it, in attach order (the first is eth0).
    networks: dict[str, Endpoint] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def image_name(self) -> str:
        return str(self.config.get("Image", ""))

    def to_record(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Created": self.created,
            "Image": self.image_id,
            "Config": self.config,
            "HostConfig": self.host_config,
            "Spec": self.spec.to_json(),
            "Mounts": self.mounts,
            "State": {**self.state.to_docker(), "Status": self.state.status.value},
            "RestartCount": self.restart_count,
            "ManuallyStopped": self.manually_stopped,
            "Networks": {name: ep.to_record() for name, ep in self.networks.items()},
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Container:
        st = rec["State"]
        state = State(
            status=Status(st["Status"]),
            pid=st["Pid"],
            exit_code=st["ExitCode"],
            error=st["Error"],
            oom_killed=st["OOMKilled"],
            started_at=st["StartedAt"],
            finished_at=st["FinishedAt"],
            health=Health.from_record(st.get("Health")),
        )
        return cls(
            id=rec["Id"],
            name=rec["Name"],
            created=rec["Created"],
            image_id=rec["Image"],
            config=rec["Config"],
            host_config=rec["HostConfig"],
            spec=ContainerSpec.from_json(rec["Spec"]),
            mounts=rec["Mounts"],
            state=state,
            restart_count=rec.get("RestartCount", 0),
            manually_stopped=rec.get("ManuallyStopped", False),
            # Records older than networking have none: connect.py fills them in at start.
            networks={
                name: Endpoint.from_record(ep) for name, ep in (rec.get("Networks") or {}).items()
            },
        )
