# The task vocabulary shared by people, hooks and CI. `make help` lists it.
# Needs only Python 3.11, git and make: uv is installed into .tools/ and builds .venv/ from uv.lock.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
INSTALLED := $(VENV)/.installed
MLFLOW_PORT ?= 5000

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Compile .pyc files at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines) every
# process would otherwise recompile MLflow, pandas and scikit-learn, about 2 s per stage.
export UV_COMPILE_BYTECODE := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install demo repro report test lint format bench mlflow-ui lock clean

help: ## List the tasks
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(INSTALLED) ## Install the locked environment into .venv/ (uv, uv.lock)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "modelops needs Python 3.11: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(INSTALLED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

demo: install ## Install, run the pipeline and the gates on the built-in data, write the report
	modelops params > /dev/null
	dvc repro
	modelops report
	@echo
	@modelops summary

repro: install ## Run the pipeline and the gates (only what changed)
	dvc repro

report: install ## Build the pull-request report against main: reports/report.md
	modelops report

test: install ## Run the whole test suite
	pytest

lint: install ## Check formatting, lint and types
	ruff format --check .
	ruff check .
	mypy

format: install ## Format and auto-fix lint
	ruff format .
	ruff check --fix .

bench: install ## Run the benchmarks; results land in benchmarks/results/
	python benchmarks/bench_pipeline.py
	python benchmarks/bench_gates.py

mlflow-ui: install ## Browse MLflow runs of the local store at http://127.0.0.1:$(MLFLOW_PORT)
	mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/.mlflow/mlflow.db}" \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

lock: $(UV) ## Re-resolve uv.lock after editing dependencies in pyproject.toml
	$(UV) lock

clean: ## Remove environments and caches (not data, models or MLflow runs)
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache benchmarks/.work
