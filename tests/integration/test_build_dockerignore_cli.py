"""Our .dockerignore walk sends exactly what the real docker CLI sends.

The CLI builds the context tar itself (classic builder, DOCKER_BUILDKIT=0) and
posts it to the daemon; a small recording daemon on 127.0.0.1 keeps the body,
and the tar's member names are compared with `DockerIgnore.walk` over the same
directory, for pattern sets that exercise exceptions, `**`, parent matches and
the rule for entering excluded directories.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import buildcontext
from engine.build import context
from engine.build.dockerignore import DockerIgnore
from tests.httpserve import BackgroundHTTPServer, QuietHandler

pytestmark = pytest.mark.integration

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"

FILES = [
    "Dockerfile",
    "app.py",
    "secret.env",
    "src/main.go",
    "src/main_test.go",
    "src/vendor/x.go",
    "src/keep.txt",
    "docs/guide.md",
    "docs/README.md",
    "node_modules/a/i.js",
    "node_modules/keep/i.js",
    "build/",
    "deep/a/b/keep",
    "deep/a/b/other",
]

SCENARIOS = [
    [
        "*.env",
        "**/*_test.go",
        "docs",
        "!docs/README.md",
        "node_modules",
        "!node_modules/keep",
        "build",
    ],
    ["*", "!*/keep*"],
    ["*", "!**/keep"],
    ["src", "!src/*.go"],
    ["**/*.go", "!src/main.go"],
    ["/docs/", "./secret.env", "# comment", "  #x"],
    ["*"],
    ["src/vendor/**"],
    ["deep", "!deep/a/b/keep"],
    ["deep/*/b", "!deep/a/b/keep"],
    ["Dockerfile", ".dockerignore"],
    ["src", "!src"],
]


class RecordingDaemon(BackgroundHTTPServer):
    """Answers the CLI's ping as a classic-builder daemon and keeps each /build body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        daemon = self

        class Handler(QuietHandler):
            def _ping(self) -> None:
                self.send_response(200)
                for key, value in (("API-Version", "1.50"), ("OSType", "linux")):
                    self.send_header(key, value)
                self.send_header("Builder-Version", "1")
                self.send_header("Content-Length", "2")
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(b"OK")

            do_HEAD = _ping
            do_GET = _ping

            def do_POST(self) -> None:
                body = (
                    self._chunked()
                    if self.headers.get("Transfer-Encoding") == "chunked"
                    else (self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                )
                with daemon.lock:
                    daemon.bodies.append(body)
                out = b'{"error":"recorded","errorDetail":{"message":"recorded"}}\n'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _chunked(self) -> bytes:
                body = b""
                while size := int(self.rfile.readline().strip(), 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body

        self.serve(Handler)


@pytest.fixture(scope="module")
def daemon() -> Iterator[RecordingDaemon]:
    if not os.access(DOCKER, os.X_OK):
        pytest.skip("the docker CLI is not installed")
    with RecordingDaemon() as d:
        yield d


def cli_context(daemon: RecordingDaemon, root: Path) -> list[str]:
    before = len(daemon.bodies)
    subprocess.run(
        [DOCKER, "-H", f"tcp://{daemon.host}", "build", "."],
        cwd=root,
        env={**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(root.parent / "cfg")},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert len(daemon.bodies) == before + 1, "the CLI did not post a build context"
    with tarfile.open(fileobj=io.BytesIO(daemon.bodies[-1])) as tar:
        return sorted(m.name.rstrip("/") for m in tar.getmembers())


def make_context(tmp_path: Path, patterns: list[str]) -> Path:
    root = tmp_path / "ctx"
    for rel in FILES:
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rel)
    (root / ".dockerignore").write_text("\n".join(patterns) + "\n")
    return root


@pytest.mark.parametrize("patterns", SCENARIOS, ids=[" ".join(s) for s in SCENARIOS])
def test_walk_sends_what_the_docker_cli_sends(
    daemon: RecordingDaemon, tmp_path: Path, patterns: list[str]
) -> None:
    root = make_context(tmp_path, patterns)
    assert sorted(DockerIgnore.load(root).walk(root)) == cli_context(daemon, root)


@pytest.mark.parametrize("patterns", SCENARIOS, ids=[" ".join(s) for s in SCENARIOS])
def test_the_app_packer_sends_what_the_docker_cli_sends(
    daemon: RecordingDaemon, tmp_path: Path, patterns: list[str]
) -> None:
    """dockyard compose packs its contexts with app/buildcontext.py: the same tar members."""
    root = make_context(tmp_path, patterns)
    packed = buildcontext.pack(root)
    try:
        with tarfile.open(fileobj=packed.tar) as tar:
            ours = sorted(m.name.rstrip("/") for m in tar.getmembers())
    finally:
        packed.close()
    assert ours == cli_context(daemon, root)


def test_the_cli_context_is_received_whole(daemon: RecordingDaemon, tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (root / "src" / "app.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "src" / "app.sh", 0o755)
    (root / "src" / "link").symlink_to("app.sh")
    cli_context(daemon, root)
    dest = tmp_path / "received"
    context.receive(io.BytesIO(daemon.bodies[-1]), dest)
    assert (dest / "src" / "app.sh").read_text() == "#!/bin/sh\necho hi\n"
    assert os.stat(dest / "src" / "app.sh").st_mode & 0o777 == 0o755
    assert os.readlink(dest / "src" / "link") == "app.sh"
    # the CLI sends everything as root:root: the checksum does not depend on who ran it
    assert {os.lstat(dest / p).st_uid for p in ("Dockerfile", "src", "src/app.sh")} == {0}
