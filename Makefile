# Two commands for a fresh machine (Python 3.11): `make demo` and `make test`.
# Both create (or reuse) a local virtual environment in .venv from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spectsynth-installed
CORES ?= all

.PHONY: demo test lint format report clean-results check-envs

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole study on the simulated demo cohort, then its HTML report.
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --profile profiles/default
	$(BIN)/snakemake --cores 1 --profile profiles/default --report results/report.html

# Unit tests and the tiny end-to-end Snakemake runs.
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --cores 1

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt .

# Each conda env of envs/ rebuilt from PyPI with its pins, its rules' modules imported and one job
# of each of its rules run in it (no conda needed); records the result in docs/conda-envs.md.
check-envs: $(STAMP)
	$(BIN)/python scripts/check_envs.py --write-doc docs/conda-envs.md
