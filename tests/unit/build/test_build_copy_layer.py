"""COPY/ADD layers written straight from the sources: names, parents, owners and modes.

The layer is a tar whose entries are read in place (nothing is staged), so
these tests read the tar the step would commit and check what the image
would get: the classic builder's destination rules, directories the copy
creates (and the ones the image has, left out), --chown/--chmod in the
headers with the sources untouched on disk, and later sources replacing
earlier ones.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from engine.build import copying, layerdiff


def files(root: Path, spec: dict[str, str]) -> Path:
    for rel, text in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def layer(
    ctx: Path,
    raws: list[str],
    dest: str,
    *,
    image: Path | None = None,
    chown: tuple[int, int] | None = None,
    chmod: int | None = None,
    workdir: str = "/",
    verb: str = "COPY",
) -> dict[str, tarfile.TarInfo]:
    sources = copying.context_sources(ctx, raws, verb, verb == "ADD")
    plan = copying.CopyPlan(sources, dest, workdir, chown, chmod, verb)
    scratch = ctx.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    layers = [str(image)] if image else []
    entries = copying.layer_entries(plan, layers, scratch)
    buf = io.BytesIO()
    layerdiff.write_entries(entries, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    return {m.name: m for m in members}


def test_a_directory_source_copies_its_contents_and_creates_missing_parents(
    tmp_path: Path,
) -> None:
    ctx = files(tmp_path / "ctx", {"src/a.txt": "a", "src/sub/b.txt": "bb"})
    image = tmp_path / "image"
    (image / "opt").mkdir(parents=True)
    got = layer(ctx, ["src"], "/opt/app/")
    assert sorted(got) == ["opt", "opt/app", "opt/app/a.txt", "opt/app/sub", "opt/app/sub/b.txt"]
    got = layer(ctx, ["src"], "/opt/app/", image=image)
    assert "opt" not in got  # the image has it: its mode and owner stay the image's
    assert got["opt/app"].isdir() and got["opt/app"].mode == 0o755
    assert got["opt/app/sub/b.txt"].size == 2


def test_file_destinations_follow_the_classic_rules(tmp_path: Path) -> None:
    ctx = files(tmp_path / "ctx", {"a.txt": "a", "b.txt": "b"})
    image = tmp_path / "image"
    (image / "etc").mkdir(parents=True)
    assert "renamed" in layer(ctx, ["a.txt"], "/renamed")
    assert "dir/a.txt" in layer(ctx, ["a.txt"], "/dir/")
    assert "etc/a.txt" in layer(ctx, ["a.txt"], "/etc", image=image)  # a directory there
    assert "app/rel/a.txt" in layer(ctx, ["a.txt"], "rel/", workdir="/app")
    got = layer(ctx, ["*.txt"], "/many/")
    assert {"many/a.txt", "many/b.txt"} <= set(got)


def test_context_files_belong_to_root_and_chown_chmod_go_in_the_headers(
    tmp_path: Path,
) -> None:
    ctx = files(tmp_path / "ctx", {"d/run.sh": "#!/bin/sh\n"})
    script = ctx / "d" / "run.sh"
    os.chmod(script, 0o700)
    (ctx / "d" / "link").symlink_to("run.sh")
    before = os.lstat(script)
    got = layer(ctx, ["d"], "/x/")
    assert {(m.uid, m.gid) for m in got.values()} == {(0, 0)}
    assert got["x/run.sh"].mode == 0o700
    got = layer(ctx, ["d"], "/x/", chown=(1000, 50), chmod=0o751)
    assert {(m.uid, m.gid) for m in got.values()} == {(1000, 50)}
    assert got["x/run.sh"].mode == 0o751
    assert got["x"].mode == 0o755  # a created parent: not --chmod'ed
    assert got["x/link"].issym() and got["x/link"].linkname == "run.sh"
    after = os.lstat(script)
    assert (after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
    )


def test_later_sources_replace_earlier_ones(tmp_path: Path) -> None:
    ctx = files(
        tmp_path / "ctx",
        {"one/same/old.txt": "old", "one/keep.txt": "k", "two/same": "now a file"},
    )
    got = layer(ctx, ["one", "two"], "/t/")
    assert got["t/same"].isfile() and "t/same/old.txt" not in got
    assert "t/keep.txt" in got
    ctx2 = files(tmp_path / "ctx2", {"one/d/a": "a", "two/d/b": "b"})
    got = layer(ctx2, ["one", "two"], "/m/")
    assert {"m/d/a", "m/d/b"} <= set(got)  # two directories merge


def test_hardlinks_in_the_context_stay_hardlinks(tmp_path: Path) -> None:
    ctx = files(tmp_path / "ctx", {"h/a": "same bytes"})
    os.link(ctx / "h" / "a", ctx / "h" / "b")
    got = layer(ctx, ["h"], "/h/")
    assert got["h/a"].isfile() and got["h/b"].islnk() and got["h/b"].linkname == "h/a"


def test_add_of_a_local_archive_unpacks_it_with_its_owners(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with tarfile.open(ctx / "bundle.tar", "w") as tar:
        info = tarfile.TarInfo("pkg/file.txt")
        info.size, info.uid, info.gid, info.mode = 3, 7, 8, 0o640
        tar.addfile(info, io.BytesIO(b"abc"))
    got = layer(ctx, ["bundle.tar"], "/srv/", verb="ADD")
    assert got["srv/pkg/file.txt"].size == 3
    if os.geteuid() == 0:  # only root could give the unpacked files their owners
        assert (got["srv/pkg/file.txt"].uid, got["srv/pkg/file.txt"].gid) == (7, 8)
