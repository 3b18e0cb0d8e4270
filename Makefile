# The two commands a new user runs: `make demo` and `make test`.
# Each does its own set-up from a fresh clone.
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv

.PHONY: demo test setup lint typecheck unit check-pytest-ran clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@bash scripts/demo.sh

lint:
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .

typecheck:
	$(UV) run --locked mypy

test: setup lint typecheck
	@bash scripts/pytest.sh

clean:
	-$(UV) run recplat local down 2>/dev/null
	-bash scripts/containers/cleanup.sh --all 2>/dev/null
	rm -rf .scratch
