"""COPY and ADD: sources from the context, a stage or an image, staged as the layer's tree.

The layer is assembled in a staging directory shaped like the image root,
then written with `layerdiff.write_tree`. The rules are the classic
builder's: a directory source copies its contents, a file goes to
`dest/name` when the destination ends in `/` or is a directory in the
image, several sources need a `/`-terminated destination, files from the
context belong to root unless `--chown` says otherwise, and directories the
copy creates are written into the layer while ones the image already has
are left exactly as they are. ADD also unpacks local tar archives and
fetches URLs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

from engine.build import imagefs
from engine.containers import copyup
from engine.errors import InvalidParameter
from engine.images.unpack import extract_layer

_GLOB = set("*?[")
URL_TIMEOUT = 60.0


@dataclass
class Source:
    """One resolved source: where its bytes are on the host and how it is named."""

    path: Path
    name: str  # the base name used when copying into a directory
    is_dir: bool
    extract: bool = False  # ADD of a local tar archive
    keep_owner: bool = False  # from another stage/image: owners are kept (unless --chown)


@dataclass
class Staged:
    root: Path
    paths: list[str] = field(default_factory=list)  # what the layer holds, relative to root


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def clean_source(raw: str) -> str:
    """A context-relative source path; `..` that leaves the context is refused, as Docker."""
    parts: list[str] = []
    for comp in raw.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidParameter(f"forbidden path outside the build context: {raw} ()")
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


def _missing(raw: str, verb: str) -> InvalidParameter:
    return InvalidParameter(
        f"{verb} failed: file not found in build context or excluded by .dockerignore: "
        f"stat {raw}: file does not exist"
    )


def _glob(root: Path, rel: str) -> list[str]:
    """Go filepath.Match per component (`*` never crosses `/`), dotfiles included."""
    found = [""]
    for comp in rel.split("/"):
        nxt: list[str] = []
        for base in found:
            here = root / base if base else root
            if not any(c in _GLOB for c in comp):
                if os.path.lexists(here / comp):
                    nxt.append(f"{base}/{comp}" if base else comp)
                continue
            try:
                names = sorted(os.listdir(here))
            except (NotADirectoryError, FileNotFoundError):
                continue
            nxt += [f"{base}/{n}" if base else n for n in names if fnmatch.fnmatchcase(n, comp)]
        found = nxt
    return found


def context_sources(root: Path, raws: list[str], verb: str, allow_extract: bool) -> list[Source]:
    out: list[Source] = []
    for raw in raws:
        rel = clean_source(raw)
        matches = _glob(root, rel) if any(c in _GLOB for c in rel) else [rel]
        if not matches:
            raise InvalidParameter(f"{verb} failed: no source files were specified")
        for m in matches:
            path = root / m if m else root
            if not os.path.lexists(path):
                raise _missing(raw, verb)
            is_dir = path.is_dir() and not path.is_symlink()
            extract = allow_extract and not is_dir and _is_archive(path)
            out.append(Source(path, Path(m).name if m else "", is_dir, extract))
    return out


def image_sources(layer_dirs: list[str], raws: list[str], verb: str, scratch: Path) -> list[Source]:
    """Sources from another stage or image: a directory's union is copied out first."""
    out: list[Source] = []
    for raw in raws:
        rel = "/" + clean_source(raw)
        found = imagefs.find(layer_dirs, rel) if rel != "/" else Path(layer_dirs[0])
        if found is None or not layer_dirs:
            raise _missing(raw, verb)
        if found.is_dir() and not found.is_symlink():
            dest = scratch / f"from-{len(out)}"
            dest.mkdir()
            copyup.populate(dest, layer_dirs, rel)
            out.append(Source(dest, Path(rel).name, True, keep_owner=True))
        else:
            out.append(Source(found, Path(rel).name, False, keep_owner=True))
    return out


def _is_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def fetch_url(url: str, scratch: Path) -> tuple[Source, str]:
    """Download an ADD URL; returns the source and the sha256 of its bytes (the cache key)."""
    target = scratch / f"url-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as resp, open(target, "wb") as f:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InvalidParameter(f"ADD failed: could not download {url}: {exc}") from None
    os.chmod(target, 0o600)
    if modified:
        try:
            when = parsedate_to_datetime(modified).timestamp()
            os.utime(target, (when, when))
        except (TypeError, ValueError):
            pass
    name = Path(urllib.parse.urlsplit(url).path).name
    return Source(target, name, False), "sha256:" + h.hexdigest()


def destination(raw: str, workdir: str) -> tuple[str, bool]:
    """(absolute image path, whether it names a directory by its trailing slash)."""
    as_dir = raw.endswith("/") or raw.endswith("/.") or raw == "."
    path = raw if raw.startswith("/") else f"{workdir.rstrip('/') or ''}/{raw}"
    clean = os.path.normpath(path)
    return ("/" if clean in ("/", "//") else clean), as_dir


def mirror_parents(
    tree: Path, layer_dirs: list[str], dest: str, created: list[str], owner: tuple[int, int]
) -> None:
    """Make dest's parents in the staging tree; new ones are written into the layer."""
    parts = [p for p in dest.split("/") if p]
    rel = ""
    for comp in parts:
        rel = f"{rel}/{comp}" if rel else comp
        here = tree / rel
        if here.is_dir():
            continue
        existing = imagefs.find(layer_dirs, "/" + rel)
        here.mkdir()
        if existing is not None and existing.is_dir():
            st = os.lstat(existing)
            os.chmod(here, stat.S_IMODE(st.st_mode))
            os.lchown(here, st.st_uid, st.st_gid)
        else:
            os.chmod(here, 0o755)
            os.lchown(here, *owner)
            created.append(rel)


def _own(root: Path, owner: tuple[int, int] | None, mode: int | None) -> None:
    """Apply --chown / the root default and --chmod to a copied tree (symlinks: owner only)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            _set(Path(dirpath, name), owner, mode)
    _set(root, owner, mode)


def _set(path: Path, owner: tuple[int, int] | None, mode: int | None) -> None:
    if owner is not None:
        os.lchown(path, *owner)
    if mode is not None and not path.is_symlink():
        os.chmod(path, mode)


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
    else:
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            dst.unlink()
        shutil.copy2(src, dst, follow_symlinks=False)


@dataclass
class CopyPlan:
    sources: list[Source]
    dest: str  # raw destination as written (expanded)
    workdir: str
    chown: tuple[int, int] | None
    chmod: int | None
    verb: str


def stage(plan: CopyPlan, layer_dirs: list[str], tree: Path, scratch: Path) -> Staged:
    """Build the layer's tree under `tree` (which must exist and be empty)."""
    dest, as_dir = destination(plan.dest, plan.workdir)
    many = len(plan.sources) > 1
    if many and not as_dir:
        raise InvalidParameter(
            f"When using {plan.verb} with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    into_dir = as_dir or imagefs.is_dir(layer_dirs, dest)
    staged = Staged(tree)
    created: list[str] = []
    default_owner = plan.chown if plan.chown is not None else (0, 0)
    for i, src in enumerate(plan.sources):
        owner = plan.chown if (plan.chown is not None or not src.keep_owner) else None
        if src.is_dir or src.extract:
            target = dest
        elif into_dir:
            target = f"{dest.rstrip('/')}/{src.name}" if src.name else dest
        else:
            target = dest
        rel = target.strip("/")
        parent = str(Path(rel).parent) if rel else ""
        mirror_parents(tree, layer_dirs, parent if parent != "." else "", created, default_owner)
        if src.is_dir or src.extract:
            mirror_parents(tree, layer_dirs, rel, created, default_owner)
            body = scratch / f"extract-{i}"
            if src.extract:
                with open(src.path, "rb") as f:
                    extract_layer(f, body, whiteouts=False)
                content = body
            else:
                content = src.path
            for name in sorted(os.listdir(content)):
                _copy(content / name, tree / rel / name if rel else tree / name)
                item = tree / rel / name if rel else tree / name
                _own(item, owner, plan.chmod)
                staged.paths.append(f"{rel}/{name}" if rel else name)
        else:
            if not rel:
                raise InvalidParameter(f"{plan.verb} failed: cannot copy a file to /")
            _copy(src.path, tree / rel)
            _own(tree / rel, owner, plan.chmod)
            staged.paths.append(rel)
    staged.paths = sorted(set(created + _walk(tree, staged.paths)))
    return staged


def _walk(tree: Path, roots: list[str]) -> list[str]:
    out: list[str] = []
    for rel in roots:
        out.append(rel)
        path = tree / rel
        if path.is_dir() and not path.is_symlink():
            for dirpath, dirnames, filenames in os.walk(path):
                base = Path(dirpath).relative_to(tree)
                out += [str(base / n) for n in [*dirnames, *filenames]]
    return out
