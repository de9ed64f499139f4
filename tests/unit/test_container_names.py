"""Generated names stay unique when plain ones run out; parallel creates never share one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.containers import names
from engine.containers.store import ContainerStore
from engine.errors import Conflict, InvalidParameter


def test_generated_names_never_repeat_past_the_plain_ones() -> None:
    taken: set[str] = set()
    for _ in range(6000):
        name = names.generate(taken)
        assert name not in taken
        taken.add(name)


@pytest.mark.parametrize("bad", ["", "-x", "a b", "x/y", "é"])
def test_invalid_names_are_400(bad: str) -> None:
    with pytest.raises(InvalidParameter):
        names.validate(bad)


def test_a_reserved_name_is_not_handed_out_twice(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    with store.reserving("web"), pytest.raises(Conflict), store.reserving("web"):
        pass
    with store.reserving("web") as again:  # released after the first create ended
        assert again == "web"


def test_parallel_generated_reservations_are_distinct(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    got: list[str] = []
    barrier = threading.Barrier(8)
    hold = threading.Event()

    def create() -> None:
        barrier.wait()
        with store.reserving("") as name:
            got.append(name)
            hold.wait(5)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    while len(got) < 8:
        threading.Event().wait(0.01)
    hold.set()
    for t in threads:
        t.join()
    assert len(set(got)) == 8
