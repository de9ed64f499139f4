"""One handler per instruction kind, each ending in a committed (or cached) image.

`Steps.dispatch` expands the instruction's words where Docker expands them
(ENV and ARG values in scope, ENV winning), then looks the step up in the
cache by its parent image and key. A hit prints "Using cache" and moves on;
a miss does the work (a container for RUN, nothing for metadata; the steps
that stage a tree, COPY/ADD and a missing WORKDIR, live in `filesteps`) and
commits.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.build import commit, dockerfile, filesteps, imagefs, layerdiff, metadata, runstep
from engine.build.args import BuildArgs
from engine.build.bases import resolve
from engine.build.commit import NOP, StageImage
from engine.build.dockerfile import Dockerfile, Instruction, Stage, expand, expand_words
from engine.build.dockerfile_heredoc import parse_heredoc_word
from engine.build.stagestate import StageState
from engine.errors import EngineError, InvalidParameter

if TYPE_CHECKING:
    from engine.build.builder import Job

# Files the runtime bind-mounts over; a RUN's upper dir may hold their empty mount points.
RUNTIME_MOUNTS = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
SCRATCH_PARENT = "scratch"


class Steps:
    def __init__(self, job: Job, df: Dockerfile, args: BuildArgs) -> None:
        self.job = job
        self.df = df
        self.args = args
        self.images = job.env.images
        self.results: dict[int, StageImage] = {}
        self.counter = 0
        self._handlers: dict[str, Callable[[StageState, Instruction], None]] = {
            "ARG": self.arg,
            "ENV": self.env,
            "LABEL": self.label,
            "USER": self.user,
            "CMD": self.cmd,
            "ENTRYPOINT": self.entrypoint,
            "EXPOSE": self.expose,
            "VOLUME": self.volume,
            "STOPSIGNAL": self.stopsignal,
            "HEALTHCHECK": self.healthcheck,
            "SHELL": self.shell,
            "ONBUILD": self.onbuild,
            "MAINTAINER": self.maintainer,
            "WORKDIR": lambda st, ins: filesteps.workdir(self, st, ins),
            "RUN": self.run,
            "COPY": lambda st, ins: filesteps.copy(self, st, ins),
            "ADD": lambda st, ins: filesteps.copy(self, st, ins),
        }

    # -- plumbing ------------------------------------------------------------------------

    def check_cancel(self) -> None:
        if self.job.cancel.is_set():
            raise runstep.Cancelled("the client went away; the build was stopped")

    def scratch_dir(self, kind: str) -> Path:
        self.counter += 1
        path = self.job.work / f"{kind}-{self.counter}"
        path.mkdir()
        return path

    def _env(self, st: StageState) -> dict[str, str]:
        return metadata.env_dict(st.image.run_config)

    def expansion(self, st: StageState) -> dict[str, str]:
        return st.args.expansion_env(self._env(st))

    def expand_word(self, st: StageState, word: str) -> str:
        return expand(word, self.expansion(st), self.df.escape)

    def layer_dirs(self, image: StageImage) -> list[str]:
        if not image.image_id:
            return []
        return self.images.layer_dirs(self.images.get(image.image_id))

    def _exists(self, image_id: str) -> bool:
        try:
            self.images.get(image_id)
        except EngineError:
            return False  # removed since: the entry is stale
        return True

    def cached(self, st: StageState, key: str, make: Callable[[], StageImage]) -> None:
        """The step's image from the cache, or made now and remembered."""
        parent = st.image.image_id or SCRATCH_PARENT
        cache = self.job.env.cache
        if not self.job.opts.no_cache:
            hit = cache.lookup(parent, key, self._exists)
            if hit is not None:
                self.job.out.using_cache()
                st.image = commit.from_image(self.images.get(hit))
                return
        made = make()
        cache.record(parent, key, made.image_id, (i.id for i in self.images.list()))
        st.image = made

    def _meta(self, st: StageState, change: Callable[[dict[str, object]], str]) -> None:
        """A config-only step: apply `change` to a copy, commit it with Docker's comment."""
        new = StageImage(
            copy.deepcopy(st.image.config), list(st.image.layer_blobs), st.image.image_id
        )
        comment = change(new.run_config)
        self.cached(
            st, "nop " + comment, lambda: commit.commit(self.images, new, NOP + " " + comment)
        )

    def dispatch(self, st: StageState, ins: Instruction) -> None:
        self._handlers[ins.cmd](st, ins)

    # -- FROM ----------------------------------------------------------------------------

    def base(self, name: str, platform: str) -> StageImage:
        """A previous stage's result, `scratch`, or an image (pulled when missing)."""
        found = self.df.stage(name)
        if found is not None and found.index in self.results and not name.isdigit():
            return self.results[found.index]
        if name.lower() == "scratch":
            return commit.scratch()
        out = self.job.out
        image = resolve(
            self.images,
            name,
            pull=self.job.opts.pull,
            platform=platform,
            auths=self.job.auths,
            insecure=self.job.env.insecure,
            progress=(lambda _m: None) if out.quiet else out.emit,
        )
        return commit.from_image(image)

    def from_(self, stage: Stage) -> StageState:
        meta = self.args.meta_env()
        name = dockerfile.stage_base(self.df, stage, meta)
        platform = expand(stage.platform, meta, self.df.escape) if stage.platform else ""
        image = self.base(name, platform or self.job.opts.platform)
        st = StageState(stage, image, self.args.stage())
        st.shell = list(image.run_config.get("Shell") or st.shell)
        self.job.out.image(image.image_id)
        triggers = list(image.run_config.get("OnBuild") or [])
        if triggers:
            st.image = StageImage(
                copy.deepcopy(image.config), list(image.layer_blobs), image.image_id
            )
            st.image.run_config["OnBuild"] = None
            plural = "s" if len(triggers) > 1 else ""
            self.job.out.stream(f"# Executing {len(triggers)} build trigger{plural}\n")
            for text in triggers:
                self.check_cancel()
                trigger = self._parse_trigger(text)
                self.dispatch(st, trigger)
                self.job.out.image(st.image.image_id)
        return st

    def _parse_trigger(self, text: str) -> Instruction:
        try:
            return dockerfile.parse_instruction(text, self.df.escape)
        except (InvalidParameter, ValueError) as exc:
            raise InvalidParameter(
                f"invalid ONBUILD trigger {text!r} in the base image: {exc}"
            ) from None

    def finish_stage(self, st: StageState) -> None:
        self.results[st.stage.index] = st.image

    # -- metadata ------------------------------------------------------------------------

    def arg(self, st: StageState, ins: Instruction) -> None:
        st.args.declare(ins, self._env(st))
        words = " ".join(ins.args)
        self._meta(st, lambda _c: f"ARG {words}")

    def _pairs(self, st: StageState, ins: Instruction) -> list[tuple[str, str]]:
        env = self.expansion(st)
        out: list[tuple[str, str]] = []
        for key, raw in ins.pairs:
            k = expand(key, env, self.df.escape)
            v = expand(raw or "", env, self.df.escape)
            if not k:
                raise InvalidParameter(f"{ins.cmd} names can not be blank")
            out.append((k, v))  # every pair sees the values from before the instruction
        return out

    def env(self, st: StageState, ins: Instruction) -> None:
        pairs = self._pairs(st, ins)
        self._meta(st, lambda c: metadata.set_env(c, pairs))

    def label(self, st: StageState, ins: Instruction) -> None:
        pairs = self._pairs(st, ins)
        self._meta(st, lambda c: metadata.set_labels(c, pairs))

    def user(self, st: StageState, ins: Instruction) -> None:
        user = self.expand_word(st, ins.args[0])
        self._meta(st, lambda c: metadata.set_user(c, user))

    def cmd(self, st: StageState, ins: Instruction) -> None:
        st.cmd_set = True
        self._meta(st, lambda c: metadata.set_cmd(c, ins, st.shell))

    def entrypoint(self, st: StageState, ins: Instruction) -> None:
        self._meta(st, lambda c: metadata.set_entrypoint(c, ins, st.shell, st.cmd_set))

    def _words(self, st: StageState, ins: Instruction) -> list[str]:
        env = self.expansion(st)
        out: list[str] = []
        for word in ins.args:
            out += expand_words(word, env, self.df.escape)
        return out

    def expose(self, st: StageState, ins: Instruction) -> None:
        ports = self._words(st, ins)
        self._meta(st, lambda c: metadata.expose(c, ports))

    def volume(self, st: StageState, ins: Instruction) -> None:
        env = self.expansion(st)
        paths = [expand(w, env, self.df.escape) for w in ins.args]
        self._meta(st, lambda c: metadata.volume(c, paths))

    def stopsignal(self, st: StageState, ins: Instruction) -> None:
        sig = self.expand_word(st, ins.args[0])
        self._meta(st, lambda c: metadata.stop_signal(c, sig))

    def healthcheck(self, st: StageState, ins: Instruction) -> None:
        self._meta(st, lambda c: metadata.healthcheck(c, ins))

    def shell(self, st: StageState, ins: Instruction) -> None:
        st.shell = list(ins.args)
        self._meta(st, lambda c: metadata.set_shell(c, st.shell))

    def onbuild(self, st: StageState, ins: Instruction) -> None:
        trigger = ins.args[0]
        self._meta(st, lambda c: metadata.onbuild(c, trigger))

    def maintainer(self, st: StageState, ins: Instruction) -> None:
        author = self.expand_word(st, ins.args[0])
        new = StageImage(
            copy.deepcopy(st.image.config), list(st.image.layer_blobs), st.image.image_id
        )
        new.config["author"] = author
        comment = f"MAINTAINER {author}"
        self.cached(
            st, "nop " + comment, lambda: commit.commit(self.images, new, NOP + " " + comment)
        )

    # -- RUN -----------------------------------------------------------------------------

    def run(self, st: StageState, ins: Instruction) -> None:
        args = metadata.command(ins, st.shell)
        if ins.heredocs and not ins.json_form:
            args = [*st.shell, heredoc_script(ins)]
        if not args:
            raise InvalidParameter(f"RUN on line {ins.line} has no command")
        env = self._env(st)
        hist = st.args.history_args(env)
        prefix = f"|{len(hist)} " + " ".join(hist) + " " if hist else ""
        created_by = prefix + " ".join(args)
        key = "run " + json.dumps([hist, args])

        def make() -> StageImage:
            if not st.image.image_id:
                st.image = commit.commit(self.images, st.image, NOP + " (scratch)")
            return self._run_container(st, args, env, created_by)

        self.cached(st, key, make)

    def _run_container(
        self, st: StageState, args: list[str], env: dict[str, str], created_by: str
    ) -> StageImage:
        cfg = st.image.run_config
        req = runstep.RunRequest(
            image_id=st.image.image_id,
            args=args,
            shown=" ".join(args),
            env=st.args.run_env(env),
            user=str(cfg.get("User") or ""),
            workdir=str(cfg.get("WorkingDir") or ""),
            network_mode=self.job.opts.network_mode,
        )
        self.counter += 1
        tar = self.job.work / f"run-{self.counter}.tar"
        started: list[str] = []

        def keep(upper: Path) -> None:
            with open(tar, "wb") as f:
                layerdiff.write_layer(
                    upper, f, exclude=_runtime_leftovers(upper, self.layer_dirs(st.image))
                )

        def on_start(cid: str) -> None:
            started.append(cid)
            self.job.out.running_in(cid)

        try:
            runstep.run(
                self.job.env.containers, req, self.job.cancel, on_start, self.job.out.stream, keep
            )
            if started:
                self.job.out.removing(started[0])
            return commit.commit(self.images, st.image, created_by, tar)
        finally:
            tar.unlink(missing_ok=True)


def heredoc_script(ins: Instruction) -> str:
    """The shell text of a RUN with heredocs.

    `RUN <<EOF` alone runs the body as the script; `RUN cmd <<EOF` hands the
    shell the line and the heredocs as written, so the shell itself feeds them
    to the command (and expands them, or not, by its own quoting rules).
    """
    line = ins.args[0]
    words = line.split()
    if len(ins.heredocs) == 1 and len(words) == 1 and parse_heredoc_word(words[0]) is not None:
        return ins.heredocs[0].body()
    docs = "".join(doc.content + doc.name + "\n" for doc in ins.heredocs)
    return f"{line}\n{docs}"


def _runtime_leftovers(upper: Path, layers: list[str]) -> list[str]:
    """Empty mount points the runtime made for its bind mounts, absent from the image."""
    out: list[str] = []
    for rel in RUNTIME_MOUNTS:
        path = upper / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if st.st_size == 0 and imagefs.find(layers, "/" + rel) is None:
            out.append(rel)
    return out
