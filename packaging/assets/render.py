"""Render packaging/assets/dockyard.svg to the PNG sizes, the macOS .icns and the Windows
.ico: `python packaging/assets/render.py`. The PNGs go to app/gui/brand/ (package data:
the window and tray icons at run time, and the Linux icon theme sizes), the .icns and
.ico beside the SVG (build inputs of the macOS and Windows packages). All are committed:
they are small, and a build must not need a display or a renderer to have its icons.

Why Qt's own SVG renderer (QtSvg ships in PySide6-Essentials): the app already depends on
it, so the icons need no other tool (no Inkscape, no iconutil, no ImageMagick), and the
build on any OS makes the same bytes. The .icns and .ico containers are written here:
both accept PNG entries, which keeps them a few lines of struct packing.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PNG_DIR = HERE.parents[1] / "app" / "gui" / "brand"
SVG = HERE / "dockyard.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# icns entry types holding PNG data, by pixel size (Apple's icns format).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn into a transparent square image of `size` pixels, as PNG bytes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def icns(pngs: dict[int, bytes]) -> bytes:
    """An Apple icon family: 'icns', total length, then (type, length, PNG) entries."""
    body = b"".join(
        ICNS_TYPES[size] + struct.pack(">I", len(png) + 8) + png
        for size, png in sorted(pngs.items())
        if size in ICNS_TYPES
    )
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows icon: ICONDIR, one ICONDIRENTRY per size, then the PNG images."""
    chosen = [(s, pngs[s]) for s in ICO_SIZES if s in pngs]
    header = struct.pack("<HHH", 0, 1, len(chosen))
    offset = len(header) + 16 * len(chosen)
    entries, images = b"", b""
    for size, png in chosen:
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + entries + images


def render_all(out: Path, png_dir: Path = PNG_DIR, svg: Path = SVG) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(svg, size) for size in SIZES}
    written = []
    for size, png in pngs.items():
        path = png_dir / f"dockyard-{size}.png"
        path.write_bytes(png)
        written.append(path)
    for name, data in (("dockyard.icns", icns(pngs)), ("dockyard.ico", ico(pngs))):
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE, help="for the .icns and .ico")
    p.add_argument("--png-out", type=Path, default=PNG_DIR, help="for the PNG sizes")
    args = p.parse_args()
    for path in render_all(args.out, args.png_out):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
