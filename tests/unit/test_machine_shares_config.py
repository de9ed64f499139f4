"""Shared folder config: defaults, validation with clear errors, add/rm leaving the config
intact on a bad request, and what reaches QEMU and the seed per mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from machine import config, qemu_argv, seed, shares
from machine.backend import ShareSpec
from machine.errors import ConfigError


def machine() -> config.MachineConfig:
    return config.MachineConfig(name="m", ssh_port=40000, image=config.Image(arch="x86_64"))


def test_guest_path_defaults_to_the_host_path_so_v_pwd_pwd_works(tmp_path: Path) -> None:
    cfg = shares.add(machine(), str(tmp_path), mode="9p")
    share = cfg.shares[0]
    assert share.guest_path == ""
    assert shares.rows(cfg)[0][2] == str(tmp_path)
    doc = config.to_dict(cfg)
    assert config.from_dict(doc).shares == cfg.shares


def test_yaml_share_needs_only_a_host_path() -> None:
    doc = {"name": "m", "ssh_port": 40000, "shares": [{"host_path": "/home/me/src"}]}
    cfg = config.from_dict(doc)
    assert cfg.shares[0].tag == "share0"
    assert cfg.shares[0].mode == "virtiofs"


@pytest.mark.parametrize(
    ("share", "words"),
    [
        ({"host_path": "rel/dir"}, "not absolute"),
        ({"host_path": "/h", "guest_path": "rel"}, "not absolute"),
        ({"host_path": "/h", "guest_path": "/"}, "would hide"),
        ({"host_path": "/h", "guest_path": "/var"}, "/var/lib/dockyard"),
        ({"host_path": "/h", "guest_path": "/proc/x"}, "/proc"),
        ({"host_path": "/h", "guest_path": "/tmp"}, "/tmp"),
        ({"host_path": "/h", "mode": "nfs"}, "not one of"),
        ({"host_path": "/h", "mode": "sync", "readonly": True}, "read-only sync"),
        ({"host_path": "/h", "mode": "9p", "ignore": ["x"]}, "sync shares only"),
        ({"host_path": "/h", "mode": "sync", "ignore": [""]}, "non-empty"),
        ({"host_path": "/h", "mode": "sync", "ignore": "x"}, "list of patterns"),
        ({"host_path": "/h", "readonly": "yes"}, "true or false"),
        ({"host_path": "/h", "colour": "red"}, "mapping of"),
    ],
)
def test_bad_shares_name_the_field_and_say_what_to_write(
    share: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        config.from_dict({"name": "m", "ssh_port": 40000, "shares": [share]})
    assert words in str(e.value)


def test_below_tmp_is_fine() -> None:
    doc = {"name": "m", "ssh_port": 40000, "shares": [{"host_path": "/tmp/pytest-1/x"}]}
    assert config.from_dict(doc).shares[0].host_path == "/tmp/pytest-1/x"


def test_overlapping_guest_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    cfg = shares.add(machine(), str(tmp_path), mode="9p")
    with pytest.raises(ConfigError, match="overlap"):
        shares.add(cfg, str(tmp_path / "a"))
    assert len(cfg.shares) == 1  # the config given is never changed


def test_add_refuses_a_missing_folder_and_rm_an_unknown_share(tmp_path: Path) -> None:
    cfg = machine()
    with pytest.raises(ConfigError, match="not a directory"):
        shares.add(cfg, str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no share"):
        shares.remove(cfg, "/nowhere")
    assert cfg.shares == []


def test_rm_by_tag_or_path_and_tags_are_reused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg = shares.add(machine(), str(tmp_path / "a"))
    cfg = shares.add(cfg, str(tmp_path / "b"), mode="sync", ignore=["node_modules/"])
    assert [s.tag for s in cfg.shares] == ["share0", "share1"]
    assert shares.remove(cfg, str(tmp_path / "b")).shares == cfg.shares[:1]
    left = shares.remove(cfg, "share0")
    assert [s.tag for s in left.shares] == ["share1"]
    assert shares.add(left, str(tmp_path / "a")).shares[1].tag == "share0"


def test_spec_carries_mode_and_ignore_and_defaults_the_guest_path() -> None:
    cfg = machine()
    cfg.shares = [config.Share("share0", "/h/src", mode="sync", ignore=["*.o"])]
    spec = config.to_spec(config.paths.Host.current(), cfg).shares[0]
    assert spec == ShareSpec(Path("/h/src"), "/h/src", "sync", False, ("*.o",))


def test_sync_shares_have_no_qemu_device_nor_mount_in_the_seed() -> None:
    specs = (
        ShareSpec(Path("/a"), "/a", "9p"),
        ShareSpec(Path("/b"), "/b", "sync"),
        ShareSpec(Path("/c"), "/c", "9p", readonly=True),
    )
    cfg = qemu_argv.VmConfig(
        "linux", "x86_64", "tcg", 1, 512, Path("k"), Path("i"), "", Path("d"), Path("/m/s"),
        Path("l"), Path("q"), Path("p"), 22, shares=specs,
    )  # fmt: skip
    args = " ".join(qemu_argv.share_args(cfg))
    assert "mount_tag=share0" in args and "mount_tag=share2" in args
    assert "/b" not in args and "share1" not in args
    doc = seed.build("h", ["k"], "key", [], specs, 0)
    assert [(s["tag"], s["guest_path"]) for s in doc["shares"]] == [
        ("share0", "/a"),
        ("share2", "/c"),
    ]


def test_cli_share_add_ls_rm_and_a_bad_add_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import cli

    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    assert cli.main(["machine", "create", "m", "--backend", "native"]) == 0
    assert cli.main(["machine", "share", "add", str(src), "-m", "m", "--mode", "9p"]) == 0
    before = (tmp_path / "home").rglob("machine.yaml").__next__().read_text()
    assert cli.main(["machine", "share", "add", str(src / "nope"), "-m", "m"]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert (
        cli.main(["machine", "share", "add", str(src), "-m", "m", "--mode", "sync", "--readonly"])
        == 1
    )
    assert (tmp_path / "home").rglob("machine.yaml").__next__().read_text() == before
    capsys.readouterr()
    assert cli.main(["machine", "share", "ls", "-m", "m"]) == 0
    assert f"share0     9p        {src}" in capsys.readouterr().out
    assert cli.main(["machine", "share", "rm", str(src), "-m", "m"]) == 0
    assert cli.main(["machine", "share", "rm", str(src), "-m", "m"]) == 1
    assert "no share" in capsys.readouterr().err
