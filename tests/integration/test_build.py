"""`docker build` with the real CLI (classic builder) against our engine, on real containers.

Acceptance of issue 4: a multi-stage build that runs, a second build served
from the cache (and a changed COPY input rebuilding from its step only),
.dockerignore, and the built image loading and running in podman. Around
them: the Dockerfile features, the errors (each names what went wrong and
leaves no container, no work directory and no layer beyond the step cache)
and a client that goes away mid-build.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.engine_process import EngineProcess, UnixHTTPConnection, wait_for
from tests.httpserve import BackgroundHTTPServer
from tests.registry import LocalRegistry, push_oci_layout

pytestmark = pytest.mark.integration


def load_busybox(eng: EngineProcess, test_images: Path) -> None:
    """The busybox OCI layout as an archive, loaded and tagged `busybox` (no registry needed)."""
    layout = test_images / "busybox"
    archive = eng.dir / "busybox-layout.tar"
    with tarfile.open(archive, "w") as tar:
        for item in sorted(layout.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(layout)), recursive=False)
    image_id = eng.docker("load", "-q", "-i", str(archive)).stdout.split()[-1]
    eng.docker("tag", image_id, "busybox:latest")


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, test_images: Path) -> Iterator[EngineProcess]:
    load_busybox(shared_engine, test_images)
    yield shared_engine


def build(
    eng: EngineProcess, ctx: Path, *args: str, check: bool = True, buildkit: str | None = "0"
) -> subprocess.CompletedProcess[str]:
    env = dict(eng.env)
    env.pop("DOCKER_BUILDKIT", None)
    if buildkit is not None:
        env["DOCKER_BUILDKIT"] = buildkit
    proc = subprocess.run(
        ["docker", "build", *args, str(ctx)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ctx


def steps(out: str) -> list[str]:
    """Each step's result lines, by step: ["cache" | "built", ...] in Step order."""
    found: list[str] = []
    for block in out.split("Step ")[1:]:
        if " : FROM " in block.splitlines()[0]:
            continue
        found.append("cache" if " ---> Using cache" in block else "built")
    return found


def leftovers(eng: EngineProcess) -> tuple[list[str], list[str]]:
    """(containers of any state, build work directories) the engine still holds."""
    containers = eng.docker("ps", "-aq").stdout.split()
    work = eng.root / "build" / "tmp"
    return containers, sorted(os.listdir(work)) if work.exists() else []


def layer_dirs(eng: EngineProcess) -> set[str]:
    return {p.name for p in (eng.root / "images" / "layers").iterdir()}


MULTI_STAGE = """\
FROM busybox AS maker
RUN echo made-in-stage-one > /made.txt && echo building-now
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY --from=maker /made.txt ./made.txt
COPY data.txt /app/
USER nobody
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat made.txt data.txt; echo $GREETING; id -un; pwd"]
"""


# -- acceptance ---------------------------------------------------------------------------


def test_multi_stage_build_runs(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": MULTI_STAGE, "data.txt": "data-one\n"})
    res = build(eng, ctx, "-t", "t1")
    assert "Step 1/10 : FROM busybox AS maker" in res.stdout
    assert "building-now" in res.stdout  # RUN output is streamed
    assert " ---> Running in " in res.stdout and "Removing intermediate container" in res.stdout
    assert "Successfully tagged t1:latest" in res.stdout
    run = eng.docker("run", "--rm", "t1")
    assert run.stdout == "made-in-stage-one\ndata-one\nhello\nnobody\n/app\n"
    assert leftovers(eng) == ([], [])


def test_second_build_is_all_cache_and_a_changed_copy_rebuilds_from_its_step(
    eng: EngineProcess, tmp_path: Path
) -> None:
    ctx = write(tmp_path, {"Dockerfile": MULTI_STAGE, "data.txt": "data-one\n"})
    first = build(eng, ctx, "-t", "t2")
    again = build(eng, ctx, "-t", "t2")
    assert steps(again.stdout) == ["cache"] * 8, again.stdout
    assert again.stdout.count(" ---> Using cache") == 8
    assert _final_id(first.stdout) == _final_id(again.stdout)
    (ctx / "data.txt").write_text("data-two\n")
    changed = build(eng, ctx, "-t", "t2")
    # RUN, ENV, WORKDIR, COPY --from come from the cache; COPY data.txt and after are new.
    assert steps(changed.stdout) == ["cache"] * 4 + ["built"] * 4, changed.stdout
    assert "data-two" in eng.docker("run", "--rm", "t2").stdout
    nocache = build(eng, ctx, "--no-cache", "-t", "t2")
    assert "Using cache" not in nocache.stdout


def _final_id(out: str) -> str:
    return next(line.split()[-1] for line in out.splitlines() if "Successfully built" in line)


def test_dockerignore_keeps_a_file_out_of_the_image(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nCOPY . /ctx/\nCMD ls -a /ctx\n",
            ".dockerignore": "secret.txt\n*.log\n!keep.log\n",
            "secret.txt": "password\n",
            "noise.log": "x\n",
            "keep.log": "y\n",
            "app.txt": "app\n",
        },
    )
    build(eng, ctx, "-t", "t3")
    listing = eng.docker("run", "--rm", "t3").stdout.split()
    assert "app.txt" in listing and "keep.log" in listing
    assert "secret.txt" not in listing and "noise.log" not in listing
    write(ctx, {".dockerignore": "Dockerfile\n.dockerignore\nsecret.txt\n"})
    build(eng, ctx, "-t", "t3b")  # an ignored Dockerfile is still read, but not copied
    listing = eng.docker("run", "--rm", "t3b").stdout.split()
    assert "app.txt" in listing and "Dockerfile" not in listing and ".dockerignore" not in listing
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY secret.txt /\n"})
    res = build(eng, ctx, check=False)
    assert res.returncode != 0
    assert "file not found in build context or excluded by .dockerignore" in res.stderr


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    conf = tmp_path / "containers.conf"
    conf.write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
        '[engine]\nruntime = "runc"\n'
    )
    root = Path(tempfile.mkdtemp(prefix="dy-pm-", dir="/tmp"))  # podman: runroot < 50 chars
    argv = [
        "podman",
        "--root",
        str(root / "root"),
        "--runroot",
        str(root / "run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["CONTAINERS_CONF"] = str(conf)
    try:
        yield argv
    finally:
        subprocess.run([*argv, "system", "reset", "--force"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_built_image_loads_and_runs_in_podman(
    eng: EngineProcess, tmp_path: Path, podman: list[str]
) -> None:
    ctx = write(tmp_path / "ctx", {"Dockerfile": MULTI_STAGE, "data.txt": "for-podman\n"})
    build(eng, ctx, "-t", "t4")
    archive = tmp_path / "t4.tar"
    eng.docker("save", "-o", str(archive), "t4")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["CONTAINERS_CONF"] = str(tmp_path / "containers.conf")

    def pm(*args: str) -> str:
        proc = subprocess.run([*podman, *args], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "t4:latest" in pm("load", "-i", str(archive))
    out = pm("run", "--rm", "--network", "none", "t4:latest")
    assert out == "made-in-stage-one\nfor-podman\nhello\nnobody\n/app\n"


# -- the CLI's default builder ------------------------------------------------------------


def test_cli_without_buildkit_variable_falls_back_to_the_classic_builder(
    eng: EngineProcess, tmp_path: Path
) -> None:
    """CLI 28 with no buildx component falls back (with its deprecation notice)."""
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nLABEL x=y\n"})
    res = build(eng, ctx, buildkit=None)
    assert "legacy builder is deprecated" in res.stderr
    assert "Successfully built" in res.stdout


# -- Dockerfile features ------------------------------------------------------------------


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_instructions_shape_the_image_config(eng: EngineProcess, tmp_path: Path) -> None:
    payload = tmp_path / "www"
    payload.mkdir()
    (payload / "remote.txt").write_text("from-the-web\n")

    class Handler(_Files):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(payload), **kw)

    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = b"inside-the-tar\n"
        info = tarfile.TarInfo("pkg/inner.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "bundle.tar.gz").write_bytes(inner.getvalue())
    with BackgroundHTTPServer() as web:
        web.serve(Handler)
        dockerfile = f"""\
ARG BASE=busybox
FROM $BASE AS base
ONBUILD RUN echo triggered > /onbuild.txt
FROM base AS final
ARG WHO=nobody
ARG UNUSED_BY_RUN
RUN echo "who=$WHO" > /who.txt
ADD bundle.tar.gz /opt/
ADD http://{web.host}/remote.txt /web/
COPY --chown=nobody:nogroup --chmod=640 bundle.tar.gz /owned/
EXPOSE 8080 53/udp
VOLUME /data
RUN echo discarded > /data/f.txt
LABEL org.example.kind=test
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
"""
        write(ctx, {"Dockerfile": dockerfile})
        res = build(
            eng, ctx, "-t", "t5", "-t", "t5:two", "--build-arg", "WHO=me", "--build-arg", "NOPE=1"
        )
    assert "Successfully tagged t5:latest" in res.stdout
    assert "Successfully tagged t5:two" in res.stdout
    assert "One or more build-args [NOPE] were not consumed" in res.stdout
    cfg = json.loads(eng.docker("inspect", "t5").stdout)[0]["Config"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["Labels"] == {"org.example.kind": "test"}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["Entrypoint"] == ["/bin/echo"] and cfg["Cmd"] is None
    show = eng.docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "t5",
        "-c",
        "cat /who.txt /opt/pkg/inner.txt /web/remote.txt; stat -c '%U:%G %a' /owned/bundle.tar.gz;"
        " ls /onbuild.txt 2>&1 || true",
    ).stdout
    assert "who=me\ninside-the-tar\nfrom-the-web\nnobody:nogroup 640\n" in show
    assert "/onbuild.txt" in show and "No such file" not in show  # the base's trigger ran
    lost = eng.docker("run", "--rm", "--entrypoint", "ls", "t5", "/data").stdout
    assert lost == ""  # a RUN's writes under a VOLUME are discarded, as in Docker
    assert eng.docker("volume", "ls", "-q").stdout == ""  # the step's volume went with it
    history = eng.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "t5").stdout
    assert '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/echo"]' in history
    assert "|1 WHO=me /bin/sh -c echo" in history


def test_target_stops_at_that_stage(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(
        tmp_path,
        {"Dockerfile": "FROM busybox AS one\nRUN echo one > /f\nFROM busybox\nRUN exit 9\n"},
    )
    res = build(eng, ctx, "--target", "one", "-t", "t6")
    assert "Step 2/2" in res.stdout and "exit 9" not in res.stdout
    assert eng.docker("run", "--rm", "t6", "cat", "/f").stdout == "one\n"
    bad = build(eng, ctx, "--target", "nope", check=False)
    assert bad.returncode != 0 and "failed to reach build target nope" in bad.stderr


def test_step_images_are_hidden_and_kept_while_used(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1\nENV B=2\nRUN echo > /x\n"})
    build(eng, ctx, "-t", "t7")
    shown = eng.docker("images", "-q", "--no-trunc").stdout.split()
    every = eng.docker("images", "-aq", "--no-trunc").stdout.split()
    assert len(every) >= len(shown) + 3
    eng.docker("image", "prune", "-f")
    again = build(eng, ctx, "-t", "t7")
    assert again.stdout.count("Using cache") == 3  # prune kept the steps of a tagged image
    eng.docker("rmi", "t7")
    eng.docker("builder", "prune", "-f")
    assert set(eng.docker("images", "-aq", "--no-trunc").stdout.split()) < set(every)


def test_docker_sdk_builds(eng: EngineProcess, tmp_path: Path) -> None:
    docker = pytest.importorskip("docker")
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo sdk > /sdk.txt\n"})
    client = docker.DockerClient(base_url=eng.host)
    try:
        image, logs = client.images.build(path=str(tmp_path), tag="t8")
        assert any("Successfully built" in str(line.get("stream", "")) for line in logs)
        assert "t8:latest" in image.tags
    finally:
        client.close()


# -- errors leave nothing behind -----------------------------------------------------------


def test_failing_run_reports_the_code_and_leaves_nothing(
    eng: EngineProcess, tmp_path: Path
) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo partial > /p; exit 3\n"})
    before = layer_dirs(eng)
    res = build(eng, ctx, check=False)
    assert res.returncode != 0
    assert "The command '/bin/sh -c echo partial > /p; exit 3' returned a non-zero code: 3" in (
        res.stderr
    )
    assert "Step 2/2" in res.stdout
    assert leftovers(eng) == ([], [])
    assert layer_dirs(eng) == before


def test_syntax_error_names_the_line(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\n\nRUNN echo\n"})
    res = build(eng, ctx, check=False)
    assert res.returncode != 0
    assert "dockerfile parse error on line 3: unknown instruction: RUNN" in res.stderr


def test_missing_copy_source_is_dockers_message(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY nothere.txt /\n"})
    res = build(eng, ctx, check=False)
    assert res.returncode != 0
    assert (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat nothere.txt: file does not exist"
    ) in res.stderr
    assert leftovers(eng) == ([], [])


def test_a_client_going_away_stops_the_build(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    env = {**eng.env, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.Popen(
        ["docker", "build", str(ctx)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        while proc.stdout.readline() != "started\n":
            pass
        assert eng.docker("ps", "-q").stdout.strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert wait_for(lambda: leftovers(eng) == ([], []), timeout=30)


def _post_build(eng: EngineProcess, query: str, body: bytes) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(eng.socket, timeout=120)
    try:
        conn.request(
            "POST", f"/build?{query}", body=body, headers={"Content-Type": "application/x-tar"}
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _context(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("query", "body", "expect"),
    [
        ("buildargs=%7Bnot-json", None, "invalid JSON in query parameter buildargs"),
        ("buildargs=%5B1%5D", None, "buildargs must be a JSON object"),
        ("t=Bad%20Tag", None, "invalid tag"),
        ("networkmode=container:x", None, "networkmode"),
        ("labels=%7B%22a%22%3A1%7D", None, "every label value must be a string"),
        ("dockerfile=Nope", None, "Cannot locate specified Dockerfile: Nope"),
        ("", b"this is not a tar archive" * 40, "not a valid tar archive"),
        ("remote=https://example.invalid/x.git", None, "remote build contexts are not supported"),
    ],
)
def test_bad_build_requests_are_400_and_change_nothing(
    eng: EngineProcess, query: str, body: bytes | None, expect: str
) -> None:
    images = eng.docker("images", "-aq", "--no-trunc").stdout
    status, data = _post_build(
        eng, query, body if body is not None else _context({"Dockerfile": "FROM busybox\n"})
    )
    assert status == 400, data
    assert expect in json.loads(data)["message"]
    assert eng.docker("images", "-aq", "--no-trunc").stdout == images
    assert leftovers(eng) == ([], [])


def test_an_engine_killed_mid_build_leaves_no_step_container_after_the_next_build(
    engine: EngineProcess, test_images: Path, tmp_path: Path
) -> None:
    load_busybox(engine, test_images)
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo started; sleep 120\n"})
    env = {**engine.env, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.Popen(
        ["docker", "build", str(ctx)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        while proc.stdout.readline() != "started\n":
            pass
        engine.kill9()
    finally:
        proc.kill()
        proc.wait()
    engine.start()
    assert engine.docker("ps", "-aq").stdout.strip()  # the step container outlived the engine
    write(ctx, {"Dockerfile": "FROM busybox\nLABEL after=restart\n"})
    build(engine, ctx)
    assert leftovers(engine) == ([], [])


def test_add_checksum_must_match(eng: EngineProcess, tmp_path: Path) -> None:
    payload = tmp_path / "www"
    payload.mkdir()
    (payload / "f.txt").write_text("content\n")
    good = "sha256:" + hashlib.sha256(b"content\n").hexdigest()

    class Handler(_Files):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(payload), **kw)

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with BackgroundHTTPServer() as web:
        web.serve(Handler)
        url = f"http://{web.host}/f.txt"
        write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={good} {url} /f.txt\n"})
        build(eng, ctx)
        bad = "sha256:" + "0" * 64
        write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={bad} {url} /f.txt\n"})
        res = build(eng, ctx, check=False)
    assert res.returncode != 0 and f"not the expected {bad}" in res.stderr
    assert leftovers(eng) == ([], [])


def test_from_pulls_a_private_base_with_the_clients_login(
    eng: EngineProcess, test_images: Path, auth_registry: LocalRegistry, tmp_path: Path
) -> None:
    """The CLI sends its logins in X-Registry-Config; FROM pulls with the one for the registry."""
    push_oci_layout(test_images / "busybox", auth_registry, "private/base:1")
    ref = f"{auth_registry.host}/private/base:1"
    ctx = write(tmp_path, {"Dockerfile": f"FROM {ref}\nRUN echo pulled > /p.txt\n"})
    denied = build(eng, ctx, check=False)
    assert denied.returncode != 0 and "authentication required" in denied.stderr
    config = eng.config_dir / "config.json"
    token = base64.b64encode(b"tester:s3cret-pass").decode()
    config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    try:
        res = build(eng, ctx, "-t", "t9")
    finally:
        config.unlink()
    assert "Pulling from private/base" in res.stdout
    assert eng.docker("run", "--rm", "t9", "cat", "/p.txt").stdout == "pulled\n"
    assert leftovers(eng) == ([], [])


def test_run_heredocs(eng: EngineProcess, tmp_path: Path) -> None:
    ctx = write(
        tmp_path,
        {
            "Dockerfile": (
                "FROM busybox\nENV WHO=world\n"
                "RUN <<EOF\necho script-ran > /script.txt\nEOF\n"
                "RUN cat <<EOF > /fed.txt\nhello $WHO\nEOF\n"
            )
        },
    )
    build(eng, ctx, "-t", "t10")
    out = eng.docker("run", "--rm", "t10", "cat", "/script.txt", "/fed.txt").stdout
    assert out == "script-ran\nhello world\n"
