"""Image routes: pull, list, inspect, history, tag, remove, prune, save and load."""

from __future__ import annotations

import fnmatch
import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from engine.api import schema
from engine.api.http import Reply, Request, Router, StreamReply, filter_flag, storage_error
from engine.build.cache import BuildCache, prune_images
from engine.containers.filters import has_label
from engine.errors import EngineError, InvalidParameter
from engine.images import archive, auth, reference
from engine.images import pull as pull_mod
from engine.images.registry import RegistryUnreachable

if TYPE_CHECKING:
    from engine.daemon import Daemon

_DONE = object()
IMAGE_FILTERS = ("dangling", "label", "reference")
UNREACHABLE_HINT = (
    "; check the registry address and port, that the registry is running, "
    "and that this machine can reach it"
)


def progress_stream(
    work: Callable[[Callable[[dict[str, Any]], None]], None], root: str = "", held: int = 0
) -> StreamReply:
    """Run `work` in a thread and stream its progress as Docker's JSON lines.

    An error before the first message becomes a plain error reply (so the CLI
    prints "Error response from daemon: ..."); a later one becomes Docker's
    in-stream `errorDetail` message. `held` messages are kept back until the
    next one arrives: a pull announces "Pulling from" before it asks the
    registry, and Docker answers a missing repository or tag with a plain 404.
    """
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run() -> None:
        try:
            work(q.put)
        except EngineError as exc:
            q.put(storage_error(exc, root) or exc)
        except OSError as exc:
            q.put(storage_error(exc, root) or EngineError(f"internal error: {exc}"))
        except Exception as exc:  # reported in-stream; the thread must not die silently
            q.put(EngineError(f"internal error: {exc}"))
        q.put(_DONE)

    threading.Thread(target=run, name="progress", daemon=True).start()
    first: list[Any] = []
    while len(first) <= held:
        item = q.get()
        if isinstance(item, EngineError):
            raise item
        first.append(item)
        if item is _DONE:
            break

    def chunks() -> Iterator[bytes]:
        for item in first:
            if item is _DONE:
                return
            yield json.dumps(item).encode() + b"\r\n"
        item = q.get()
        while item is not _DONE:
            if isinstance(item, EngineError):
                item = {"errorDetail": {"message": item.message}, "error": item.message}
            yield json.dumps(item).encode() + b"\r\n"
            item = q.get()

    return StreamReply(chunks())


def registry_auth(req: Request) -> dict[str, Any] | None:
    return auth.decode_registry_auth(req.headers.get("x-registry-auth", ""))


def register(router: Router, d: Daemon) -> None:
    def build_cache() -> BuildCache:
        return BuildCache.at(d.opts.root / "build")

    def create(req: Request) -> StreamReply:
        name = req.arg("fromImage")
        if req.arg("fromSrc"):
            raise InvalidParameter("docker import is not supported; use docker load")
        if not name:
            raise InvalidParameter("fromImage is required")
        tag = req.arg("tag")
        if tag:
            name = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
        ref = reference.parse(name)
        auth = registry_auth(req)
        platform = req.arg("platform") or None

        def work(emit: Callable[[dict[str, Any]], None]) -> None:
            try:
                pull_mod.pull(
                    d.images,
                    ref,
                    platform=platform,
                    auth=auth,
                    progress=emit,
                    insecure=d.opts.insecure_registries,
                )
            except RegistryUnreachable as exc:
                raise RegistryUnreachable(exc.message + UNREACHABLE_HINT) from None
            d.events.publish("image", "pull", ref.familiar, {"name": ref.familiar})

        return progress_stream(work, str(d.opts.root), held=1)

    def list_(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), IMAGE_FILTERS)
        images = d.images.list()
        if not req.flag("all"):  # a build's step images, like Docker's <none> parents
            held = build_cache().with_children(i.id for i in images)
            images = [i for i in images if i.repo_tags or i.id not in held]
        refs = list(flt.get("reference") or [])
        if refs:
            images = [i for i in images if any(_ref_match(t, r) for t in i.repo_tags for r in refs)]
        if "dangling" in flt:
            dangling = filter_flag(flt, "dangling", False)
            images = [i for i in images if (not i.repo_tags) == dangling]
        labels = list(flt.get("label") or [])
        if labels:
            images = [i for i in images if all(_has_label(i.config, lb) for lb in labels)]
        return Reply(200, [d.images.summary(i) for i in images])

    def inspect(req: Request) -> Reply:
        return Reply(200, d.images.inspect(d.images.get(req.params["name"])))

    def history(req: Request) -> Reply:
        return Reply(200, d.images.history(d.images.get(req.params["name"])))

    def tag(req: Request) -> Reply:
        repo = req.arg("repo")
        if not repo:
            raise InvalidParameter("repo is required: tag?repo=NAME&tag=TAG")
        image = d.images.get(req.params["name"])
        d.images.tag(req.params["name"], repo, req.arg("tag") or "latest")
        d.events.publish("image", "tag", image.id, {"name": f"{repo}:{req.arg('tag') or 'latest'}"})
        return Reply(201)

    def remove(req: Request) -> Reply:
        result = d.images.remove(
            req.params["name"], force=req.flag("force"), in_use=d.containers.image_in_use
        )
        for item in result:
            for action, ident in item.items():
                d.events.publish(
                    "image", action.lower() if action != "Deleted" else "delete", ident
                )
        return Reply(200, result)

    def prune(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), ("dangling",))
        dangling = filter_flag(flt, "dangling", True)
        return Reply(
            200, prune_images(d.images, build_cache(), d.containers.image_in_use, dangling)
        )

    def save(req: Request) -> StreamReply:
        names = req.query.get("names") or ([req.params["name"]] if "name" in req.params else [])
        if not names:
            raise InvalidParameter("give at least one image: images/get?names=NAME")
        for n in names:
            d.images.get(n)  # a missing image is a 404 before any byte is sent
        return StreamReply(_save_chunks(d, names), "application/x-tar")

    def load(req: Request) -> StreamReply:
        quiet = req.flag("quiet")

        def work(emit: Callable[[dict[str, Any]], None]) -> None:
            lines = archive.load(
                d.images, cast(BinaryIO, req.body), lambda m: None if quiet else emit(m)
            )
            for line in lines:
                emit({"stream": line + "\n"})
            if not lines:
                emit({"stream": ""})

        return progress_stream(work, str(d.opts.root))

    r = router.add
    r("GET", "/images/json", list_)
    r("POST", "/images/create", create)
    r("POST", "/images/load", load)
    r("POST", "/images/prune", prune)
    r("GET", "/images/get", save)
    r("GET", "/images/{name*}/json", inspect)
    r("GET", "/images/{name*}/history", history)
    r("GET", "/images/{name*}/get", save)
    r("POST", "/images/{name*}/tag", tag)
    r("DELETE", "/images/{name*}", remove)


def _save_chunks(d: Daemon, names: list[str]) -> Iterator[bytes]:
    """Write the archive to a temp file first: a failure then becomes an error, not half a tar."""
    with tempfile.TemporaryFile(dir=d.opts.root) as tmp:
        archive.save(d.images, names, tmp)
        tmp.seek(0)
        while chunk := tmp.read(1 << 20):
            yield chunk


def _ref_match(tag: str, pattern: str) -> bool:
    return fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag, pattern + ":*")


def _has_label(config: dict[str, Any], spec: str) -> bool:
    return has_label((config.get("config") or {}).get("Labels") or {}, spec)
