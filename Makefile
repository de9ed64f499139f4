# Dockyard developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
IMAGES   := .cache/test-images
VMIMAGE  := .cache/vmimage/debian-$(shell uname -m)
RUN_DIR  := $(CURDIR)/.dockyard/run
ROOT_DIR := $(CURDIR)/.dockyard/root
SOCK     := $(RUN_DIR)/docker.sock
PYTEST_ARGS ?=
BENCH_N  ?= 100

.PHONY: help deps images run desktop screenshots test lint typecheck unit integration bench package clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install missing apt packages (as root) and the dev venv at .venv
	@bash scripts/install_deps.sh

images: ## build the test images (OCI layouts) and, if missing, the debian guest image
	@python3 scripts/build_test_images.py --out $(IMAGES) >/dev/null
	@echo "test images: $(IMAGES)/{busybox,multilayer,multiarch}"
	@test -f $(VMIMAGE)/manifest.json || python3 -m vmimage build --recipe debian --out $(VMIMAGE)
	@echo "guest image: $(VMIMAGE)"

run: deps images ## registry with the test images, the engine, the desktop app (no display: a screenshot in screenshots/; RUN_ONCE=1 exits after it)
	@$(PY) scripts/dev_run.py --root $(ROOT_DIR) --socket $(SOCK) --images $(IMAGES)

desktop: deps ## the desktop app (dockyard-desktop) on the `make run` engine, or on DOCKER_HOST
	@$(VENV)/bin/dockyard-desktop --host "$${DOCKER_HOST:-unix://$(SOCK)}"

screenshots: deps ## every page of the desktop app under Xvfb against a populated engine, into docs/screenshots/
	@$(PY) scripts/screenshots.py --out docs/screenshots

lint: deps ## ruff check + ruff format --check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: deps ## mypy --strict on engine/ and machine/
	@$(VENV)/bin/mypy --strict engine machine

# Most tests wait (on containers, sockets, guests) rather than compute, so three workers fit
# two cores; guest-booting modules share one worker (tests/conftest.py: SERIAL_GROUP).
# `make test` includes the package tests, which build the .deb and the one-dir app first.
PYTEST_WORKERS ?= 3

test: deps images lint typecheck ## everything: lint, typecheck, unit and integration tests
	@DOCKYARD_PACKAGE_TESTS=1 $(VENV)/bin/pytest tests -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

unit: deps ## only the fast tests (no root needed)
	@$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

integration: deps images ## only the root/namespace/registry tests
	@$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

bench: deps images ## engine and container start time vs podman, BENCH_N idle containers, network throughput, build times, VM boot, desktop app start and memory
	@$(PY) bench/engine_start.py
	@$(PY) bench/container_start.py
	@$(PY) bench/scale.py --n $(BENCH_N)
	@$(PY) bench/network.py
	@$(PY) bench/build.py
	@$(PY) bench/boot.py
	@$(PY) bench/gui.py

package: deps images ## the frozen app (PyInstaller one-dir, also as a .tar.zst) and the .deb, under .cache/packaging
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[packaging]'
	@$(PY) packaging/build.py deb tar

clean: ## remove build outputs, caches and the `make run` state
	@if grep -qs " $(CURDIR)/.dockyard" /proc/self/mountinfo; then \
	  echo "mounts remain under .dockyard; stop the engine first" >&2; exit 1; fi
	rm -rf .cache .dockyard .mypy_cache .ruff_cache .pytest_cache build dist
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
