# The two commands a new user runs: `make demo` and `make test`.
# Each does its own set-up from a fresh clone.
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv

.PHONY: demo test test-fast setup lint typecheck unit check-pytest-ran clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@bash scripts/demo.sh

lint:
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked lint-imports

typecheck:
	$(UV) run --locked mypy

test: setup lint typecheck
	@bash scripts/pytest.sh

# The fast tier (tests marked `fast`): only the Python environment, no MLflow server, Azurite,
# container or plan of the whole program; under 2 minutes on a 2-core machine. `make test` runs
# these too.
test-fast:
	@bash scripts/pytest.sh -m fast --durations=5

clean:
	-$(UV) run recplat local down 2>/dev/null
	-bash scripts/containers/cleanup.sh --all 2>/dev/null
	rm -rf .scratch
