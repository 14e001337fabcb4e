# Meta-GAIN reproduction harness. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= paper
# LAUNCHER: joblib | local | submitit_local | submitit_slurm | slurm (conf/hydra/launcher/slurm.yaml)
LAUNCHER ?= joblib

.PHONY: help setup setup-hyperimpute test test-slow reproduce report export merge plan costs calibrate bench clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

setup:  ## create .venv and install the package (CPU torch wheel first, so no CUDA build is pulled)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e .

setup-hyperimpute: setup  ## optional: the HyperImpute baseline, lean (no TensorFlow/Jupyter)
	$(PY) -m pip install -q --no-deps "hyperimpute==0.1.17"
	$(PY) -m pip install -q "optuna==5.0.0" "loguru==0.6.*" "pydantic==2.14.4" cloudpickle "redis==8.1.0" "catboost==1.2.10"

test:  ## run the test suite (what .ci/run calls)
	$(PY) -m pytest -q

test-slow:  ## the slow quality checks (beats-Mean tests, long sweeps)
	$(PY) -m pytest -q -m slow

calibrate:  ## rerun the calibration study and rewrite results/calibration.md
	$(PY) -m scripts.calibrate

report:  ## rebuild results/PROFILE/ (tables, figures, REPORT, PROVENANCE) from the store and exports; runs no cell
	$(PY) -m experiments.report --profile $(PROFILE)

export:  ## write PROFILE's current canonical rows to results/PROFILE/rows.csv.gz (commit it to carry results)
	$(PY) -m experiments.export --profile $(PROFILE)

merge:  ## combine exports from other machines (FILES="a.csv.gz b.csv.gz") into results/PROFILE/rows.csv.gz
	$(PY) -m experiments.export --profile $(PROFILE) --merge $(FILES)

plan:  ## how many cells PROFILE has, how many are done, and the time left
	$(PY) -m experiments.reproduce --profile $(PROFILE) --plan

costs:  ## measure this machine's unit costs for `make plan` (1-2 min; results/cache/costs-<host>.json)
	$(PY) -m experiments.costs --calibrate

reproduce:  ## run every sweep of PROFILE (resuming), then tables, figures and REPORT.md
	$(PY) -m experiments.reproduce --profile $(PROFILE) --launcher $(LAUNCHER)

bench:  ## print the step benchmarks: Meta-GAIN variants, batched K=15 vs one fit per model, the paper estimate
	$(PY) -m scripts.bench_step

clean:  ## remove caches (keeps the run store)
	rm -rf .pytest_cache multirun outputs
