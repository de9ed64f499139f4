"""python -m vmimage build --recipe R --arch A --out DIR"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from vmimage import build


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m vmimage", description="Build the Dockyard guest image."
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build an image directory")
    b.add_argument("--recipe", default="debian", help="debian (builds here) or alpine")
    b.add_argument("--arch", default=platform.machine(), help="x86_64 or aarch64")
    b.add_argument("--out", type=Path, required=True, help="image directory to write")
    b.add_argument("--cache", type=Path, help="download cache (default .cache/vmimage/downloads)")
    b.add_argument("--compression", default="none", choices=["gzip", "zstd", "none"])
    b.add_argument("--format", default="erofs", choices=list(build.FORMATS))
    b.add_argument(
        "--engine",
        default="head",
        help="bundle engine/ as committed at HEAD (default), at a given commit, or 'worktree'",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    repo = Path(__file__).resolve().parent.parent
    opts = build.BuildOptions(
        recipe=args.recipe,
        arch=args.arch,
        out=args.out,
        cache=args.cache or build.default_cache(repo),
        epoch=build.source_date_epoch(),
        compression=args.compression,
        format=args.format,
        engine_source=args.engine,
    )
    try:
        hashes = build.build(opts)
    except Exception as e:  # every failure is reported in one line, with its kind
        print(f"vmimage: build failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for name, digest in sorted(hashes.items()):
        print(f"{digest}  {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
