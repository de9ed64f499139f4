"""The first run's last step: run one container on the new machine and show its output.

Why not `hello-world`: its image prints a long text and exists only on Docker Hub. A
busybox `echo` shows the same thing (pull, create, start, output, removal all work) with
an image every registry mirror has; the image name is a parameter, so an offline host
(and the tests) use a local registry's copy.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from app.engine_client import EngineClient, NotFound

IMAGE = "busybox"
MESSAGE = "Hello from Dockyard! Your machine runs containers."

Report = Callable[[str], None]


def run_hello(client: EngineClient, image: str = IMAGE, report: Report | None = None) -> str:
    """Run `echo MESSAGE` in `image` (pulled if missing), remove the container, and return
    what it printed."""
    say = report or (lambda _line: None)
    body = {"Image": image, "Cmd": ["echo", MESSAGE], "Labels": {"dockyard.firstrun": "1"}}
    try:
        created = client.post("/containers/create", body=body)
    except NotFound:
        say(f"pulling {image}…")
        for _msg in client.pull(image):
            pass
        created = client.post("/containers/create", body=body)
    cid = quote(str(created["Id"]), safe="")
    try:
        say("starting the container…")
        client.post(f"/containers/{cid}/start")
        client.post(f"/containers/{cid}/wait")
        return b"".join(data for _stream, data in client.logs(cid)).decode("utf-8", "replace")
    finally:
        client.delete(f"/containers/{cid}", {"force": True})
