"""Acceptance: container features driven through the real `docker` CLI.

One engine per module (`shared_engine`); every test names its containers uniquely and
removes them in `finally`, so tests stay independent. Prune tests, which act on the
whole engine, use a fresh `engine` of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pathmodule
from tests.engine_process import EngineProcess, wait_for
from tests.ptyio import pty_session

CAP_CHOWN = 0
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    for name in ("busybox", "multilayer"):
        shared_engine.docker("pull", f"{registry_with_images}/{name}")
        shared_engine.docker("tag", f"{registry_with_images}/{name}", name)
    yield shared_engine


def rm(eng: EngineProcess, *names: str) -> None:
    eng.docker("rm", "-f", "-v", *names, check=False)


def inspect(eng: EngineProcess, name: str) -> dict[str, object]:
    data = json.loads(eng.docker("inspect", name).stdout)
    assert isinstance(data, list) and len(data) == 1
    result: dict[str, object] = data[0]
    return result


def fmt(eng: EngineProcess, template: str, name: str) -> str:
    return eng.docker("inspect", "-f", template, name).stdout.strip()


def volume_names(eng: EngineProcess) -> list[str]:
    return eng.docker("volume", "ls", "-q").stdout.split()


def container_names(eng: EngineProcess) -> list[str]:
    """Every container's name, stopped ones too."""
    return eng.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def cap_eff(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no CapEff in {status_text!r}")


def has_cap(mask: int, bit: int) -> bool:
    return bool(mask >> bit & 1)


# -- lifecycle verbs ---------------------------------------------------------------------


def test_top_rename_pause_unpause(eng: EngineProcess, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = "i=0; while true; do i=$((i+1)); echo $i > /out/count; sleep 0.05; done"
    eng.docker(
        "run", "-d", "--name", "lc1", "-v", f"{tmp_path}:/out", "busybox", "sh", "-c", script
    )
    try:
        top = eng.docker("top", "lc1").stdout
        assert "PID" in top.splitlines()[0]
        assert "sh -c" in top
        eng.docker("rename", "lc1", "lc1-renamed")
        names = eng.docker("ps", "--format", "{{.Names}}").stdout.split()
        assert "lc1-renamed" in names and "lc1" not in names

        def value() -> int:
            text = counter.read_text().strip() if counter.exists() else ""
            return int(text) if text.isdigit() else 0

        assert wait_for(lambda: value() > 2)
        eng.docker("pause", "lc1-renamed")
        assert fmt(eng, "{{.State.Status}} {{.State.Paused}}", "lc1-renamed") == "paused true"
        assert "Paused" in eng.docker("ps", "--filter", "name=lc1-renamed").stdout
        frozen = value()
        time.sleep(0.5)
        assert value() == frozen  # nothing advanced while frozen
        eng.docker("unpause", "lc1-renamed")
        assert wait_for(lambda: value() > frozen + 2)
        assert fmt(eng, "{{.State.Status}}", "lc1-renamed") == "running"
    finally:
        rm(eng, "lc1", "lc1-renamed")


def test_restart_gives_a_new_process(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "rs1", "busybox", "sleep", "1000")
    try:
        before = fmt(eng, "{{.State.Pid}} {{.State.StartedAt}}", "rs1").split()
        eng.docker("restart", "-t", "1", "rs1")
        after = fmt(eng, "{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}", "rs1").split()
        assert after[0] == "running"
        assert after[1] != before[0] and after[2] != before[1]
    finally:
        rm(eng, "rs1")


def test_kill_with_a_signal_and_wait(eng: EngineProcess, tmp_path: Path) -> None:
    script = (
        "trap 'echo got-usr1 >> /out/log' USR1; trap 'exit 5' TERM; "
        "echo ready > /out/log; while true; do sleep 0.05; done"
    )
    eng.docker(
        "run", "-d", "--name", "ks1", "-v", f"{tmp_path}:/out", "busybox", "sh", "-c", script
    )
    try:
        log = tmp_path / "log"
        assert wait_for(lambda: log.exists() and "ready" in log.read_text())
        eng.docker("kill", "-s", "USR1", "ks1")
        assert wait_for(lambda: "got-usr1" in log.read_text())
        assert fmt(eng, "{{.State.Status}}", "ks1") == "running"
        eng.docker("kill", "--signal", "SIGTERM", "ks1")
        assert eng.docker("wait", "ks1").stdout.strip() == "5"
        assert fmt(eng, "{{.State.Status}} {{.State.ExitCode}}", "ks1") == "exited 5"
        bad = eng.docker("kill", "-s", "NOSUCHSIG", "ks1", check=False)
        assert bad.returncode != 0
    finally:
        rm(eng, "ks1")


def test_stop_timeout_from_create_is_the_default_grace(eng: EngineProcess) -> None:
    script = "trap '' TERM; echo up; while true; do sleep 0.05; done"
    eng.docker("run", "-d", "--name", "sto1", "--stop-timeout", "1", "busybox", "sh", "-c", script)
    try:
        assert fmt(eng, "{{.Config.StopTimeout}}", "sto1") == "1"
        assert wait_for(lambda: "up" in eng.docker("logs", "sto1").stdout)
        began = time.monotonic()
        eng.docker("stop", "sto1")
        assert time.monotonic() - began < 8  # 1s from --stop-timeout, not the default 10s
        assert fmt(eng, "{{.State.ExitCode}}", "sto1") == "137"
    finally:
        rm(eng, "sto1")


def test_wait_returns_the_exit_code(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "wt1", "busybox", "sh", "-c", "sleep 0.3; exit 4")
    try:
        assert eng.docker("wait", "wt1").stdout.strip() == "4"
    finally:
        rm(eng, "wt1")


def test_stop_timeout_kills_a_process_ignoring_sigterm(eng: EngineProcess) -> None:
    script = "trap '' TERM; echo up; while true; do sleep 0.05; done"
    eng.docker("run", "-d", "--name", "st1", "busybox", "sh", "-c", script)
    try:
        assert wait_for(lambda: "up" in eng.docker("logs", "st1").stdout)
        began = time.monotonic()
        eng.docker("stop", "-t", "1", "st1")
        waited = time.monotonic() - began
        assert fmt(eng, "{{.State.Status}} {{.State.ExitCode}}", "st1") == "exited 137"
        assert waited >= 0.9  # the grace period was honoured before SIGKILL
    finally:
        rm(eng, "st1")


def _stop_signal_image(eng: EngineProcess, tmp_path: Path) -> str:
    """An image whose config says StopSignal SIGUSR1, loaded from an OCI layout."""
    import tarfile

    script = pathmodule.REPO / "scripts" / "build_test_images.py"
    builder = pathmodule.load("build_test_images", script)
    layout = builder.Layout()
    config = {**builder.busybox_config(), "StopSignal": "SIGUSR1"}
    top = builder.add_image(layout, [builder.busybox_layer(builder.find_busybox())], config)
    named = {**top, "annotations": {"io.containerd.image.name": "stopsig:latest"}}
    layout.write(tmp_path / "layout", named)
    archive = tmp_path / "stopsig.tar"
    with tarfile.open(archive, "w") as tar:
        for item in sorted((tmp_path / "layout").rglob("*")):
            tar.add(item, arcname=str(item.relative_to(tmp_path / "layout")), recursive=False)
    eng.docker("load", "-i", str(archive))
    return "stopsig:latest"


def test_image_stop_signal_is_honoured(eng: EngineProcess, tmp_path: Path) -> None:
    image = _stop_signal_image(eng, tmp_path)
    assert fmt(eng, "{{.Config.StopSignal}}", image) == "SIGUSR1"
    script = "trap 'exit 42' USR1; trap 'exit 15' TERM; while true; do sleep 0.05; done"
    eng.docker("run", "-d", "--name", "ss1", image, "sh", "-c", script)
    try:
        assert fmt(eng, "{{.Config.StopSignal}}", "ss1") == "SIGUSR1"
        eng.docker("stop", "ss1")
        assert fmt(eng, "{{.State.ExitCode}}", "ss1") == "42"
        # --stop-signal on run overrides the image's
        eng.docker("run", "-d", "--name", "ss2", "--stop-signal", "TERM", image, "sh", "-c", script)
        eng.docker("stop", "ss2")
        assert fmt(eng, "{{.State.ExitCode}}", "ss2") == "15"
    finally:
        rm(eng, "ss1", "ss2")
        eng.docker("rmi", image, check=False)


def test_init_reaps_zombies_and_forwards_signals(eng: EngineProcess) -> None:
    out = eng.docker(
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "(sleep 0.1 &); sleep 0.6; echo self=$$; ps -o pid,stat,args",
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("self=") and lines[0] != "self=1"  # the command is not PID 1
    rows = [line.split(None, 2) for line in lines[2:]]
    pid1 = [r for r in rows if r[0] == "1"]
    assert pid1 and "sh -c" not in pid1[0][2]
    assert not [r for r in rows if r[1].startswith("Z")], out  # the orphan was reaped
    script = "trap 'exit 3' TERM; while true; do sleep 0.05; done"
    eng.docker("run", "-d", "--init", "--name", "in1", "busybox", "sh", "-c", script)
    try:
        assert wait_for(lambda: "sh -c" in eng.docker("top", "in1").stdout)
        eng.docker("stop", "-t", "30", "in1")
        assert fmt(eng, "{{.State.ExitCode}}", "in1") == "3"  # TERM reached sh through init
        assert fmt(eng, "{{.HostConfig.Init}}", "in1") == "true"
    finally:
        rm(eng, "in1")


def test_rm_force_of_a_running_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "rf1", "busybox", "sleep", "1000")
    eng.docker("rm", "-f", "rf1")
    assert "rf1" not in container_names(eng)


def test_name_and_rename_conflicts(eng: EngineProcess) -> None:
    eng.docker("create", "--name", "nc1", "busybox", "true")
    eng.docker("create", "--name", "nc2", "busybox", "true")
    try:
        dup = eng.docker("run", "--name", "nc1", "busybox", "true", check=False)
        assert dup.returncode != 0 and 'The container name "/nc1" is already in use' in dup.stderr
        clash = eng.docker("rename", "nc1", "nc2", check=False)
        assert clash.returncode != 0 and "already in use" in clash.stderr
        assert "nc1" in container_names(eng)
        bad = eng.docker("rename", "nc1", "bad name!", check=False)
        assert bad.returncode != 0 and "Invalid container name" in bad.stderr
    finally:
        rm(eng, "nc1", "nc2")


# -- security options ----------------------------------------------------------------------


def test_cap_add_and_cap_drop(eng: EngineProcess) -> None:
    default = cap_eff(eng.docker("run", "--rm", "busybox", "cat", "/proc/1/status").stdout)
    assert has_cap(default, CAP_CHOWN) and not has_cap(default, CAP_NET_ADMIN)
    changed = cap_eff(
        eng.docker(
            "run",
            "--rm",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "busybox",
            "cat",
            "/proc/1/status",
        ).stdout
    )
    assert has_cap(changed, CAP_NET_ADMIN) and not has_cap(changed, CAP_CHOWN)
    assert changed == (default | 1 << CAP_NET_ADMIN) & ~(1 << CAP_CHOWN)
    denied = eng.docker(
        "run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1:1", "/tmp", check=False
    )
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr
    bad = eng.docker("run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true", check=False)
    assert bad.returncode != 0 and "NOT_A_CAP" in bad.stderr


def test_privileged_has_all_caps_and_unmasked_proc(eng: EngineProcess) -> None:
    script = "cat /proc/1/status; echo ==; cat /proc/mounts"
    normal = eng.docker("run", "--rm", "busybox", "sh", "-c", script).stdout
    privileged = eng.docker("run", "--rm", "--privileged", "busybox", "sh", "-c", script).stdout
    own = Path("/proc/self/status").read_text()
    bounding = next(int(x.split()[1], 16) for x in own.splitlines() if x.startswith("CapBnd:"))
    assert cap_eff(privileged) == bounding  # everything the engine itself may grant
    assert has_cap(cap_eff(privileged), CAP_SYS_ADMIN)
    assert not has_cap(cap_eff(normal), CAP_SYS_ADMIN)
    normal_mounts = normal.split("==", 1)[1]
    privileged_mounts = privileged.split("==", 1)[1]
    candidates = (" /proc/kcore ", " /proc/keys ", " /proc/timer_list ", " /proc/sched_debug ")
    masked = [p for p in candidates if p in normal_mounts]  # which exist depends on the kernel
    assert masked, "no masked /proc path found in an unprivileged container"
    assert not [p for p in masked if p in privileged_mounts]
    proc_sys = [line for line in privileged_mounts.splitlines() if " /proc/sys " in line]
    assert not proc_sys or " rw," in proc_sys[0]


def test_read_only_rootfs_with_tmpfs_run(eng: EngineProcess) -> None:
    script = (
        "touch /x 2>&1; echo rc=$?; echo hi > /run/f && cat /run/f; "
        "grep ' /run ' /proc/mounts; dd if=/dev/zero of=/run/big bs=1k count=2048 2>&1; echo dd=$?"
    )
    out = eng.docker(
        "run", "--rm", "--read-only", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c", script
    ).stdout
    assert "Read-only file system" in out and "rc=1" in out
    assert "hi\n" in out
    tmpfs_line = next(line for line in out.splitlines() if " /run " in line)
    assert tmpfs_line.startswith("tmpfs /run tmpfs") and "size=1024k" in tmpfs_line
    assert "No space left on device" in out and "dd=1" in out


def test_mount_flag_bind_volume_tmpfs(eng: EngineProcess, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    script = (
        "cat /b/in.txt; touch /b/new 2>&1; echo vol > /v/f; cat /v/f; "
        "grep -E ' /(t|v|b) ' /proc/mounts"
    )
    out = eng.docker(
        "run",
        "--name",
        "mt1",
        "--mount",
        f"type=bind,source={tmp_path},target=/b,readonly",
        "--mount",
        "type=volume,source=mtvol,target=/v",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1048576",
        "busybox",
        "sh",
        "-c",
        script,
    ).stdout
    try:
        assert "from host" in out and "Read-only file system" in out
        assert "vol\n" in out
        assert not (tmp_path / "new").exists()
        t_line = next(line for line in out.splitlines() if " /t " in line)
        assert t_line.startswith("tmpfs /t tmpfs") and "size=1024k" in t_line
        mounts = {m["Destination"]: m for m in inspect(eng, "mt1")["Mounts"]}  # type: ignore[attr-defined]
        assert mounts["/b"]["Type"] == "bind" and mounts["/b"]["RW"] is False
        assert mounts["/b"]["Source"] == str(tmp_path)
        assert mounts["/v"]["Type"] == "volume" and mounts["/v"]["Name"] == "mtvol"
        assert mounts["/t"]["Type"] == "tmpfs"
        missing = eng.docker(
            "run",
            "--rm",
            "--mount",
            f"type=bind,source={tmp_path}/nope,target=/b",
            "busybox",
            "true",
            check=False,
        )
        assert missing.returncode != 0 and "does not exist" in missing.stderr
    finally:
        rm(eng, "mt1")
        eng.docker("volume", "rm", "mtvol", check=False)


# -- volumes and image content ---------------------------------------------------------------


def test_image_volume_gets_an_anonymous_volume_removed_by_rm_v(eng: EngineProcess) -> None:
    eng.docker("run", "--name", "av1", "--entrypoint", "cat", "multilayer", "/data/seed.txt")
    try:
        assert eng.docker("logs", "av1").stdout == "seeded from the image\n"
        mounts = inspect(eng, "av1")["Mounts"]
        assert isinstance(mounts, list) and len(mounts) == 1
        volume = mounts[0]
        assert volume["Type"] == "volume" and volume["Destination"] == "/data"
        assert len(volume["Name"]) == 64
        assert volume["Name"] in volume_names(eng)
        eng.docker("rm", "-v", "av1")
        assert volume["Name"] not in volume_names(eng)
    finally:
        rm(eng, "av1")


def test_new_named_volume_is_populated_from_the_image(eng: EngineProcess) -> None:
    try:
        out = eng.docker(
            "run",
            "--rm",
            "-v",
            "seeded:/data",
            "--entrypoint",
            "sh",
            "multilayer",
            "-c",
            "cat /data/seed.txt; stat -c '%u:%g %a' /data /data/seed.txt; echo mine > /data/mine",
        ).stdout
        assert out.splitlines() == ["seeded from the image", "1000:1000 755", "1000:1000 644"]
        # an existing, non-empty volume is used as it is: no second copy over user data
        again = eng.docker(
            "run", "--rm", "-v", "seeded:/data", "--entrypoint", "ls", "multilayer", "/data"
        ).stdout.split()
        assert sorted(again) == ["mine", "seed.txt"]
        # as Docker: a volume created earlier but still empty is populated on first use
        eng.docker("volume", "create", "made-before")
        first = eng.docker(
            "run", "--rm", "-v", "made-before:/data", "--entrypoint", "ls", "multilayer", "/data"
        )
        assert first.stdout == "seed.txt\n"
        nocopy = eng.docker(
            "run",
            "--rm",
            "-v",
            "bare:/data:nocopy",
            "--entrypoint",
            "ls",
            "multilayer",
            "-A",
            "/data",
        ).stdout
        assert nocopy == ""
        mount_nocopy = eng.docker(
            "run",
            "--rm",
            "--mount",
            "type=volume,source=bare2,target=/data,volume-nocopy",
            "--entrypoint",
            "ls",
            "multilayer",
            "-A",
            "/data",
        ).stdout
        assert mount_nocopy == ""
    finally:
        eng.docker("volume", "rm", "seeded", "bare", "bare2", "made-before", check=False)


def test_copy_up_respects_whiteouts_and_opaque_dirs(eng: EngineProcess) -> None:
    try:
        out = eng.docker(
            "run",
            "--rm",
            "-v",
            "srvvol:/srv",
            "-v",
            "optvol:/opt/data",
            "--entrypoint",
            "sh",
            "multilayer",
            "-c",
            "ls -A /srv; echo ==; ls -A /opt/data; echo ==; cat /srv/links/hard-b; "
            "stat -c %h /srv/links/hard-a; readlink /srv/links/rel",
        ).stdout
        srv, opt, rest = out.split("==\n")
        assert sorted(srv.split()) == ["keep.txt", "links", "xattr.txt"]
        assert opt.split() == ["new.txt"]
        assert rest.splitlines() == ["same inode", "2", "target.txt"]
    finally:
        eng.docker("volume", "rm", "srvvol", "optvol", check=False)


def test_multilayer_image_config_and_layers_inside_a_container(eng: EngineProcess) -> None:
    out = eng.docker("run", "--rm", "multilayer").stdout
    assert out.splitlines() == ["args: hello", "greeting: ahoy", "pwd: /srv", "uid: 1000"]
    assert eng.docker("run", "--rm", "multilayer", "a", "b").stdout.splitlines()[0] == "args: a b"
    script = (
        "ls -A /srv; echo ==; ls -A /opt/data; echo ==; "
        "stat -c %i /srv/links/hard-a; stat -c %i /srv/links/hard-b; "
        "readlink /srv/links/rel; readlink /srv/links/abs; cat /srv/links/up; "
        "stat -c %a /usr/local/bin/suid-root; cat /srv/links/abs"
    )
    out = eng.docker("run", "--rm", "--entrypoint", "sh", "multilayer", "-c", script).stdout
    srv, opt, rest = out.split("==\n")
    assert sorted(srv.split()) == ["keep.txt", "links", "xattr.txt"]  # remove-me.txt whited out
    assert opt.split() == ["new.txt"]  # the opaque dir hides old-*
    lines = rest.splitlines()
    assert lines[0] == lines[1]  # hard-a and hard-b share an inode
    assert lines[2:] == ["target.txt", "/srv/links/target.txt", "kept", "4755", "link target"]


def test_xattr_and_setuid_seen_in_a_running_container(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "xa1", "--entrypoint", "sleep", "multilayer", "1000")
    try:
        pid = int(fmt(eng, "{{.State.Pid}}", "xa1"))
        root = Path(f"/proc/{pid}/root")
        assert os.getxattr(root / "srv/xattr.txt", "user.dockyard") == b"yes"
        assert (root / "usr/local/bin/suid-root").stat().st_mode & 0o7777 == 0o4755
        assert not (root / "srv/remove-me.txt").exists()
    finally:
        rm(eng, "xa1")


# -- entrypoint, cmd, user, env ---------------------------------------------------------------


def test_entrypoint_and_cmd_edge_cases(eng: EngineProcess) -> None:
    assert eng.docker("run", "--rm", "--entrypoint", "", "busybox", "echo", "hi").stdout == "hi\n"
    cleared = eng.docker("run", "--rm", "--entrypoint", "", "multilayer", check=False)
    assert cleared.returncode != 0 and "no command specified" in cleared.stderr
    # --entrypoint drops the image's CMD ("hello"): sh with no args and no stdin just ends
    bare = eng.docker("run", "--rm", "--entrypoint", "sh", "multilayer")
    assert bare.returncode == 0 and bare.stdout == ""
    with_args = eng.docker(
        "run", "--rm", "--entrypoint", "sh", "multilayer", "-c", "echo $GREETING $0"
    )
    assert with_args.stdout == "ahoy sh\n"
    created = eng.docker("create", "--name", "ep1", "--entrypoint", "sh", "multilayer")
    try:
        assert created.returncode == 0
        assert fmt(eng, "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "ep1") in (
            '["sh"] null',
            '["sh"] []',
        )
    finally:
        rm(eng, "ep1")


def test_user_by_name_and_unknown_user(eng: EngineProcess) -> None:
    out = eng.docker("run", "--rm", "-u", "app", "busybox", "id").stdout
    assert out.startswith("uid=1000(app) gid=1000(app)")
    grp = eng.docker("run", "--rm", "-u", "app:root", "busybox", "id").stdout
    assert grp.startswith("uid=1000(app) gid=0(root)")
    missing = eng.docker("run", "--rm", "-u", "nosuch", "busybox", "id", check=False)
    assert missing.returncode != 0
    assert "unable to find user nosuch" in missing.stderr
    assert "no matching entries in passwd file" in missing.stderr


def test_env_without_value_takes_the_client_environment(eng: EngineProcess) -> None:
    env = {**eng.env, "DY_FROM_HOST": "host-value"}
    env.pop("DY_UNSET", None)
    res = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-e",
            "DY_FROM_HOST",
            "-e",
            "DY_UNSET",
            "busybox",
            "sh",
            "-c",
            'echo "$DY_FROM_HOST"; env | grep -c DY_UNSET',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.stdout.splitlines() == ["host-value", "0"], res.stderr


# -- listing, inspect, stats ------------------------------------------------------------------


def test_ps_filters(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "pf-run", "--label", "team=blue", "busybox", "sleep", "1000")
    eng.docker("run", "--name", "pf-done", "--label", "team=red", "busybox", "true")
    eng.docker("create", "--name", "pf-new", "--label", "team=blue", "multilayer")
    try:

        def names(*args: str) -> set[str]:
            out = eng.docker("ps", *args, "--format", "{{.Names}}").stdout.split()
            return {n for n in out if n.startswith("pf-")}

        assert names() == {"pf-run"}
        assert names("-a") == {"pf-run", "pf-done", "pf-new"}
        assert names("--filter", "status=exited") == {"pf-done"}
        assert names("--filter", "status=created") == {"pf-new"}
        assert names("--filter", "status=running") == {"pf-run"}
        assert names("-a", "--filter", "label=team=blue") == {"pf-run", "pf-new"}
        assert names("-a", "--filter", "label=team") == {"pf-run", "pf-done", "pf-new"}
        assert names("-a", "--filter", "name=pf-d") == {"pf-done"}
        assert names("-a", "--filter", "ancestor=multilayer") == {"pf-new"}
        assert "pf-new" not in names("-a", "--filter", "ancestor=busybox")
        assert names("-a", "--filter", "label=team=blue", "--filter", "status=created") == {
            "pf-new"
        }
        quiet = eng.docker("ps", "-q", "--filter", "name=pf-run").stdout.split()
        full = eng.docker("ps", "-q", "--no-trunc", "--filter", "name=pf-run").stdout.split()
        assert len(quiet) == 1 and len(quiet[0]) == 12
        assert len(full) == 1 and len(full[0]) == 64 and full[0].startswith(quiet[0])
        assert names("--filter", "before=pf-new") == {"pf-run", "pf-done"}
        assert names("--filter", "since=pf-run") == {"pf-done", "pf-new"}
        assert eng.docker("ps", "-l", "--format", "{{.Names}}").stdout.split() == ["pf-new"]
        assert eng.docker("ps", "-n", "2", "--format", "{{.Names}}").stdout.split() == [
            "pf-new",
            "pf-done",
        ]
        unknown = eng.docker("ps", "--filter", "before=no-such-ctr", check=False)
        assert unknown.returncode != 0 and "No such container" in unknown.stderr
        bad = eng.docker("ps", "--filter", "status=sleepy", check=False)
        assert bad.returncode != 0 and "status" in bad.stderr
    finally:
        rm(eng, "pf-run", "pf-done", "pf-new")


def test_inspect_fields(eng: EngineProcess, tmp_path: Path) -> None:
    eng.docker(
        "run",
        "-d",
        "--name",
        "in-f",
        "-v",
        f"{tmp_path}:/host",
        "-e",
        "A=1",
        "busybox",
        "sleep",
        "1000",
    )
    try:
        data = inspect(eng, "in-f")
        state = data["State"]
        config = data["Config"]
        host_config = data["HostConfig"]
        assert isinstance(state, dict) and isinstance(config, dict)
        assert isinstance(host_config, dict)
        assert state["Status"] == "running" and state["Running"] is True
        assert state["Pid"] > 0 and state["StartedAt"] > "2000"
        assert config["Image"] == "busybox" and config["Cmd"] == ["sleep", "1000"]
        assert "A=1" in config["Env"]
        assert host_config["LogConfig"]["Type"] == "json-file"
        assert data["Name"] == "/in-f"
        assert data["Mounts"] == [
            {
                "Type": "bind",
                "Source": str(tmp_path),
                "Destination": "/host",
                "Mode": "",
                "RW": True,
                "Propagation": "rprivate",
            }
        ]
        assert Path(str(data["LogPath"])).is_file()
    finally:
        rm(eng, "in-f")


def test_stats_no_stream(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "sx1", "busybox", "sleep", "1000")
    try:
        out = eng.docker(
            "stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", "sx1"
        ).stdout.strip()
        name, mem, pids = out.split("|")
        assert name == "sx1"
        assert "B" in mem and "/" in mem
        assert int(pids) >= 1
    finally:
        rm(eng, "sx1")


# -- stdio: -i, -it, attach -----------------------------------------------------------------


def test_stdin_piped_into_run_i(eng: EngineProcess) -> None:
    res = eng.docker("run", "--rm", "-i", "busybox", "cat", input="x\n")
    assert res.stdout == "x\n"
    many = "".join(f"line {i}\n" for i in range(2000))
    assert eng.docker("run", "--rm", "-i", "busybox", "wc", "-l", input=many).stdout.strip() == (
        "2000"
    )


def test_run_it_with_a_pty(eng: EngineProcess) -> None:
    code, out = pty_session(
        eng.env,
        ["docker", "run", "-it", "--rm", "busybox", "sh"],
        b"tty; stty size; echo marker-$((6*7)); exit 7\n",
    )
    assert b"/dev/pts/0" in out
    assert b"marker-42" in out
    assert code == 7


def test_attach_to_a_running_container(eng: EngineProcess) -> None:
    eng.docker(
        "run",
        "-d",
        "-i",
        "--name",
        "at1",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done",
    )
    try:
        with eng.docker_running("attach", "at1", stdin=True) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            time.sleep(0.5)  # let the attach connect before sending input
            proc.stdin.write("hello\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "got:hello\n"
        assert fmt(eng, "{{.State.Status}}", "at1") == "running"
        out = eng.docker(
            "run",
            "-d",
            "--name",
            "at2",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.1; done",
        )
        assert out.returncode == 0
        with eng.docker_running("attach", "--no-stdin", "at2") as watcher:
            assert watcher.stdout is not None
            assert watcher.stdout.readline() == "tick\n"
    finally:
        rm(eng, "at1", "at2")


# -- events ---------------------------------------------------------------------------------


def test_events_since_until_show_the_lifecycle(eng: EngineProcess) -> None:
    since = str(int(time.time()) - 1)
    eng.docker(
        "run",
        "--name",
        "ev1",
        "--label",
        "purpose=events",
        "busybox",
        "sh",
        "-c",
        "exit 3",
        check=False,
    )
    eng.docker("rm", "ev1")
    until = str(int(time.time()) + 1)
    out = eng.docker(
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        "container=ev1",
        "--format",
        "{{json .}}",
        timeout=30,
    ).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    actions = [e["Action"] for e in events]
    for expected in ("create", "start", "die", "destroy"):
        assert expected in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die")
    assert actions.index("die") < actions.index("destroy")
    die = events[actions.index("die")]
    assert die["Type"] == "container"
    attrs = die["Actor"]["Attributes"]
    assert attrs["name"] == "ev1" and attrs["image"] == "busybox"
    assert attrs["exitCode"] == "3" and attrs["purpose"] == "events"
    assert len(die["Actor"]["ID"]) == 64 and die["time"] >= int(since)
    earlier = eng.docker(
        "events", "--since", "1", "--until", since, "--filter", "container=ev1", timeout=30
    ).stdout
    assert earlier.strip() == ""


def test_execs_are_events_as_docker_words_them(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "ev2", "--label", "purpose=exec-events", "busybox", "top")
    try:
        since = str(int(time.time()) - 1)
        assert eng.docker("exec", "ev2", "sh", "-c", "exit 4", check=False).returncode == 4
        assert eng.docker("exec", "ev2", "true").returncode == 0
        missing = eng.docker("exec", "ev2", "no-such-command", check=False)
        assert missing.returncode == 127
        until = str(int(time.time()) + 1)
        window = ("--since", since, "--until", until, "--format", "{{json .}}")
        out = eng.docker("events", *window, "--filter", "container=ev2", timeout=30).stdout
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        events = [e for e in events if e["Action"].startswith("exec_")]  # not create, start
        assert [e["Action"] for e in events] == [
            "exec_create: sh -c exit 4",
            "exec_start: sh -c exit 4",
            "exec_die",
            "exec_create: true ",  # Docker's wording: entrypoint, a space, the arguments
            "exec_start: true ",
            "exec_die",
            "exec_create: no-such-command ",
            "exec_start: no-such-command ",  # never ran: no exec_die, as in Docker
        ]
        first, second = events[0]["Actor"]["Attributes"], events[3]["Actor"]["Attributes"]
        assert first["name"] == "ev2" and first["purpose"] == "exec-events"
        assert first["execID"] != second["execID"]
        assert events[2]["Actor"]["Attributes"]["execID"] == first["execID"]
        assert events[2]["Actor"]["Attributes"]["exitCode"] == "4"
        assert events[5]["Actor"]["Attributes"]["exitCode"] == "0"
        # `event=exec_create` matches every command, as Docker's filter does.
        only = eng.docker("events", *window, "--filter", "event=exec_create", timeout=30).stdout
        assert [json.loads(line)["Action"] for line in only.splitlines()] == [
            "exec_create: sh -c exit 4",
            "exec_create: true ",
            "exec_create: no-such-command ",
        ]
    finally:
        rm(eng, "ev2")


# -- prune (a fresh engine: prune acts on everything) ------------------------------------------


def test_container_volume_and_image_prune(engine: EngineProcess, registry_with_images: str) -> None:
    reg = registry_with_images
    for name in ("busybox", "multilayer", "multiarch"):
        engine.docker("pull", f"{reg}/{name}")
    engine.docker("run", "-d", "--name", "keep-running", f"{reg}/busybox", "sleep", "1000")
    engine.docker("run", "--name", "gone-1", f"{reg}/busybox", "true")
    engine.docker("create", "--name", "gone-2", f"{reg}/busybox", "true")
    engine.docker("create", "--name", "labelled", "--label", "keep=yes", f"{reg}/busybox", "true")
    engine.docker("container", "prune", "-f", "--filter", "label=nope")
    assert len(engine.docker("ps", "-aq").stdout.split()) == 4  # nothing matched
    engine.docker("container", "prune", "-f", "--filter", "until=1h")
    assert len(engine.docker("ps", "-aq").stdout.split()) == 4  # all younger than an hour
    engine.docker("container", "prune", "-f", "--filter", "label!=keep=yes")
    left = container_names(engine)
    assert sorted(left) == ["keep-running", "labelled"]
    bad = engine.docker("container", "prune", "-f", "--filter", "colour=red", check=False)
    assert bad.returncode != 0 and "invalid filter" in bad.stderr
    engine.docker("run", "--name", "gone-3", f"{reg}/busybox", "true")
    engine.docker("run", "--name", "anon-user", "--entrypoint", "true", f"{reg}/multilayer")
    out = engine.docker("container", "prune", "-f").stdout
    assert "Deleted Containers" in out
    left = container_names(engine)
    assert left == ["keep-running"]

    engine.docker("volume", "create", "named-unused")
    engine.docker("volume", "create", "named-used")
    engine.docker(
        "run", "-d", "--name", "vol-user", "-v", "named-used:/x", f"{reg}/busybox", "sleep", "1000"
    )
    anonymous = [v for v in volume_names(engine) if len(v) == 64]
    assert len(anonymous) == 1  # left behind by anon-user, which prune removed without -v
    engine.docker("volume", "prune", "-f")
    volumes = set(volume_names(engine))
    assert volumes == {"named-unused", "named-used"}  # only anonymous ones by default
    engine.docker("volume", "prune", "-f", "-a")
    assert set(volume_names(engine)) == {"named-used"}

    engine.docker("image", "prune", "-f")  # nothing dangling: everything stays
    images = engine.docker("images", "--format", "{{.Repository}}").stdout.split()
    assert sorted(images) == sorted(f"{reg}/{n}" for n in ("busybox", "multiarch", "multilayer"))
    engine.docker("image", "prune", "-f", "-a")
    images = engine.docker("images", "--format", "{{.Repository}}").stdout.split()
    assert images == [f"{reg}/busybox"]  # in use by keep-running


# -- edge cases of the verbs ----------------------------------------------------------------


def test_verbs_on_containers_in_the_wrong_state(eng: EngineProcess) -> None:
    eng.docker("create", "--name", "ws1", "busybox", "sleep", "1000")
    try:
        paused = eng.docker("pause", "ws1", check=False)
        assert paused.returncode != 0 and "is not running" in paused.stderr
        attach = eng.docker("attach", "ws1", check=False)
        assert attach.returncode != 0 and "start it first" in attach.stderr
        top = eng.docker("top", "ws1", check=False)
        assert top.returncode != 0 and "is not running" in top.stderr
        eng.docker("start", "ws1")
        eng.docker("pause", "ws1")
        again = eng.docker("pause", "ws1", check=False)
        assert again.returncode != 0 and "already paused" in again.stderr
        exec_paused = eng.docker("exec", "ws1", "true", check=False)
        assert exec_paused.returncode != 0 and "paused" in exec_paused.stderr
        assert "sleep 1000" in eng.docker("top", "ws1").stdout  # top works while frozen
        eng.docker("stop", "-t", "1", "ws1")  # a paused container can be stopped
        assert fmt(eng, "{{.State.Status}}", "ws1") == "exited"
        unpause = eng.docker("unpause", "ws1", check=False)
        assert unpause.returncode != 0 and "is not paused" in unpause.stderr
        eng.docker("start", "ws1")
        eng.docker("pause", "ws1")
        eng.docker("restart", "-t", "1", "ws1")
        assert fmt(eng, "{{.State.Status}}", "ws1") == "running"
    finally:
        rm(eng, "ws1")


def test_run_rm_removes_anonymous_but_keeps_named_volumes(eng: EngineProcess) -> None:
    before = set(volume_names(eng))
    eng.docker("run", "--rm", "-v", "kept-vol:/kept", "--entrypoint", "true", "multilayer")
    after = set(volume_names(eng))
    try:
        assert after - before == {"kept-vol"}
    finally:
        eng.docker("volume", "rm", "kept-vol", check=False)


def test_top_with_ps_arguments(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--name", "tp1", "busybox", "sleep", "1000")
    try:
        out = eng.docker("top", "tp1", "-o", "pid,comm").stdout.splitlines()
        assert out[0].split() == ["PID", "COMMAND"]
        assert [line.split()[1] for line in out[1:]] == ["sleep"]
    finally:
        rm(eng, "tp1")


def test_detached_run_rm_goes_away_on_stop(eng: EngineProcess) -> None:
    eng.docker("run", "-d", "--rm", "--name", "dr1", "busybox", "sleep", "1000")
    eng.docker("stop", "-t", "1", "dr1")
    assert wait_for(lambda: "dr1" not in container_names(eng))
