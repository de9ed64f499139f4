"""The list pages' models without an engine: rows built from API answers, the keyed table's
update by difference (counted in model signals), and a pull's per-layer progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex

from app.gui.models.images import NONE, image_rows, split_repo_tag
from app.gui.models.networks import create_body, network_rows
from app.gui.models.pull import DOWNLOAD_SHARE, FRACTION_ROLE, PullModel
from app.gui.models.table import SORT_ROLE, Column, KeyedTableModel
from app.gui.models.volumes import volume_rows


@dataclass(frozen=True)
class Item:
    key: str
    value: int


class Signals:
    """Counts a model's row and data signals."""

    def __init__(self, model: KeyedTableModel) -> None:
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.changed: list[int] = []
        self.resets = 0
        model.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))
        model.dataChanged.connect(lambda top, _bottom, _roles=(): self.changed.append(top.row()))
        model.modelReset.connect(lambda: setattr(self, "resets", self.resets + 1))


def items(*pairs: tuple[str, int]) -> list[Item]:
    return [Item(k, v) for k, v in pairs]


def test_keyed_model_updates_by_difference() -> None:
    model = KeyedTableModel(
        [Column("Key", lambda r: r.key), Column("Value", str, sort=lambda r: r.value)],
        key=lambda r: r.key,
    )
    signals = Signals(model)
    model.replace(items(*((f"k{i}", i) for i in range(1000))))
    assert signals.inserted == [(0, 999)]
    # drop two runs, change one row, keep the rest, add two: 2 removals, 1 change, 1 insert
    kept = [(f"k{i}", i) for i in range(1000) if not (10 <= i < 20 or 500 <= i < 505)]
    kept[0] = ("k0", -1)
    model.replace(items(*kept, ("new1", 1), ("new2", 2)))
    assert signals.removed == [(500, 504), (10, 19)]
    assert signals.changed == [0]
    assert signals.inserted[1:] == [(985, 986)]
    assert signals.resets == 0
    assert model.rowCount() == 987
    assert model.row(0) == Item("k0", -1)
    assert model.index(986, 0).data() == "new2"
    assert model.index(0, 1).data(SORT_ROLE) == -1
    model.replace(items(*kept, ("new1", 1), ("new2", 2)))  # no difference: no signal
    assert (len(signals.removed), len(signals.changed), len(signals.inserted)) == (2, 1, 2)
    assert model.find("new1") == 985 and model.find("absent") == -1


def test_image_rows_one_per_tag_and_untagged() -> None:
    docs: list[dict[str, Any]] = [
        {"Id": "sha256:" + "a" * 64, "RepoTags": ["app:v1", "registry:5000/app:v2"], "Size": 10,
         "Created": 1_700_000_000},
        {"Id": "sha256:" + "b" * 64, "RepoTags": ["<none>:<none>"], "Size": 5, "Created": 0},
        {"Id": "sha256:" + "c" * 64, "RepoTags": None},
    ]  # fmt: skip
    rows = image_rows(docs)
    assert [(r.repository, r.tag, r.ref) for r in rows] == [
        ("app", "v1", "app:v1"),
        ("registry:5000/app", "v2", "registry:5000/app:v2"),
        (NONE, NONE, "sha256:" + "b" * 64),
        (NONE, NONE, "sha256:" + "c" * 64),
    ]
    assert rows[2].name == "b" * 12
    assert len({r.key for r in rows}) == 4
    assert split_repo_tag("registry:5000/app") == ("registry:5000/app", NONE)


def test_volume_rows_join_users_and_sizes() -> None:
    volumes = {
        "Volumes": [
            {"Name": "data", "Driver": "local", "Mountpoint": "/v/data"},
            {"Name": "f" * 64, "Driver": "local", "Mountpoint": "/v/anon"},
        ]
    }
    containers = [
        {"Names": ["/web"], "Mounts": [{"Type": "volume", "Name": "data"}]},
        {
            "Names": ["/api"],
            "Mounts": [{"Type": "volume", "Name": "data"}, {"Type": "bind", "Source": "/x"}],
        },
    ]
    df = {"Volumes": [{"Name": "data", "UsageData": {"Size": 2048, "RefCount": 2}}]}
    rows = volume_rows(volumes, containers, df)
    assert [(r.name, r.users, r.size) for r in rows] == [
        ("data", ("api", "web"), 2048),
        ("f" * 64, (), -1),
    ]
    assert rows[1].short_name == "f" * 12
    assert volume_rows(volumes, [], None)[0].size == -1  # no df: sizes unknown, list intact


def test_network_rows_count_members_and_built_ins() -> None:
    networks = [
        {"Name": "bridge", "Id": "1" * 64, "Driver": "bridge",
         "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}},
        {"Name": "backend", "Id": "2" * 64, "Driver": "bridge", "Internal": True,
         "IPAM": {"Config": []}},
    ]  # fmt: skip
    containers = [
        {"Names": ["/a"], "NetworkSettings": {"Networks": {"backend": {}, "bridge": {}}}},
        {"Names": ["/b"], "NetworkSettings": {"Networks": {"backend": {}}}},
    ]
    bridge, backend = network_rows(networks, containers)
    assert bridge.built_in and bridge.subnets == ("172.17.0.0/16",) and bridge.containers == ("a",)
    assert not backend.built_in and backend.internal and backend.containers == ("a", "b")


@pytest.mark.parametrize(
    ("name", "subnet", "error"),
    [
        ("", "", "Give the network a name"),
        ("-x", "", "not a valid name"),
        ("none", "", "built-in"),
        ("ok", "10.0.0.0/33", "not a subnet"),
        ("ok", "10.0.0.5/24", "host bits zero"),
    ],
)
def test_create_body_rejects_bad_input(name: str, subnet: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        create_body(name, subnet, False)


def test_pull_model_layers_move_forward_to_done() -> None:
    model = PullModel()
    fractions: list[float] = []
    messages: list[dict[str, Any]] = [
        {"status": "Pulling from app", "id": "latest"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "l1"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "l2"},
        {"status": "Downloading", "progressDetail": {"current": 50, "total": 100}, "id": "l1"},
        {"status": "Download complete", "progressDetail": {}, "id": "l1"},
        {"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "l1"},
        {"status": "Extracting", "progressDetail": {"current": 50, "total": 100}, "id": "l1"},
        {"status": "Pull complete", "progressDetail": {}, "id": "l1"},
        {"status": "Already exists", "progressDetail": {}, "id": "l2"},
        {"status": "Digest: sha256:abc"},
        {"status": "Status: Downloaded newer image for app:latest"},
    ]
    for message in messages:
        model.apply(message)
        fractions.append(model.overall())
    assert model.rowCount() == 2
    assert fractions == sorted(fractions)  # never backwards, even for a retried download
    assert fractions[3] == pytest.approx(DOWNLOAD_SHARE * 0.5 / 2)
    assert fractions[6] == pytest.approx((DOWNLOAD_SHARE + (1 - DOWNLOAD_SHARE) * 0.5) / 2)
    assert fractions[-1] == 1.0
    assert model.index(0, 2, QModelIndex()).data(FRACTION_ROLE) == 1.0
    assert model.status_lines == [
        "latest: Pulling from app",
        "Digest: sha256:abc",
        "Status: Downloaded newer image for app:latest",
    ]
