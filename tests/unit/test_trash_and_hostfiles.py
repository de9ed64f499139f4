"""Trees discarded through the trash vanish at once and are deleted later; host files a
crash lost or emptied are rewritten when the store loads their container."""

from __future__ import annotations

import time
from pathlib import Path

from engine import atomicfile
from engine.containers import hostfiles
from engine.runtime.spec import ContainerSpec


def _wait_gone(path: Path) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not path.exists() or not any(path.iterdir()):
            return True
        time.sleep(0.01)
    return False


def test_discard_tree_moves_at_once_and_deletes_in_background(tmp_path: Path) -> None:
    tree = tmp_path / "c1"
    (tree / "deep" / "er").mkdir(parents=True)
    (tree / "deep" / "er" / "f").write_text("x")
    trash = tmp_path / atomicfile.TRASH
    atomicfile.discard_tree(tree, trash)
    assert not tree.exists()
    assert _wait_gone(trash)


def test_discard_tree_of_a_missing_path_is_a_no_op(tmp_path: Path) -> None:
    atomicfile.discard_tree(tmp_path / "nope", tmp_path / atomicfile.TRASH)
    assert not (tmp_path / "nope").exists()


def test_discard_tree_deletes_in_place_when_the_trash_cannot_be_made(tmp_path: Path) -> None:
    tree = tmp_path / "c2"
    tree.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    atomicfile.discard_tree(tree, blocker / "trash")
    assert not tree.exists()


def test_empty_trash_deletes_what_a_crash_left(tmp_path: Path) -> None:
    trash = tmp_path / atomicfile.TRASH
    (trash / "old.1234" / "upper").mkdir(parents=True)
    (trash / "stray-file").write_text("x")
    atomicfile.empty_trash(trash)
    assert _wait_gone(trash)
    atomicfile.empty_trash(tmp_path / "no-trash")  # nothing there: no error


def _spec(cdir: Path, network_mode: str = "none") -> ContainerSpec:
    host_config = {"ExtraHosts": ["db:10.0.0.5"], "Dns": ["1.1.1.1"]}
    files = hostfiles.write_host_files(cdir, "box", host_config, False)
    return ContainerSpec(
        id="c" * 64,
        lowerdirs=[],
        upperdir="",
        workdir="",
        rootfs="",
        args=["true"],
        env=[],
        hostname="box",
        network_mode=network_mode,
        hosts_path=files["hosts"],
        hostname_path=files["hostname"],
        resolv_conf_path=files["resolv"],
    )


def test_restore_rewrites_only_lost_or_emptied_host_files(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    hc = {"ExtraHosts": ["db:10.0.0.5"], "Dns": ["1.1.1.1"]}
    original = Path(spec.hosts_path).read_text()
    assert hostfiles.restore_host_files(spec, hc) == []
    Path(spec.hosts_path).write_text("")  # emptied by a crash
    Path(spec.hostname_path).unlink()  # lost
    Path(spec.resolv_conf_path).write_text("nameserver 9.9.9.9\n")  # edited: kept
    restored = hostfiles.restore_host_files(spec, hc)
    assert sorted(p.name for p in restored) == ["hostname", "hosts"]
    assert Path(spec.hosts_path).read_text() == original
    assert "10.0.0.5\tdb" in original
    assert Path(spec.hostname_path).read_text() == "box\n"
    assert Path(spec.resolv_conf_path).read_text() == "nameserver 9.9.9.9\n"


def test_restore_leaves_a_removed_container_alone(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "gone")
    for p in (spec.hosts_path, spec.hostname_path, spec.resolv_conf_path):
        Path(p).unlink()
    (tmp_path / "gone").rmdir()
    hostfiles.restore_host_files(spec, {})
    assert not (tmp_path / "gone").exists()
