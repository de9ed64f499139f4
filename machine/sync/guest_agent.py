"""The guest's half of a sync share: a watcher and scanner speaking JSON lines on stdio.

The host starts it over an SSH exec channel (`python3 -I agent.pyz`), so it lives exactly
as long as that channel: when the connection drops, stdin ends and the agent exits, and no
orphan stays behind in the guest. Standard library only: it runs from the guest's plain
python3, packed as a zip application (machine/sync/agentpack.py).

Why an agent and not only SFTP: SFTP has no change notification, and hashing a guest file
over SFTP would read all of it through the connection. The agent hashes in place and
reports changes the moment inotify sees them, and checks-then-changes a path (fsops) in
one request, with no round trip between the check and the change. The bytes themselves,
and renames, move over SFTP.

Protocol, one JSON object per line:
    host -> agent, first line   {"root": "/guest/dir", "ignore": ["node_modules/", ...]}
    agent -> host, then         {"hello": 1, "hostname": "...", "pid": N, "created": bool}
                                (created: the folder did not exist and was made now)
    host -> agent               {"id": N, "op": "scan" | "stat" | "hash" | "df", "paths": [...]}
    agent -> host               {"id": N, "entries": {rel: entry}} (scan: each path and,
                                for a directory, its subtree; stat: the paths alone)
                                {"id": N, "digests": {rel: sha256 or null}}
                                {"id": N, "free": bytes}   {"id": N, "error": "...", "errno": n}
    host -> agent, changes      {"id": N, "op": "parents" | "commit" | "discard" | "mkdir" |
                                "symlink" | "remove" | "rename" | "check-rename" | "sync",
                                "path": rel, "expect": key, ...}: fsops, guarded by
                                `expect`; the reply is {"id": N} or
                                {"entry": ...}, or {"changed": true}, {"unsafe": parent},
                                {"short": true} (commit: the file's hash is not the one sent)
    agent -> host, any time     {"ev": [rel, ...]}  paths that changed ("" = rescan all)

Events are coalesced: after the first one the watcher gathers more until the tree is quiet
for QUIET_S (at most MAX_BATCH_S), then sends the set once. Watches are recursive: a new or
moved-in directory is watched with its subtree (and reported whole, since files may have
appeared in it before its watch existed); a moved-out one is unwatched.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from machine.sync import fsops, inotify, tree
from machine.sync.ignore import IgnoreRules

QUIET_S = 0.02
MAX_BATCH_S = 0.2
Emit = Callable[[dict[str, Any]], None]


class Watcher:
    """Recursive inotify watches on `root`, reporting changed relative paths to `emit`."""

    def __init__(self, root: str, rules: IgnoreRules, emit: Emit) -> None:
        self.root = root
        self.rules = rules
        self.emit = emit
        self.ino = inotify.Inotify()
        self.paths: dict[int, str] = {}

    def watch_tree(self, rel: str) -> None:
        wd = self.ino.add(tree.local(self.root, rel))
        if wd is None:
            return
        self.paths[wd] = rel
        try:
            with os.scandir(tree.local(self.root, rel)) as it:
                subdirs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for name in subdirs:
            child = f"{rel}/{name}" if rel else name
            if not self.rules.ignored(child, True):
                self.watch_tree(child)

    def unwatch_tree(self, rel: str) -> None:
        for wd, path in list(self.paths.items()):
            if path == rel or path.startswith(rel + "/"):
                self.ino.remove(wd)
                del self.paths[wd]

    def _apply(self, ev: inotify.Event, changed: set[str]) -> None:
        if ev.mask & inotify.IN_Q_OVERFLOW:
            changed.add("")
            return
        base = self.paths.get(ev.wd)
        if base is None:
            return
        if ev.mask & inotify.IN_IGNORED:
            del self.paths[ev.wd]
            return
        if not ev.name:
            return  # the directory's own attrib or delete-self: its parent reports it
        rel = f"{base}/{ev.name}" if base else ev.name
        is_dir = bool(ev.mask & inotify.IN_ISDIR)
        if self.rules.ignored(rel, is_dir):
            return
        if is_dir and ev.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
            self.watch_tree(rel)
        elif is_dir and ev.mask & (inotify.IN_MOVED_FROM | inotify.IN_DELETE):
            self.unwatch_tree(rel)
        changed.add(rel)

    def _wait(self, timeout: float | None) -> bool:
        readable, _, _ = select.select([self.ino.fd], [], [], timeout)
        return bool(readable)

    def run(self) -> None:
        while True:
            self._wait(None)
            changed: set[str] = set()
            first = time.monotonic()
            while True:
                for ev in self.ino.read():
                    self._apply(ev, changed)
                left = MAX_BATCH_S - (time.monotonic() - first)
                if left <= 0 or not self._wait(min(QUIET_S, left)):
                    break
            if changed:
                self.emit({"ev": sorted(changed)})


def _change(root: str, op: str, req: dict[str, Any]) -> dict[str, Any] | None:
    """The guarded changes (fsops): the check and the change with no round trip between."""
    path, expect = str(req.get("path", "")), req.get("expect")
    if op == "parents":
        fsops.parents(root, path)
        return {}
    if op == "commit":
        tmp = str(req["tmp"])
        if tree.digest(root, tmp) != req["digest"]:
            fsops.discard(root, tmp)
            return {"short": True}  # SFTP lost part of the write (a full disk, typically)
        entry = fsops.commit(root, tmp, path, int(req["mode"]), int(req["mtime_ns"]), expect)
        return {"entry": entry.to_json()}
    if op == "sync":
        fsops.sync_fs(root)
        return {}
    if op == "discard":
        fsops.discard(root, str(req["tmp"]))
        return {}
    if op == "mkdir":
        return {"entry": fsops.make_dir(root, path, int(req["mode"]), expect).to_json()}
    if op == "symlink":
        return {"entry": fsops.make_link(root, path, str(req["target"]), expect).to_json()}
    if op == "remove":
        fsops.remove(root, path, expect)
        return {}
    if op == "rename":
        fsops.rename(root, str(req["src"]), path, expect)
        return {}
    if op == "check-rename":
        fsops.check_rename(root, str(req["src"]), path, expect)
        return {}
    return None


def handle(root: str, rules: IgnoreRules, request: dict[str, Any]) -> dict[str, Any]:
    op = str(request.get("op"))
    paths = [str(p) for p in request.get("paths", [])]
    try:
        changed = _change(root, op, request)
    except fsops.Changed:
        return {"changed": True}
    except fsops.Unsafe as e:
        return {"unsafe": e.parent}
    if changed is not None:
        return changed
    if op == "scan":
        entries = tree.scan(root, rules, paths)
        return {"entries": {rel: e.to_json() for rel, e in entries.items()}}
    if op == "stat":
        found = {rel: tree.lstat(root, rel) for rel in paths}
        return {"entries": {rel: e.to_json() for rel, e in found.items() if e is not None}}
    if op == "hash":
        return {"digests": {rel: tree.digest(root, rel) for rel in paths}}
    if op == "df":
        st = os.statvfs(root)
        return {"free": st.f_bavail * st.f_frsize}
    return {"error": f"unknown op {op!r}"}


class Output:
    """Whole lines to stdout from two threads; a closed pipe ends the agent."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, doc: dict[str, Any]) -> None:
        line = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, OSError):
                os._exit(0)


def serve(stdin: BinaryIO, out: Output) -> None:
    first = stdin.readline()
    if not first:
        return
    config = json.loads(first)
    root = str(config["root"])
    rules = IgnoreRules(config.get("ignore", []))
    created = not os.path.isdir(root)
    os.makedirs(root, exist_ok=True)
    watcher = Watcher(root, rules, out)
    watcher.watch_tree("")  # before hello: the host's first scan must not miss a change
    threading.Thread(target=watcher.run, name="watch", daemon=True).start()
    out({"hello": 1, "hostname": socket.gethostname(), "pid": os.getpid(), "created": created})
    for line in stdin:
        request = json.loads(line)
        try:
            reply = handle(root, rules, request)
        except OSError as e:
            reply = {"error": f"{e.strerror or e} ({e.filename or root})", "errno": e.errno}
        out({"id": request.get("id"), **reply})


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        serve(sys.stdin.buffer, Output(sys.stdout.buffer))
    os._exit(0)  # the watcher thread blocks in select(); stdin's end is the agent's end


if __name__ == "__main__":
    main()
