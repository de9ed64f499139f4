"""WORKDIR, COPY and ADD: steps whose layer is a staged tree rather than a container's writes.

The sources are resolved and checksummed before the cache is asked (the
checksum is part of the key, as in the classic builder: an unchanged input
hits, a changed one rebuilds from this step on); only a miss writes the
layer, straight from the sources. The checksum and the tar are two reads,
not one: the checksum must be known before the cache decides, a hit needs
no tar at all, and on a miss the second read comes from the page cache.
"""

from __future__ import annotations

import copy as copy_mod
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.build import commit, copying, imagefs, layerdiff, metadata
from engine.build.commit import NOP, StageImage
from engine.build.context import checksum
from engine.build.dockerfile import Instruction, expand
from engine.build.stagestate import StageState
from engine.errors import InvalidParameter

if TYPE_CHECKING:
    from engine.build.steps import Steps


def workdir(s: Steps, st: StageState, ins: Instruction) -> None:
    """WORKDIR sets the config; a directory the image lacks is made in a layer, as Docker."""
    path = s.expand_word(st, ins.args[0])
    new = StageImage(
        copy_mod.deepcopy(st.image.config), list(st.image.layer_blobs), st.image.image_id
    )
    comment = metadata.workdir(new.run_config, path)
    target = str(new.run_config["WorkingDir"])
    layers = s.layer_dirs(st.image)

    def make() -> StageImage:
        if target == "/" or imagefs.is_dir(layers, target):
            return commit.commit(s.images, new, NOP + comment)
        created: dict[str, layerdiff.TreeEntry] = {}
        copying.parents(created, layers, target.strip("/"), (0, 0))
        return commit_entries(s, new, [created[k] for k in sorted(created)], NOP + comment)

    s.cached(st, "nop " + comment, make)


def commit_entries(
    s: Steps, state: StageImage, entries: list[layerdiff.TreeEntry], created_by: str
) -> StageImage:
    tar = s.scratch_dir("layer") / "layer.tar"
    try:
        with open(tar, "wb") as f:
            layerdiff.write_entries(entries, f)
        return commit.commit(s.images, state, created_by, tar)
    finally:
        tar.unlink(missing_ok=True)


def copy(s: Steps, st: StageState, ins: Instruction) -> None:
    env = s.expansion(st)
    if ins.heredocs:
        raise InvalidParameter(
            f"{ins.cmd} with a heredoc needs BuildKit; put the file in the context"
        )
    words = [expand(w, env, s.df.escape) for w in ins.args]
    raws, dest = words[:-1], words[-1]
    flags = {k: expand(v, env, s.df.escape) for k, v in ins.flags.items()}
    layers = s.layer_dirs(st.image)
    chown = imagefs.resolve_chown(layers, flags["chown"]) if flags.get("chown") else None
    chmod = _chmod(flags.get("chmod", ""))
    scratch = s.scratch_dir("src")
    sources, digest = _sources(s, ins.cmd, raws, flags, scratch)
    cwd = str(st.image.run_config.get("WorkingDir") or "/")
    plan = copying.CopyPlan(sources, dest, cwd, chown, chmod, ins.cmd)
    created_by = f"{NOP}{ins.cmd} {_kind(sources)}:{digest.removeprefix('sha256:')} in {dest} "
    key = "copy " + json.dumps([ins.cmd, digest, raws, dest, cwd, sorted(flags.items())])

    def make() -> StageImage:
        entries = copying.layer_entries(plan, layers, scratch)
        return commit_entries(s, st.image, entries, created_by)

    s.cached(st, key, make)


def _kind(sources: list[copying.Source]) -> str:
    """Docker's history names the source kind: `file:<sum>`, `dir:<sum>`, `multi:<sum>`."""
    if len(sources) != 1:
        return "multi"
    return "dir" if sources[0].is_dir else "file"


def _sources(
    s: Steps, verb: str, raws: list[str], flags: dict[str, str], scratch: Path
) -> tuple[list[copying.Source], str]:
    """The resolved sources and one checksum over all of them (the cache key's part)."""
    source = flags.get("from", "")
    if source:
        image = _copy_from(s, source)
        found = copying.image_sources(s.layer_dirs(image), raws, verb, scratch)
        return found, "sha256:" + _hash([image.image_id, *raws])
    ctx = s.job.context
    out: list[copying.Source] = []
    digests: list[str] = []
    for raw in raws:
        if verb == "ADD" and copying.is_url(raw):
            src, digest = copying.fetch_url(raw, scratch)
            _check_sum(flags.get("checksum", ""), digest, raw)
            out.append(src)
            digests.append(digest)
            continue
        found = copying.context_sources(ctx, [raw], verb, verb == "ADD")
        rels = [os.path.relpath(f.path, ctx) if f.path != ctx else "." for f in found]
        digests.append(checksum(ctx, rels))
        out += found
    return out, "sha256:" + _hash(digests)


def _copy_from(s: Steps, name: str) -> StageImage:
    found = s.df.stage(name)
    if found is not None:
        if found.index not in s.results:
            raise InvalidParameter(
                f"COPY --from={name}: stage {name!r} is not built before this step"
            )
        return s.results[found.index]
    return s.base(name, s.job.opts.platform)


def _hash(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _check_sum(expected: str, actual: str, url: str) -> None:
    """ADD --checksum=sha256:...: the download must hash to it."""
    if not expected:
        return
    if not expected.startswith("sha256:"):
        raise InvalidParameter("ADD --checksum: only sha256:<hex> digests are supported")
    if expected != actual:
        raise InvalidParameter(
            f"ADD failed: the content of {url} has digest {actual}, not the expected {expected}"
        )


def _chmod(text: str) -> int | None:
    if not text:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise InvalidParameter(f"invalid --chmod value {text!r}: give an octal mode such as 755")
    return mode
