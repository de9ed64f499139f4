"""`dockyard compose` builds: `build:` with context, args and target through a real engine.

`up` builds a service's missing image (named `<project>-<service>`, compose v2's
rule) from a context packed with .dockerignore applied, the build's `Step N/M`
lines come out with the service's name, `build` again hits the step cache,
`up --build` rebuilds what changed and recreates the container, and a failing
RUN fails the command with the step's error.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, wait_for
from tests.integration.test_build import load_busybox
from tests.registry import LocalRegistry, push_oci_layout

pytestmark = pytest.mark.integration

DOCKYARD = Path(sys.executable).parent / "dockyard"

DOCKERFILE = """\
FROM busybox AS base
ARG GREETING=unset
RUN echo "$GREETING from base" > /greeting.txt
FROM base AS final
COPY . /app
CMD ["cat", "/greeting.txt", "/app/msg.txt"]
FROM busybox AS never
RUN exit 7
"""

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      args: {GREETING: hello}
      target: final
  tool:
    image: busybox
    command: ["true"]
"""


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, test_images: Path) -> Iterator[EngineProcess]:
    load_busybox(shared_engine, test_images)
    yield shared_engine


class Project:
    def __init__(self, eng: EngineProcess, directory: Path, name: str) -> None:
        self.eng, self.dir, self.name = eng, directory, name

    def write(self, rel: str, text: str) -> None:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [str(DOCKYARD), "compose", "-p", self.name, *args],
            cwd=self.dir,
            env=self.eng.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
        return res

    def image_id(self, ref: str) -> str:
        return self.eng.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()

    def logs(self, container: str) -> str:
        wait_for(
            lambda: (
                self.eng.docker("inspect", "-f", "{{.State.Status}}", container).stdout.strip()
                == "exited"
            ),
            timeout=60,
        )
        return self.eng.docker("logs", container).stdout


@pytest.fixture
def project(
    eng: EngineProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Project]:
    name = "b" + request.node.name.replace("test_", "").replace("_", "")[:16].lower()
    p = Project(eng, tmp_path / "proj", name)
    p.dir.mkdir()
    try:
        yield p
    finally:
        p.run("down", "-v", "--remove-orphans", check=False)
        eng.docker("rmi", "-f", f"{name}-web", f"{name}-bad", check=False)


def test_up_builds_then_build_hits_the_cache_then_up_build_rebuilds(project: Project) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write("web/Dockerfile", DOCKERFILE)
    project.write("web/msg.txt", "first\n")
    project.write("web/secret.txt", "do not send\n")
    project.write("web/.dockerignore", "secret.txt\n")
    image = f"{project.name}-web"

    res = project.run("up", "-d")
    assert " web  Step 1/6 : FROM busybox AS base" in res.stderr
    assert " web  Step 6/6 : CMD" in res.stderr
    assert "RUN exit 7" not in res.stderr  # the target stops before the last stage
    assert project.logs(f"{project.name}-web-1") == "hello from base\nfirst\n"
    listing = project.eng.docker("run", "--rm", image, "ls", "-a", "/app").stdout.split()
    assert "msg.txt" in listing and "Dockerfile" in listing and "secret.txt" not in listing
    first = project.image_id(image)

    again = project.run("build")
    assert again.stderr.count(" web  Step ") == 6
    assert again.stderr.count(" ---> Using cache") == 4  # every step but the two FROMs
    assert "tool" not in again.stderr  # nothing to build for an image-only service
    assert project.image_id(image) == first
    kept = project.run("up", "-d")  # the image is there: no build without --build
    assert "Building" not in kept.stderr

    project.write("web/msg.txt", "second\n")
    rebuilt = project.run("up", "-d", "--build")
    assert rebuilt.stderr.count(" ---> Using cache") == 2  # ARG and RUN; COPY changed
    assert "Recreate" in rebuilt.stderr
    assert project.image_id(image) != first
    assert project.logs(f"{project.name}-web-1") == "hello from base\nsecond\n"


def test_build_no_cache_and_a_failing_step(project: Project) -> None:
    project.write(
        "compose.yaml",
        """\
        services:
          bad:
            build: ./bad
            pull_policy: build
        """,
    )
    project.write("bad/Dockerfile", "FROM busybox\nRUN echo about to fail && exit 3\n")
    res = project.run("build", "--no-cache", check=False)
    assert res.returncode != 0
    assert " bad  Step 2/2 : RUN echo about to fail && exit 3" in res.stderr
    assert " bad  about to fail" in res.stderr
    assert "building image " + project.name + "-bad failed" in res.stderr
    assert "returned a non-zero code: 3" in res.stderr
    leftovers = project.eng.docker("ps", "-aq", "--filter", "label=com.docker.compose.project")
    assert project.name not in leftovers.stdout

    project.write("bad/Dockerfile", 'FROM busybox\nRUN echo fixed > /f\nCMD ["cat", "/f"]\n')
    first = project.run("build", "--no-cache", "bad")
    assert "Using cache" not in first.stderr
    up = project.run("up", "-d")  # pull_policy: build builds at every up
    assert "Step 2/3" in up.stderr
    assert project.logs(f"{project.name}-bad-1") == "fixed\n"


def test_unknown_service_and_bad_dockerignore_are_refused(project: Project) -> None:
    project.write("compose.yaml", "services:\n  web:\n    build: ./web\n")
    project.write("web/Dockerfile", "FROM busybox\n")
    project.write("web/.dockerignore", "[z-a\n")
    res = project.run("build", "nosuch", check=False)
    assert res.returncode != 0 and "no such service: nosuch" in res.stderr
    res = project.run("build", check=False)
    assert res.returncode != 0 and ".dockerignore line 1: syntax error in pattern" in res.stderr


def test_a_private_base_is_pulled_with_the_docker_login(
    project: Project, test_images: Path, auth_registry: LocalRegistry
) -> None:
    """The logins `docker login` stored go with the build (X-Registry-Config), as the CLI's."""
    push_oci_layout(test_images / "busybox", auth_registry, "private/base:1")
    base = f"{auth_registry.host}/private/base:1"
    project.write("compose.yaml", "services:\n  app:\n    build: ./app\n")
    project.write("app/Dockerfile", f"FROM {base}\nRUN echo built > /ok\n")
    config = project.eng.config_dir / "config.json"
    try:
        denied = project.run("build", check=False)
        assert denied.returncode != 0 and "authentication required" in denied.stderr
        project.eng.docker(
            "login", "-u", "tester", "--password-stdin", auth_registry.host, input="s3cret-pass\n"
        )
        res = project.run("build")
        assert "Pulling from private/base" in res.stderr
        out = project.eng.docker("run", "--rm", f"{project.name}-app", "cat", "/ok").stdout
        assert out == "built\n"
    finally:
        config.unlink(missing_ok=True)
        project.eng.docker("rmi", "-f", base, f"{project.name}-app", check=False)
