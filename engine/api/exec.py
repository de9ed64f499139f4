"""Exec routes: start (attached or detached), resize, inspect."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, BinaryIO

from engine.api import schema
from engine.api.http import HijackReply, Reply, Request, Router
from engine.api.streams import pump_fds
from engine.errors import EngineError
from engine.execs import console_size
from engine.streamframe import frame

if TYPE_CHECKING:
    from engine.daemon import Daemon


def register(router: Router, d: Daemon) -> None:
    def start(req: Request) -> Reply | HijackReply:
        ex = d.execs.get(req.params["id"])
        body = req.json_object()
        schema.check_exec(body)
        if body.get("Detach"):
            d.execs.start(ex, detached=True)
            return Reply(200)
        d.execs.check_startable(ex)
        if body.get("ConsoleSize"):
            ex.console_size = console_size(body["ConsoleSize"])
        tty = ex.spec.tty

        def run(sock: socket.socket, rfile: BinaryIO) -> None:
            # The process starts only after the upgrade reply went out, as in Docker:
            # clients that read the reply headers through a buffer would lose early output.
            try:
                proc = d.execs.start(ex)
            except EngineError as exc:
                d.execs.record_failure(ex, exc)
                sock.sendall(
                    (exc.message + "\n").encode()
                    if tty
                    else frame(2, (exc.message + "\n").encode())
                )
                return
            if tty:
                assert proc.pty_fd is not None
                outputs = {proc.pty_fd: 1}
                stdin_fd = proc.pty_fd if ex.attach_stdin else None
            else:
                outputs = {}
                if proc.stdout_fd is not None:
                    outputs[proc.stdout_fd] = 1
                if proc.stderr_fd is not None:
                    outputs[proc.stderr_fd] = 2
                stdin_fd = proc.stdin_fd if ex.attach_stdin else None
            pump_fds(sock, rfile, outputs, stdin_fd, tty, lambda: ex.done.wait(30))

        return HijackReply(run, multiplexed=not tty)

    def resize(req: Request) -> Reply:
        h, w = req.int_arg("h", 0, 0, 65535), req.int_arg("w", 0, 0, 65535)
        d.execs.resize(d.execs.get(req.params["id"]), h, w)
        return Reply(201)

    def inspect(req: Request) -> Reply:
        return Reply(200, d.execs.get(req.params["id"]).inspect())

    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
