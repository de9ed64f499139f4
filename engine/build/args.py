"""ARG scoping: which build arguments a FROM line or a stage's step can see.

Docker's rules, which Dockerfiles rely on:
- ARGs before the first FROM (meta ARGs) are visible to FROM lines only; a
  stage sees one only after re-declaring it (`ARG NAME` without a value takes
  the meta value).
- `--build-arg NAME=v` overrides the default of a declared ARG; a build-arg no
  ARG declares is reported as "not consumed", as a warning, not an error.
- The proxy variables are predefined: usable in RUN without a declaration,
  and kept out of the image history and the cache key unless declared.
- In a stage, ENV wins over an ARG of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.build.dockerfile import Instruction, expand

PREDEFINED = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)


@dataclass
class BuildArgs:
    """The build-args of one build and which of them an ARG consumed."""

    given: dict[str, str | None]
    escape: str = "\\"
    meta: dict[str, str | None] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)

    def declare_meta(self, ins: Instruction) -> None:
        for name, raw in ins.pairs:
            self.consumed.add(name)
            default = None if raw is None else expand(raw, self._meta_env(), self.escape)
            self.meta[name] = self._override(name, default)

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    def meta_env(self) -> dict[str, str]:
        """What a FROM line expands with."""
        return self._meta_env()

    def _override(self, name: str, default: str | None) -> str | None:
        given = self.given.get(name)
        return given if name in self.given and given is not None else default

    def unconsumed(self) -> list[str]:
        return sorted(k for k in self.given if k not in self.consumed and k not in PREDEFINED)

    def stage(self) -> StageArgs:
        return StageArgs(self)


@dataclass
class StageArgs:
    """The ARGs declared in one stage so far, with their values (None: declared, unset)."""

    build: BuildArgs
    values: dict[str, str | None] = field(default_factory=dict)

    def declare(self, ins: Instruction, env: Mapping[str, str]) -> None:
        for name, raw in ins.pairs:
            self.build.consumed.add(name)
            if raw is not None:
                default: str | None = expand(raw, {**self.set_values(), **env}, self.build.escape)
            else:
                default = self.build.meta.get(name)
            self.values[name] = self.build._override(name, default)

    def set_values(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if v is not None}

    def expansion_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """ARGs overridden by ENV, as instructions expand `$NAME`."""
        return {**self.set_values(), **env}

    def run_env(self, env: Mapping[str, str]) -> list[str]:
        """KEY=VALUE of the ARGs a RUN sees that ENV does not already set.

        Declared ARGs first (these are in the cache key and history), then
        predefined proxy args given with --build-arg.
        """
        out = [f"{k}={v}" for k, v in self.set_values().items() if k not in env]
        for name in sorted(PREDEFINED):
            value = self.build.given.get(name)
            if value is not None and name not in self.values and name not in env:
                out.append(f"{name}={value}")
        return out

    def history_args(self, env: Mapping[str, str]) -> list[str]:
        """The declared, set ARGs a RUN depends on: its cache key and `|N k=v` prefix."""
        return [f"{k}={v}" for k, v in sorted(self.set_values().items()) if k not in env]
