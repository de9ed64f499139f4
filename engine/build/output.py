"""The build's progress as Docker's classic-builder JSON messages.

The docker CLI prints `stream` text verbatim, takes the image ID from the
`aux` message (for `--iidfile` and `-q`), and turns `errorDetail` into its
own error and exit status, so every line here copies Docker's wording
byte for byte: scripts and people grep for "Using cache" and "Successfully
built".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Emit = Callable[[dict[str, Any]], None]


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


@dataclass
class Output:
    """Writes the build's messages; `quiet` (`docker build -q`) keeps only the result."""

    emit: Emit
    quiet: bool = False

    def stream(self, text: str) -> None:
        if not self.quiet and text:
            self.emit({"stream": text})

    def step(self, number: int, total: int, original: str) -> None:
        self.stream(f"Step {number}/{total} : {original}\n")

    def image(self, image_id: str) -> None:
        self.stream(f" ---> {short_id(image_id)}\n")

    def using_cache(self) -> None:
        self.stream(" ---> Using cache\n")

    def running_in(self, container_id: str) -> None:
        self.stream(f" ---> Running in {container_id[:12]}\n")

    def removing(self, container_id: str) -> None:
        self.stream(f"Removing intermediate container {container_id[:12]}\n")

    def warning(self, text: str) -> None:
        self.stream(f"[Warning] {text}\n")

    def done(self, image_id: str, tags: list[str]) -> None:
        """The end of a successful build: the aux ID first, as Docker sends it."""
        self.emit({"aux": {"ID": image_id}})
        if self.quiet:
            self.emit({"stream": image_id + "\n"})
            return
        self.stream(f"Successfully built {short_id(image_id)}\n")
        for tag in tags:
            self.stream(f"Successfully tagged {tag}\n")
