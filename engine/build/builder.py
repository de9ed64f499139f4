"""The classic builder: a Dockerfile's stages run step by step, each step an image.

`Builder.build` takes the received context and the checked options, and
runs the stages up to the target in file order. Every instruction after
FROM commits an image (the next step's parent, and the key of the step
cache), so the output, the cache and the history match what Docker's
classic builder gives. Instruction kinds are dispatched to `steps`; this
module owns the walk, the step numbering, the tags and the clean-up.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.build import commit, dockerfile, runstep
from engine.build.args import BuildArgs
from engine.build.cache import BuildCache
from engine.build.dockerignore import DockerIgnore
from engine.build.output import Output
from engine.build.request import BuildOptions
from engine.build.stagestate import StageState
from engine.build.steps import Steps
from engine.containers.manager import ContainerManager
from engine.errors import InvalidParameter
from engine.events import EventBus
from engine.images import reference
from engine.images.store import ImageStore


@dataclass
class BuildEnv:
    """What one build needs from the engine."""

    images: ImageStore
    containers: ContainerManager
    events: EventBus
    cache: BuildCache
    insecure: Sequence[str] = ()


@dataclass
class Job:
    """One build in flight: where it works and how it reports."""

    env: BuildEnv
    opts: BuildOptions
    context: Path
    work: Path
    out: Output
    cancel: threading.Event
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_dockerfile(context: Path, name: str) -> dockerfile.Dockerfile:
    rel = name.lstrip("/")
    path = context / rel
    if ".." in Path(rel).parts or not path.is_file():
        raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
    text = path.read_text(encoding="utf-8", errors="replace")
    return dockerfile.parse(text, Path(rel).name)


def drop_ignored_meta(context: Path, dockerfile_name: str) -> None:
    """As Docker's daemon: the Dockerfile and .dockerignore leave the context when ignored.

    The client already filtered everything else it sent.
    """
    ignore = DockerIgnore.load(context)
    for rel in (dockerfile_name.lstrip("/"), ".dockerignore"):
        if ignore.matches(rel):
            (context / rel).unlink(missing_ok=True)


def _stages_to_build(df: dockerfile.Dockerfile, target: str) -> list[dockerfile.Stage]:
    if not target:
        return list(df.stages)
    for st in df.stages:
        if st.name == target.lower():
            return df.stages[: st.index + 1]
    raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")


def _label_instruction(labels: dict[str, str]) -> dockerfile.Instruction | None:
    """`--label`s become a LABEL step at the end, as the classic builder adds them."""
    if not labels:
        return None
    words = " ".join(f'"{_quote(k)}"="{_quote(v)}"' for k, v in sorted(labels.items()))
    return dockerfile.parse_instruction(f"LABEL {words}")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


class Builder:
    def __init__(self, env: BuildEnv, work_root: Path) -> None:
        self.env = env
        self.work_root = work_root
        # Made before the first build runs: whatever a stopped engine's builds left is orphaned.
        shutil.rmtree(work_root, ignore_errors=True)
        work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        runstep.remove_orphans(env.containers)

    def workspace(self) -> Path:
        path = self.work_root / uuid.uuid4().hex
        path.mkdir(mode=0o700)
        return path

    def build(self, job: Job) -> str:
        """Run the build; returns the final image id. Raises with Docker's message."""
        df = read_dockerfile(job.context, job.opts.dockerfile)
        drop_ignored_meta(job.context, job.opts.dockerfile)  # read first, then out of COPY's way
        for warning in df.warnings:
            job.out.warning(warning)
        stages = _stages_to_build(df, job.opts.target)
        extra = _label_instruction(job.opts.labels)
        bodies = [list(s.instructions) for s in stages]
        if extra is not None:
            bodies[-1].append(extra)
        total = len(df.meta_args) + len(stages) + sum(len(b) for b in bodies)
        args = BuildArgs(dict(job.opts.build_args), df.escape)
        steps = Steps(job, df, args)
        number = 0
        for meta in df.meta_args:
            number += 1
            job.out.step(number, total, meta.original)
            args.declare_meta(meta)
        state: StageState | None = None
        for stage, body in zip(stages, bodies, strict=True):
            number += 1
            job.out.step(number, total, stage.from_instruction.original)
            state = steps.from_(stage)
            for ins in body:
                steps.check_cancel()
                number += 1
                job.out.step(number, total, ins.original)
                steps.dispatch(state, ins)
                job.out.image(state.image.image_id)
            steps.finish_stage(state)
        assert state is not None
        if not state.image.image_id:
            state.image = commit.commit(job.env.images, state.image, "")
        unused = args.unconsumed()
        if unused:
            job.out.warning(f"One or more build-args [{' '.join(unused)}] were not consumed")
        self._tag(state.image.image_id, job.opts.tags)
        job.out.done(state.image.image_id, job.opts.tags)
        return state.image.image_id

    def _tag(self, image_id: str, tags: list[str]) -> None:
        for tag in tags:
            ref = reference.parse(tag)
            self.env.images.tag(image_id, ref.repository, ref.tag or "latest")
            self.env.events.publish("image", "tag", image_id, {"name": ref.familiar})
