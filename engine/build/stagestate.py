"""What a stage carries from one step to the next."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.build.args import StageArgs
from engine.build.commit import StageImage
from engine.build.dockerfile import Stage

DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class StageState:
    stage: Stage
    image: StageImage
    args: StageArgs
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))
    cmd_set: bool = False  # a CMD in this stage survives a later ENTRYPOINT
