"""Bad build requests: a clear one-line error, and the image already in --out is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmimage import __main__ as cli
from vmimage import build, enginesrc
from vmimage.recipes import get_recipe


def existing_image(out: Path) -> dict[str, bytes]:
    out.mkdir()
    files = {"manifest.json": b'{"format": 1}\n', "vmlinux": b"old kernel"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--recipe", "gentoo"], "unknown recipe 'gentoo': choose one of alpine, debian"),
        (["--recipe", "debian", "--arch", "riscv64"], "builds x86_64; not riscv64"),
        (["--engine", "no-such-commit"], "git rev-parse"),
    ],
)
def test_bad_build_fails_in_one_line_and_keeps_the_old_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "img"
    before = existing_image(out)
    assert cli.main(["build", "--out", str(out), "--cache", str(tmp_path / "c"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vmimage: build failed: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no .work- dir either


def test_unknown_format_and_compression_are_refused() -> None:
    with pytest.raises(SystemExit):
        cli.parse_args(["build", "--out", "x", "--format", "squashfs"])
    with pytest.raises(ValueError, match="use gzip, zstd or none"):
        build.compress(b"x", "brotli")


def test_recipes_are_found_by_name() -> None:
    assert get_recipe("debian").name == "debian"
    with pytest.raises(ValueError, match="choose one of"):
        get_recipe("")


def test_engine_bundle_carries_the_packages_it_imports() -> None:
    repo = Path(__file__).resolve().parents[3]
    files, version = enginesrc.engine_files(repo, "worktree")
    assert version == "worktree"
    tops = {path.split("/")[0] for path in files}
    assert "engine" in tops and "patternmatcher" in tops
    assert not any("__pycache__" in p for p in files)
    assert enginesrc.digest(files) == enginesrc.digest(dict(reversed(list(files.items()))))
