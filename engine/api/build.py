"""Build routes: `POST /build` (the classic builder) and `POST /build/prune`.

The build runs in a thread of its own and streams Docker's JSON lines. The
client's going away is noticed two ways: a failed write of a progress line,
and (during a long silent RUN) the connection hanging up, which a small
watcher polls for. Either sets the build's cancel flag: the running step's
container is killed and removed, and the work directory goes with it.
"""

from __future__ import annotations

import json
import queue
import select
import shutil
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from engine.api.http import Reply, Request, Router, StreamReply, storage_error
from engine.build import context
from engine.build.bases import decode_registry_config
from engine.build.builder import BuildEnv, Builder, Job
from engine.build.cache import BuildCache, prune_images
from engine.build.dockerfile import DockerfileSyntaxError
from engine.build.output import Output
from engine.build.request import parse_options
from engine.errors import EngineError, InvalidParameter

if TYPE_CHECKING:
    from engine.daemon import Daemon

_DONE = object()
CONTEXT_LIMIT = 8 * 1024 * 1024 * 1024  # uncompressed context bytes; more is a mistake
_WATCH_SECONDS = 0.5


def _watch_hangup(
    conn: socket.socket | None, cancel: threading.Event, done: threading.Event
) -> None:
    """Set `cancel` when the client hangs up before the build is done."""
    if conn is None:
        return
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while not done.is_set():
        try:
            events = poller.poll(_WATCH_SECONDS * 1000)
        except (OSError, ValueError):
            return
        if events:
            cancel.set()
            return


def _error_line(exc: EngineError) -> bytes:
    return json.dumps({"errorDetail": {"message": exc.message}, "error": exc.message}).encode()


def register(router: Router, d: Daemon) -> None:
    made: list[Builder] = []
    lock = threading.Lock()

    def builder_of() -> Builder:
        """Made at the first build (registration must not touch the daemon's state)."""
        with lock:
            if not made:
                root = d.opts.root / "build"
                env = BuildEnv(
                    d.images,
                    d.containers,
                    d.events,
                    BuildCache.at(root),
                    d.opts.insecure_registries,
                )
                made.append(Builder(env, root / "tmp"))
            return made[0]

    def build(req: Request) -> StreamReply:
        params = (  # named here, where the route reads them
            "t",
            "dockerfile",
            "buildargs",
            "labels",
            "nocache",
            "target",
            "q",
            "rm",
            "forcerm",
            "pull",
            "platform",
            "networkmode",
            "cachefrom",
        )
        opts = parse_options({name: req.query.get(name, []) for name in params})
        builder = builder_of()
        env = builder.env
        if req.arg("remote"):
            raise InvalidParameter(
                "remote build contexts are not supported: send the context as a tar body"
            )
        auths = decode_registry_config(req.headers.get("x-registry-config", ""))
        work = builder.workspace()
        try:
            ctx = work / "context"
            context.receive(cast(BinaryIO, req.body), ctx, CONTEXT_LIMIT)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancel = threading.Event()
        done = threading.Event()
        out = Output(q.put, opts.quiet)
        for note in opts.notes:
            out.warning(note)
        job = Job(env, opts, ctx, work, out, cancel, auths)

        def run() -> None:
            try:
                builder.build(job)
            except DockerfileSyntaxError as exc:
                q.put(InvalidParameter(exc.docker_message))
            except EngineError as exc:
                q.put(storage_error(exc, str(d.opts.root)) or exc)
            except OSError as exc:
                q.put(storage_error(exc, str(d.opts.root)) or EngineError(f"build failed: {exc}"))
            except Exception as exc:  # reported in-stream; the thread must not die silently
                q.put(EngineError(f"internal error: {exc}"))
            finally:
                shutil.rmtree(work, ignore_errors=True)
                done.set()
                q.put(_DONE)

        threading.Thread(target=run, name="build", daemon=True).start()
        threading.Thread(
            target=_watch_hangup, args=(req._connection, cancel, done), daemon=True
        ).start()

        first = q.get()
        if isinstance(first, EngineError):
            done.wait()  # the work directory is gone before the client hears of the failure
            raise first  # nothing was sent yet: a plain error reply, as Docker's unflushed output

        def chunks() -> Iterator[bytes]:
            item = first
            try:
                while item is not _DONE:
                    if isinstance(item, EngineError):
                        yield _error_line(item) + b"\r\n"
                    else:
                        yield json.dumps(item).encode() + b"\r\n"
                    item = q.get()
            finally:
                if not done.is_set():
                    cancel.set()  # the client went away mid-build
                    done.wait()

        return StreamReply(chunks())

    def prune(req: Request) -> Reply:
        cache = builder_of().env.cache
        cache.forget_steps()
        result = prune_images(d.images, cache, d.containers.image_in_use, dangling_only=True)
        deleted = [r["Deleted"] for r in result["ImagesDeleted"] if "Deleted" in r]
        return Reply(200, {"CachesDeleted": deleted, "SpaceReclaimed": result["SpaceReclaimed"]})

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
