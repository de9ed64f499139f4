"""COPY and ADD: sources from the context, a stage or an image, as the layer's entries.

The layer is written straight from where the sources are (the received
context, a stage's files, an unpacked archive): `layer_entries` maps each
source path to its name in the image, and `layerdiff.write_entries` puts the
owner and mode in the tar headers. Nothing is copied to a staging tree
first, so a big context is read once for its checksum and once for the
layer, and never written twice. The rules are the classic builder's: a
directory source copies its contents, a file goes to `dest/name` when the
destination ends in `/` or is a directory in the image, several sources need
a `/`-terminated destination, files from the context belong to root unless
`--chown` says otherwise, and directories the copy creates are written into
the layer while ones the image already has are left exactly as they are.
ADD also unpacks local tar archives and fetches URLs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from engine.build import imagefs
from engine.build.layerdiff import TreeEntry
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


@dataclass
class CopyPlan:
    sources: list[Source]
    dest: str  # raw destination as written (expanded)
    workdir: str
    chown: tuple[int, int] | None
    chmod: int | None
    verb: str


def layer_entries(plan: CopyPlan, layer_dirs: list[str], scratch: Path) -> list[TreeEntry]:
    """The layer's entries, in archive order, read in place from the sources.

    Nothing is copied: each entry names the source path its bytes and metadata
    come from, and the owner and mode the layer gives it, which the tar writer
    puts in the headers. A later source replaces an earlier one at the same
    name (a file over a directory drops what was below it; two directories
    merge), as copying them in order would.
    """
    dest, as_dir = destination(plan.dest, plan.workdir)
    if len(plan.sources) > 1 and not as_dir:
        raise InvalidParameter(
            f"When using {plan.verb} with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    into_dir = as_dir or imagefs.is_dir(layer_dirs, dest)
    default_owner = plan.chown if plan.chown is not None else (0, 0)
    entries: dict[str, TreeEntry] = {}
    for i, src in enumerate(plan.sources):
        owner = _owner(plan, src)
        whole = src.is_dir or src.extract
        rel = f"{dest.rstrip('/')}/{src.name}" if into_dir and src.name and not whole else dest
        rel = rel.strip("/")
        parent = str(Path(rel).parent) if rel else ""
        parents(entries, layer_dirs, parent if parent != "." else "", default_owner)
        if whole:
            parents(entries, layer_dirs, rel, default_owner)
            content = _extracted(src, scratch / f"extract-{i}") if src.extract else src.path
            for name in sorted(os.listdir(content)):
                _put(entries, content / name, f"{rel}/{name}" if rel else name, owner, plan.chmod)
        else:
            if not rel:
                raise InvalidParameter(f"{plan.verb} failed: cannot copy a file to /")
            _put(entries, src.path, rel, owner, plan.chmod)
    return [entries[name] for name in sorted(entries)]


def parents(
    entries: dict[str, TreeEntry], layer_dirs: list[str], dest: str, owner: tuple[int, int]
) -> None:
    """Directories on the way to `dest` the image lacks: 0755, `owner`, into the layer.

    Ones the image has are left out, so the layer does not change their mode
    or owner; ones an earlier source of this step wrote are kept as written.
    """
    rel = ""
    for comp in (p for p in dest.split("/") if p):
        rel = f"{rel}/{comp}" if rel else comp
        if rel in entries:
            continue
        existing = imagefs.find(layer_dirs, "/" + rel)
        if existing is None or not existing.is_dir():
            entries[rel] = TreeEntry(rel, None, owner, 0o755, is_dir=True)


def _owner(plan: CopyPlan, src: Source) -> tuple[int, int] | None:
    """--chown, else root for files from the context or a URL; a stage's or an archive's
    files keep their own owners (None)."""
    if plan.chown is not None:
        return plan.chown
    return None if (src.keep_owner or src.extract) else (0, 0)


def _extracted(src: Source, body: Path) -> Path:
    """ADD of a local archive: its members, unpacked safely, are the sources."""
    with open(src.path, "rb") as f:
        extract_layer(f, body, whiteouts=False)
    return body


def _put(
    entries: dict[str, TreeEntry],
    path: Path,
    name: str,
    owner: tuple[int, int] | None,
    mode: int | None,
) -> None:
    """`path` (and all below it, for a directory) as `name`; symlinks are not followed."""
    is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    old = entries.get(name)
    if old is not None and not (is_dir and old.is_dir):
        below = name + "/"
        for key in [k for k in entries if k.startswith(below)]:
            del entries[key]
    entries[name] = TreeEntry(name, path, owner, mode, is_dir=is_dir)
    if is_dir:
        for child in sorted(os.scandir(path), key=lambda e: e.name):
            _put(entries, Path(child.path), f"{name}/{child.name}", owner, mode)
