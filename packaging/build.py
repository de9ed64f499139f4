"""`python packaging/build.py onedir|deb|tar...`: the frozen app and the Linux packages.

Everything lands under `.cache/packaging/` (gitignored):
- `dist/dockyard/`: the PyInstaller one-dir build (the portable artefact), with the guest
  image copied into `guest/` beside the executables (machine/config.images_home).
- `dockyard_<version>_amd64.deb`: that tree under /opt/dockyard, staged and packed with
  dpkg-deb (packaging/linux/).
- `dockyard-<version>-linux-x86_64.tar.zst`: the one-dir build as it is, the portable
  artefact for other distributions (no AppImage: see packaging/README.md).

A build is reused while nothing it was made from changed: the one-dir build records a hash
of its inputs (our packages, the spec, pyproject.toml) in `dist/dockyard/.inputs`, so a
warm `make package` only repacks.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from linux import deb

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "packaging"
DIST = CACHE / "dist" / "dockyard"
SPEC = REPO / "packaging" / "pyinstaller" / "dockyard.spec"
GUEST = REPO / ".cache" / "vmimage" / "debian-x86_64"
SOURCES = ("engine", "app", "machine", "patternmatcher", "packaging/pyinstaller")
STAMP = ".inputs"


def inputs_hash() -> str:
    """What the one-dir build is made of: our Python files, the spec, the pins."""
    h = hashlib.sha256()
    files = [REPO / "pyproject.toml", REPO / "app" / "compose" / "compose-spec.json"]
    for top in SOURCES:
        files += sorted(p for p in (REPO / top).rglob("*") if p.suffix in (".py", ".spec", ".png"))
    for f in files:
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def ensure_guest() -> Path:
    """The prebuilt guest image (`make images` builds the same); built here if missing."""
    if not (GUEST / "manifest.json").is_file():
        cmd = [sys.executable, "-m", "vmimage", "build", "--recipe", "debian", "--out", str(GUEST)]
        subprocess.run(cmd, cwd=REPO, check=True)
    return GUEST


def onedir(with_guest: bool = True) -> Path:
    want = inputs_hash()
    stamp = DIST / STAMP
    if not (stamp.is_file() and stamp.read_text() == want):
        pyinstaller = Path(sys.executable).with_name("pyinstaller")
        if not pyinstaller.is_file():
            raise SystemExit(
                f"{pyinstaller} is missing: install the packaging extra "
                "(pip install -e '.[packaging]', which `make package` does)"
            )
        cmd = [
            str(pyinstaller),
            "--noconfirm",
            "--log-level=WARN",
            f"--workpath={CACHE / 'work'}",
            f"--distpath={DIST.parent}",
            str(SPEC),
        ]
        subprocess.run(cmd, cwd=REPO, check=True)
        stamp.write_text(want)
    guest = DIST / "guest"
    copied = guest / GUEST.name / "manifest.json"
    if with_guest:
        source = ensure_guest()
        if not (
            copied.is_file() and copied.read_bytes() == (source / "manifest.json").read_bytes()
        ):
            shutil.rmtree(guest, ignore_errors=True)
            shutil.copytree(source, guest / GUEST.name, ignore=shutil.ignore_patterns(".*"))
    return DIST


def tarball(tree: Path) -> Path:
    """The one-dir tree as `dockyard/` in a zstd tarball (tar keeps the executables' modes)."""
    out = CACHE / f"dockyard-{deb.version()}-linux-x86_64.tar.zst"
    cmd = ["tar", "--zstd", f"--exclude={tree.name}/{STAMP}", "-cf", str(out)]
    subprocess.run([*cmd, "-C", str(tree.parent), tree.name], check=True)
    return out


def package(what: str, tree: Path) -> Path:
    if what == "deb":
        return deb.build(tree, CACHE / "deb", CACHE)
    if what == "tar":
        return tarball(tree)
    return tree


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__)
    p.add_argument("what", nargs="+", choices=["onedir", "deb", "tar"])
    p.add_argument("--no-guest", action="store_true", help="leave the guest image out")
    args = p.parse_args(argv)
    started = time.monotonic()
    tree = onedir(with_guest=not args.no_guest)  # once: both packages hold the same build
    for what in args.what:
        out = package(what, tree)
        print(f"{out} ({time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
