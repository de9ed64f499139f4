"""RUN: the command in a real container of this engine, its writes kept as a layer.

The container is made through the container manager exactly as a client's
would be (so it gets the stage's image, env, user, working directory and
network like `docker run` does), attached before it starts so no output is
lost, and always removed at the end, also when the command fails or the
client goes away. Only the container's upper directory survives it, as the
layer tar the caller commits.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import signal
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.containers.manager import ContainerManager
from engine.containers.model import Container
from engine.errors import EngineError

log = logging.getLogger("engine.build")

_HEADER = struct.Struct(">BxxxI")
# Marks a RUN step's container, so one a dead engine left behind is recognised as an orphan.
STEP_LABEL = "com.dockyard.build.step"
_POLL_SECONDS = 0.5
# After the exit, how long the last output may take to arrive (a daemon the step started
# and left holding stdout ends with the container's pid namespace anyway).
_OUTPUT_GRACE_SECONDS = 30.0


class Cancelled(EngineError):
    """The client went away: the build stops and leaves nothing behind."""


class RunFailed(EngineError):
    """The command exited non-zero; Docker's message names the command and the code."""

    def __init__(self, shown: str, code: int) -> None:
        super().__init__(f"The command '{shown}' returned a non-zero code: {code}")
        self.code = code


@dataclass
class RunRequest:
    image_id: str
    args: list[str]
    shown: str  # the command as Docker's error message shows it
    env: list[str]
    user: str
    workdir: str
    network_mode: str


def _body(req: RunRequest) -> dict[str, Any]:
    return {
        "Image": req.image_id,
        "Entrypoint": [""],  # RUN never goes through the image's ENTRYPOINT
        "Cmd": req.args,
        "Env": req.env,
        "User": req.user,
        "WorkingDir": req.workdir,
        "AttachStdout": True,
        "AttachStderr": True,
        "Healthcheck": {"Test": ["NONE"]},
        "Labels": {STEP_LABEL: "true"},
        "HostConfig": {"NetworkMode": req.network_mode or "default"},
    }


def _pump(sock: socket.socket, out: Callable[[str], None]) -> None:
    """The shim's framed stdout/stderr, passed on as text as it arrives."""
    buf = b""
    decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in (1, 2)}
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return  # closed under us: the step is over
        if not data:
            return
        buf += data
        while len(buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            payload = buf[_HEADER.size : _HEADER.size + size]
            buf = buf[_HEADER.size + size :]
            decoder = decoders.get(stream, decoders[1])
            out(decoder.decode(payload))  # a character split across frames stays whole


def _wait_exit(m: ContainerManager, c: Container, cancel: threading.Event) -> int:
    with m.changed:
        while c.state.status.alive:
            if cancel.is_set():
                raise Cancelled("the client went away; the build was stopped")
            m.changed.wait(_POLL_SECONDS)
    return c.state.exit_code


def run(
    m: ContainerManager,
    req: RunRequest,
    cancel: threading.Event,
    started: Callable[[str], None],
    out: Callable[[str], None],
    keep: Callable[[Path], None],
) -> None:
    """Run the step; `keep(upperdir)` turns the container's writes into a layer.

    `started(container_id)` is called once the container exists, so the
    caller can print "Running in"; RunFailed carries a non-zero exit.
    """
    c = m.create(_body(req), "")
    sock: socket.socket | None = None
    try:
        started(c.id)
        pending = m.prepare_attach(c, False, True, True)
        m.start(c)
        pending.ready.wait()
        sock = pending.sock
        pump = threading.Thread(target=_pump, args=(sock, out), daemon=True)
        if sock is not None:
            pump.start()
        code = _wait_exit(m, c, cancel)
        if sock is not None:
            pump.join(_OUTPUT_GRACE_SECONDS)  # the rest of the output, then the result
        if code != 0:
            raise RunFailed(req.shown, code)
        keep(Path(c.spec.upperdir))
    finally:
        if sock is not None:
            sock.close()
        _remove(m, c)


def _remove(m: ContainerManager, c: Container) -> None:
    if c.state.status.alive:
        with contextlib.suppress(EngineError):
            m.kill(c, signal.SIGKILL)
    try:
        m.remove(c, force=True, volumes=True)
    except EngineError as exc:
        log.warning("removing build container %s failed: %s", c.short_id, exc.message)


def remove_orphans(m: ContainerManager) -> list[str]:
    """Remove step containers no build owns (the engine stopped mid-build); their ids."""
    orphans = [c for c in m.store.all() if c.labels.get(STEP_LABEL) == "true"]
    for c in orphans:
        _remove(m, c)
    return [c.id for c in orphans]
