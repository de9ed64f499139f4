"""Container routes of the Docker Engine API."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from engine import logs
from engine.api import schema
from engine.api.http import HijackReply, Reply, Request, Router, StreamReply, version_tuple
from engine.api.streams import pump_socket
from engine.containers import filters as filters_mod
from engine.containers import health, views
from engine.containers.model import Container
from engine.containers.status import Status
from engine.containers.wait import check_condition, known_id
from engine.errors import Conflict, EngineError, InvalidParameter, NotModified
from engine.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from engine.daemon import Daemon

MAX_TIMEOUT = 2**31 - 1  # seconds; Docker reads `t` into an int
MAX_TTY = 65535  # a window size is two unsigned shorts


def register(router: Router, d: Daemon) -> None:
    mgr = d.containers

    def get(req: Request) -> Container:
        return mgr.store.get(req.params["id"])

    def ancestor(c: Container, ref: str) -> bool:
        try:
            return d.images.get(ref).id == c.image_id
        except EngineError:
            return c.image_name == ref

    def list_(req: Request) -> Reply:
        flt = filters_mod.check_statuses(schema.filters(req.json_arg("filters"), filters_mod.KEYS))
        match = filters_mod.matcher(flt, ancestor, mgr.store.get)
        limit = req.int_arg("limit", -1)
        show_all = req.flag("all") or filters_mod.shows_all(flt, limit)
        rows = [c for c in mgr.store.all() if (show_all or c.state.status.alive) and match(c)]
        rows.sort(key=lambda c: c.created, reverse=True)
        if limit > 0:
            rows = rows[:limit]
        now = time.time()
        return Reply(200, [views.summary(c, now) for c in rows])

    def create(req: Request) -> Reply:
        body = req.json_object()
        schema.check_create(body)
        health.for_api_version(body, version_tuple(req.version))
        c = mgr.create(body, req.arg("name"))
        return Reply(201, {"Id": c.id, "Warnings": []})

    def inspect(req: Request) -> Reply:
        return Reply(200, views.inspect(get(req)))

    def start(req: Request) -> Reply:
        try:
            mgr.start(get(req))
        except NotModified:
            return Reply(304)
        return Reply(204)

    def stop(req: Request) -> Reply:
        t, sig = req.int_arg("t", -2, lo=-1, hi=MAX_TIMEOUT), req.arg("signal")
        if sig:
            schema.check_signal("signal", sig)
        try:
            mgr.stop(get(req), None if t == -2 else t, sig or None)
        except NotModified:
            return Reply(304)
        return Reply(204)

    def restart(req: Request) -> Reply:
        t = req.int_arg("t", -2, lo=-1, hi=MAX_TIMEOUT)
        mgr.restart(get(req), None if t == -2 else t)
        return Reply(204)

    def kill(req: Request) -> Reply:
        sig = schema.check_signal("signal", req.arg("signal") or "SIGKILL")
        mgr.kill(get(req), sig)
        return Reply(204)

    def pause(req: Request) -> Reply:
        mgr.pause(get(req))
        return Reply(204)

    def unpause(req: Request) -> Reply:
        mgr.unpause(get(req))
        return Reply(204)

    def wait(req: Request) -> StreamReply:
        cid = known_id(mgr, req.params["id"])  # a 404 before any header is sent
        condition = req.arg("condition")
        check_condition(condition)

        def result() -> Iterator[bytes]:
            # Headers go out first: `docker run` relies on the wait being registered before start.
            yield b""
            code = mgr.wait(cid, condition)
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

        return StreamReply(result())

    def remove(req: Request) -> Reply:
        mgr.remove(get(req), force=req.flag("force"), volumes=req.flag("v"))
        return Reply(204)

    def rename(req: Request) -> Reply:
        name = req.arg("name")
        if not name:
            raise InvalidParameter("a new name is required: rename?name=NEW")
        mgr.rename(get(req), name)
        return Reply(204)

    def resize(req: Request) -> Reply:
        mgr.resize(get(req), req.int_arg("h", 0, 0, MAX_TTY), req.int_arg("w", 0, 0, MAX_TTY))
        return Reply(200)

    def attach(req: Request) -> HijackReply:
        c = get(req)
        want_in, want_out, want_err = req.flag("stdin"), req.flag("stdout"), req.flag("stderr")
        stream, with_logs = req.flag("stream"), req.flag("logs")
        if c.state.status in (Status.REMOVING, Status.DEAD):
            raise Conflict(f"container {c.name} is being removed")

        # Registered before the 101 goes out: `docker run` starts right after it.
        pending = (
            mgr.prepare_attach(c, want_in and c.spec.open_stdin, want_out, want_err)
            if stream
            else None
        )

        def run(sock: socket.socket, rfile: BinaryIO) -> None:
            if with_logs:
                q = logs.LogQuery(stdout=want_out, stderr=want_err)
                for rec in logs.read(_log_path(c), q, lambda: False):
                    sock.sendall(logs.render(rec, q, c.spec.tty))
            if pending is None:
                return
            pending.ready.wait()
            upstream = pending.sock
            if upstream is None:
                return
            pump_socket(sock, rfile, upstream, want_in and c.spec.open_stdin)

        return HijackReply(run, multiplexed=not c.spec.tty)

    def logs_(req: Request) -> StreamReply:
        c = get(req)
        q = logs.LogQuery(
            stdout=req.flag("stdout"),
            stderr=req.flag("stderr"),
            since=_seconds(req.arg("since")),
            until=_seconds(req.arg("until")),
            tail=_tail(req.arg("tail")),
            timestamps=req.flag("timestamps"),
            follow=req.flag("follow"),
        )
        if not (q.stdout or q.stderr):
            raise InvalidParameter("you must choose at least one stream")
        records = logs.read(_log_path(c), q, lambda: c.state.status.alive)
        ctype = (
            "application/vnd.docker.raw-stream"
            if c.spec.tty
            else "application/vnd.docker.multiplexed-stream"
        )
        return StreamReply((logs.render(r, q, c.spec.tty) for r in records), ctype)

    def top(req: Request) -> Reply:
        c = get(req)
        if c.state.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"container {c.name} is not running")
        return Reply(200, _top(d.cgroups.pids(c.id), req.arg("ps_args") or "-ef"))

    def stats(req: Request) -> Reply | StreamReply:
        c = get(req)
        one = {"id": c.id, "name": "/" + c.name, **_stats(d, c)}
        if not req.flag("stream", True) or req.flag("one-shot"):
            return Reply(200, one)

        def stream() -> Iterator[bytes]:
            while True:
                yield (
                    json.dumps({"id": c.id, "name": "/" + c.name, **_stats(d, c)}).encode() + b"\n"
                )
                if not c.state.status.alive:
                    return
                time.sleep(1)

        return StreamReply(stream())

    def prune(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), filters_mod.PRUNE_KEYS)
        deleted = mgr.prune(filters_mod.prune_matcher(flt, time.time()))
        return Reply(200, {"ContainersDeleted": deleted, "SpaceReclaimed": 0})

    def exec_create(req: Request) -> Reply:
        body = req.json_object()
        schema.check_exec(body)
        ex = d.execs.create(get(req), body)
        return Reply(201, {"Id": ex.id})

    r = router.add
    r("GET", "/containers/json", list_)
    r("POST", "/containers/create", create)
    r("POST", "/containers/prune", prune)
    r("GET", "/containers/{id}/json", inspect)
    r("POST", "/containers/{id}/start", start)
    r("POST", "/containers/{id}/stop", stop)
    r("POST", "/containers/{id}/restart", restart)
    r("POST", "/containers/{id}/kill", kill)
    r("POST", "/containers/{id}/pause", pause)
    r("POST", "/containers/{id}/unpause", unpause)
    r("POST", "/containers/{id}/wait", wait)
    r("DELETE", "/containers/{id}", remove)
    r("POST", "/containers/{id}/rename", rename)
    r("POST", "/containers/{id}/resize", resize)
    r("POST", "/containers/{id}/attach", attach)
    r("GET", "/containers/{id}/logs", logs_)
    r("GET", "/containers/{id}/top", top)
    r("GET", "/containers/{id}/stats", stats)
    r("POST", "/containers/{id}/exec", exec_create)


def _log_path(c: Container) -> Path:
    return Path(c.spec.log_path)


def _seconds(text: str) -> float:
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_rfc3339(text) or math.nan
    if not math.isfinite(seconds):
        raise InvalidParameter(
            f"invalid time: {text!r}; give seconds since the epoch or an RFC 3339 time"
        )
    return seconds


def _tail(text: str) -> int:
    if text in ("", "all"):
        return -1
    try:
        return max(0, int(text))
    except ValueError:
        raise InvalidParameter(f"invalid tail value: {text!r}; give a number or 'all'") from None


def _top(pids: list[int], ps_args: str) -> dict[str, Any]:
    """Docker's approach: run ps on the host and keep the container's rows."""
    if any(ch in ps_args for ch in ";&|`$<>"):
        raise InvalidParameter(f"invalid ps arguments: {ps_args!r}")
    out = subprocess.run(["ps", *ps_args.split()], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise InvalidParameter(f"ps {ps_args} failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise InvalidParameter("ps output has no PID column; include it in ps_args") from None
    wanted = {str(p) for p in pids}
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col] in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


def _stats(d: Daemon, c: Container) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not c.state.status.alive:
        return {
            "read": now,
            "pids_stats": {},
            "cpu_stats": {},
            "precpu_stats": {},
            "memory_stats": {},
            "blkio_stats": {},
            "networks": {},
        }
    s = d.cgroups.stats(c.id)
    cpu = {
        "cpu_usage": {
            "total_usage": s.cpu_usage_ns,
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        "system_cpu_usage": s.system_cpu_usage_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    return {
        "read": now,
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": s.pids_current, "limit": s.pids_limit},
        "cpu_stats": cpu,
        "precpu_stats": cpu,
        "memory_stats": {
            "usage": s.memory_usage,
            "limit": s.memory_limit,
            "max_usage": s.memory_max_usage,
            "stats": {},
        },
        "blkio_stats": {},
        "networks": {},
        "num_procs": 0,
        "storage_stats": {},
    }
