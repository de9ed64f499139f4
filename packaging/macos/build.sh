#!/bin/sh
# Build Dockyard.app and its .dmg on macOS: packaging/macos/build.sh --version X.Y.Z
# [--identity "Developer ID Application: ..."] [--qemu bundled --qemu-src DIR]
# [--notary-profile NAME] [--dry-run]. The logic is in build.py (unit-tested).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python3}" "$here/build.py" "$@"
