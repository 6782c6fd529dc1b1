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
SERVING_INSTALLED := serving/.venv/.installed
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 9000
SERVE_METRICS_PORT ?= 6000
# Test processes: one per core of the 2-core machines the suite is sized for, and one more that
# takes the rehearsals, which mostly wait on the clock (tests/scheduling.py). A module (or a
# test class) stays whole on one worker (--dist loadscope): its fixtures are built once.
TEST_WORKERS ?= 3

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Bytecode is cached as modules are first imported, in the environments' __pycache__: where
# PYTHONDONTWRITEBYTECODE is set (as on CI machines) every process would otherwise recompile
# MLflow, pandas and scikit-learn, about 2 s per stage. Compiling all 28,000 files of the three
# environments at install instead (UV_COMPILE_BYTECODE) took 30 s on two cores; most are never
# imported.
unexport PYTHONDONTWRITEBYTECODE
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install install-pipeline install-spark install-spark-connect install-edge spark-image demo repro exp-show report serve up down render status test lint format bench mlflow-ui lock clean

help: ## List the tasks
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(INSTALLED) $(SERVING_INSTALLED) ## Install the locked environments: .venv/ and serving/.venv/

install-pipeline: $(INSTALLED) ## Install only .venv/ (what the release workflows need)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "modelops needs Python 3.11: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(INSTALLED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

# The model server has its own environment: seldon-core 1.17 cannot share one with Deepchecks.
$(SERVING_INSTALLED): $(UV) serving/pyproject.toml serving/uv.lock
	cd serving && ../$(UV) sync --frozen
	@touch $@

# The `spark` group added to the serving environment and nothing else touched (--inexact,
# --no-install-project; without UV_PYTHON, which uv would take for a different interpreter when
# it is a pyenv shim, and rebuild the environment), so the tests can run it while other tests run
# the server from there. A no-op once installed; `make install` may remove pyspark again.
install-spark: $(SERVING_INSTALLED) ## Add pyspark (~480 MB, needs Java 17) to serving/.venv/ for modelops-score --engine spark
	cd serving && env -u UV_PYTHON ../$(UV) sync --frozen --group spark --inexact --no-install-project

# `modelops-score` as a Spark Connect client (SPARK_REMOTE=sc://...): the batch engine in an
# environment of its own, serving/.venv-connect, without seldon-core, whose protobuf pin rules
# out Spark Connect's client (serving/pyproject.toml's `connect` group).
CONNECT_INSTALLED := serving/.venv-connect/.installed
install-spark-connect: $(CONNECT_INSTALLED) ## Build serving/.venv-connect/: modelops-score for a Spark Connect server (SPARK_REMOTE=sc://...)
$(CONNECT_INSTALLED): $(UV) serving/pyproject.toml serving/uv.lock
	cd serving && UV_PROJECT_ENVIRONMENT=.venv-connect ../$(UV) sync --frozen --no-default-groups --group connect
	@touch $@

# The edge exporter (`modelops export`): skl2onnx, onnxruntime, Treelite, TL2cgen and OpenSSF
# model-signing in an environment of their own, edge/.venv (skl2onnx's tree converter fails under
# the pipeline's protobuf 7). ~580 MB; a no-op once built. Native bundles also need gcc.
EDGE_INSTALLED := edge/.venv/.installed
install-edge: $(EDGE_INSTALLED) ## Build edge/.venv/: the exporter of `modelops export` (ONNX, compiled trees, signing)
$(EDGE_INSTALLED): $(UV) edge/pyproject.toml edge/uv.lock edge/device/pyproject.toml
	cd edge && ../$(UV) sync --frozen
	@touch $@

# The image spark-operator runs the driver and executors of a batch environment with engine spark
# in (serving/Dockerfile.spark): the serving environment with the `spark` group, Java 17 and an
# entrypoint for Spark's pods. Push it and name it in params.yaml (runbooks/batch-scoring.md).
SPARK_IMAGE ?= modelops-spark:dev
spark-image: ## Build serving/Dockerfile.spark, the image of batch engine spark, tagged SPARK_IMAGE=$(SPARK_IMAGE) (needs Docker)
	docker build -f serving/Dockerfile.spark -t $(SPARK_IMAGE) serving/

demo: install ## Install, run the pipeline and gates on the built-in data, report, render, serve one request
	modelops params > /dev/null
	dvc repro
	modelops report
	modelops release preview
	serving/.venv/bin/python -m modelops_serving.cli smoke models/model
	@echo
	@modelops summary

repro: install ## Run the pipeline and the gates (only what changed)
	dvc repro

# `dvc exp show` has no setting for its default columns (160 here): keep the headline metrics and
# the params that differ between the rows; Markdown, so that no column is cut at the terminal's edge.
EXP_METRICS := roc_auc|average_precision|recall|log_loss
exp-show: install-pipeline ## Compare experiments: headline metrics and the params that differ
	dvc exp show --no-pager --md --only-changed \
		--keep '^(Experiment|$(EXP_METRICS))$$' --drop '^(?!(prepare|train|evaluate|gates)\.)'

report: install ## Build the pull-request report against main: reports/report.md
	modelops report

serve: install ## Serve the trained model on 127.0.0.1:$(SERVE_PORT); Ctrl-C stops all of it
	@test -f models/model/MLmodel || { echo "error: no trained model in models/model: run make repro" >&2; exit 1; }
	serving/.venv/bin/python -m modelops_serving.cli serve models/model \
		--port $(SERVE_PORT) --metrics-port $(SERVE_METRICS_PORT)

up: install ## Rehearse production on 127.0.0.1: Prometheus, stable and canary servers, traffic (a batch --env: a Pushgateway, scheduled runs)
	@test -f models/model/MLmodel || { echo "error: no trained model in models/model: run make repro" >&2; exit 1; }
	modelops up $(UP_ARGS)

down: install-pipeline ## Stop exactly what `make up` started
	modelops down

render: install ## Regenerate manifests/rendered/, argocd/ and prometheus/ from templates, releases and objectives
	modelops render

status: install ## Show what each environment serves, its canary step and history
	modelops release status

test: install ## Run the whole test suite (TEST_WORKERS=1 for one process)
	python -m slipcover --json --out reports/coverage.json -m pytest -n $(TEST_WORKERS) --dist loadscope
	python -m tests.coverage_floor reports/coverage.json

lint: install install-edge ## Check formatting, lint, types, and that manifests/ is what renders
	modelops render --check
	ruff format --check .
	ruff check .
	mypy
	mypy --python-executable serving/.venv/bin/python --strict --ignore-missing-imports \
		serving/modelops_serving serving/contract/modelops_contract \
		tests/serving/faulty/faulty_server.py tests/serving/clients/seldon_client_calls.py
	mypy --python-executable edge/.venv/bin/python --strict --ignore-missing-imports \
		edge/modelops_edge edge/device/modelops_device

format: install ## Format and auto-fix lint
	ruff format .
	ruff check --fix .

bench: install install-edge ## Run the benchmarks; results land in benchmarks/results/
	python -m benchmarks.bench_pipeline
	python -m benchmarks.bench_gates
	python -m benchmarks.bench_latency
	python -m benchmarks.bench_serving
	python -m benchmarks.bench_render
	python -m benchmarks.bench_rules
	python -m benchmarks.bench_canary
	python -m benchmarks.bench_monitor
	python -m benchmarks.bench_experiments
	python -m benchmarks.bench_capacity
	python -m benchmarks.bench_edge

mlflow-ui: install ## Browse MLflow runs of the local store at http://127.0.0.1:$(MLFLOW_PORT)
	mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/.mlflow/mlflow.db}" \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

lock: $(UV) ## Re-resolve uv.lock after editing dependencies in pyproject.toml
	$(UV) lock

clean: ## Remove environments and caches (not data, models or MLflow runs)
	rm -rf $(VENV) serving/.venv serving/.venv-connect edge/.venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache benchmarks/.work
