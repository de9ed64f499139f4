"""Docker JSON progress messages: shapes and the bar format `docker pull` prints."""

from __future__ import annotations

import threading

from engine.images import progress as p


def test_human_size_matches_docker_units() -> None:
    assert p.human_size(0) == "0B"
    assert p.human_size(999) == "999B"
    assert p.human_size(1000) == "1kB"
    assert p.human_size(1234567) == "1.235MB"
    assert p.human_size(2_224_000) == "2.224MB"
    assert p.human_size(5 * 10**9) == "5GB"


def test_progress_bar_mid_and_full() -> None:
    mid = p.progress_bar(1_049_000, 9_741_000)
    assert mid == "[=====>" + " " * 45 + "]  1.049MB/9.741MB"
    full = p.progress_bar(2_224_000, 2_224_000)
    assert full == "[" + "=" * 50 + ">]  2.224MB/2.224MB"
    assert p.progress_bar(0, 0) == ""
    assert p.progress_bar(5000, 0) == "     5kB"


def test_message_shapes() -> None:
    assert p.status("Pulling from library/busybox", "latest") == {
        "status": "Pulling from library/busybox",
        "id": "latest",
    }
    assert p.status("Digest: sha256:ab") == {"status": "Digest: sha256:ab"}
    assert p.layer("Pull complete", "abc") == {
        "status": "Pull complete",
        "progressDetail": {},
        "id": "abc",
    }
    d = p.downloading("abc", 10, 100)
    assert d["status"] == "Downloading"
    assert d["progressDetail"] == {"current": 10, "total": 100}
    assert d["progress"].startswith("[=====>")


def test_rate_limited_passes_first_and_last() -> None:
    seen: list[dict[str, object]] = []
    r = p.RateLimited(seen.append, "abc", interval=3600)
    for n in range(1, 101):
        r(n, 100)
    assert [m["progressDetail"] for m in seen] == [
        {"current": 1, "total": 100},
        {"current": 100, "total": 100},
    ]


def test_thread_safe_serializes_calls() -> None:
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def slow(_: dict[str, object]) -> None:
        nonlocal inside, overlaps
        with guard:
            inside += 1
            overlaps += inside > 1
        for _ in range(1000):
            pass
        with guard:
            inside -= 1

    emit = p.thread_safe(slow)
    threads = [threading.Thread(target=lambda: [emit({}) for _ in range(200)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == 0
