"""Machine config: defaults, sizes, validation with clear errors, the YAML round trip."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
import yaml

from machine import config, paths
from machine.errors import ConfigError, MachineNotFound


@pytest.fixture
def host(tmp_path: Path) -> paths.Host:
    return paths.Host("linux", PurePosixPath("/nonexistent"), {"DOCKYARD_HOME": str(tmp_path)})


def test_defaults_are_half_the_cpus_and_a_quarter_of_ram_up_to_4g() -> None:
    assert config.default_cpus(8) == 4
    assert config.default_cpus(1) == 1
    assert config.default_memory_mib(8192) == 2048
    assert config.default_memory_mib(65536) == 4096
    assert config.default_memory_mib(512) == 256


@pytest.mark.parametrize(
    ("text", "mib"),
    [("4GiB", 4096), ("4g", 4096), ("4G", 4096), ("512MiB", 512), ("512mb", 512), (2048, 2048)],
)
def test_memory_sizes(text: str | int, mib: int) -> None:
    assert config.memory_mib(text) == mib


@pytest.mark.parametrize("bad", ["four", "4.5G", "-1G", "4X", "", "1k"])
def test_bad_memory_sizes_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.memory_mib(bad)
    assert "memory" in str(e.value)
    assert e.value.hint


def test_disk_size_bare_number_is_gib() -> None:
    assert config.disk_gib("30") == 30
    assert config.disk_gib("1TiB") == 1024
    with pytest.raises(ConfigError, match="whole number of GiB"):
        config.disk_gib("1536MiB")


def test_new_fills_host_defaults(host: paths.Host) -> None:
    cfg = config.new("default", backend="native")
    assert cfg.cpus == config.default_cpus(config.host_cpus())
    assert cfg.memory_mib == config.default_memory_mib(config.host_memory_mib())
    assert cfg.image.arch == config.host_arch()
    assert 1024 <= cfg.ssh_port <= 65535


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"backend": "vbox"}, "backend"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": 100000}, "cpus"),
        ({"memory": "16MiB"}, "memory"),
        ({"memory": "100TiB"}, "memory"),
        ({"disk": "0"}, "disk"),
        ({"ssh_port": 22}, "ssh_port"),
        ({"image": config.Image(recipe="arch")}, "image.recipe"),
        ({"image": config.Image(arch="mips")}, "image.arch"),
    ],
)
def test_new_refuses_bad_values_naming_the_field(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config.new("m", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "Default", "-x", "a/b", "x" * 33, "a b", ".."])
def test_bad_names(name: str) -> None:
    with pytest.raises(ConfigError, match="name"):
        config.check_name(name)


def test_save_load_round_trip(host: paths.Host) -> None:
    cfg = config.new("m1", backend="native", cpus=1, memory="1GiB", disk="5", ssh_port=2222)
    cfg.shares.append(config.Share("share0", "/home/x", "/home/x", "9p", True))
    cfg.engine_args = ["--insecure-registry", "10.0.2.2:5000"]
    path = config.save(host, cfg)
    assert path == Path(paths.data_dir(host)) / "m1" / "machine.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["memory"] == "1GiB" and doc["disk"] == "5GiB"
    assert config.load(host, "m1") == cfg
    assert config.names(host) == ["m1"]
    assert config.taken_ports(host) == {2222}


def test_load_missing_machine(host: paths.Host) -> None:
    with pytest.raises(MachineNotFound) as e:
        config.load(host, "nope")
    assert "dockyard machine create nope" in e.value.hint


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("cpus: many\n", "cpus"),
        ("memory: lots\n", "memory"),
        ("colour: blue\n", "unknown fields: colour"),
        ("name: other\n", "names machine 'other'"),
        ("image: [1]\n", "image"),
        ("shares:\n- {tag: a, host_path: /x, guest_path: rel}\n", "not absolute"),
        ("shares:\n- {tag: a, host_path: /x, guest_path: /x, mode: nfs}\n", "shares.mode"),
        ("- just\n- a list\n", "mapping"),
        ("cpus: [\n", "not valid YAML"),
    ],
)
def test_hand_edits_gone_wrong_name_the_file_and_field(
    host: paths.Host, edit: str, words: str
) -> None:
    path = config.save(host, config.new("m2", ssh_port=2200))
    original = path.read_text()
    text = edit if edit.startswith(("- ", "cpus: [")) else original + edit
    if edit.startswith(("cpus:", "memory:", "name:", "image:")):
        key = edit.split(":")[0]
        lines = [ln for ln in original.splitlines() if not ln.startswith(key + ":")]
        if key == "image":
            lines = [ln for ln in lines if not ln.startswith("  ")]
        text = "\n".join(lines) + "\n" + edit
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as e:
        config.load(host, "m2")
    assert "machine.yaml" in str(e.value)


def test_to_spec_carries_sizes_and_default_image_dir(host: paths.Host) -> None:
    cfg = config.new("m3", cpus=1, memory="768MiB", disk=3, ssh_port=2201)
    spec = config.to_spec(host, cfg)
    assert (spec.cpus, spec.memory_mb, spec.disk_gb, spec.ssh_port) == (1, 768, 3, 2201)
    assert spec.directory == Path(paths.data_dir(host)) / "m3"
    assert spec.image_dir == config.REPO / ".cache" / "vmimage" / f"debian-{cfg.image.arch}"
