# Everyday commands. `make run` and `make test` bootstrap everything they need:
# uv (from PyPI, into .bootstrap/ if it is not on PATH), then the locked virtualenv.
PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.bootstrap/bin/uv)
PYTEST_ARGS ?=

.PHONY: run test lint format bench demo migrate clean

$(CURDIR)/.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

run: .venv/.synced  ## serve on the embedded default (SQLite, in-process worker, sandbox)
	.venv/bin/zanloop serve

test: .venv/.synced  ## the whole suite (SQLite; set ZANLOOP_TEST_DATABASE_URL for PostgreSQL)
	.venv/bin/python -m pytest -n auto -q $(PYTEST_ARGS)

lint: .venv/.synced
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy

format: .venv/.synced
	.venv/bin/ruff format src tests benchmarks
	.venv/bin/ruff check --fix src tests benchmarks

bench: .venv/.synced
	.venv/bin/zanloop bench

demo: .venv/.synced
	.venv/bin/zanloop demo

migrate: .venv/.synced
	.venv/bin/zanloop migrate

clean:
	rm -rf .venv .bootstrap var .pytest_cache .mypy_cache .ruff_cache
