# The study's commands. `make repro` runs the pipeline, `make test` the whole test suite; both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := samaf-study
export PATH := $(CURDIR)/$(BIN):$(PATH)
export OMP_NUM_THREADS ?= 2

.PHONY: setup repro repro-full exp-show smoke test test-full test-unit test-notebooks lab bench check-numerics strip clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[notebooks,pipeline,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "SAMAF study (.venv)" >/dev/null
	@touch $(STAMP)

## the whole pipeline with params.yaml on the embedded corpus, then the README's results section from docs/results.md
repro: $(STAMP)
	$(BIN)/dvc repro
	$(BIN)/python -m samaf_lib.report readme

## the pipeline, then the whole SAMAF ablation grid (docs/samaf.md; hours on 2 cores) into reports/ablation_full/
## (committed), then the report and the README with it; BITS=128 runs one of the sizes of ablation.full_bits,
## ONLY=256-mse,random-256 just those variants (the committed table's other rows are kept)
repro-full: $(STAMP)
	$(BIN)/dvc repro
	$(BIN)/python -m samaf_lib.ablation full $(if $(BITS),--bits $(BITS)) $(if $(ONLY),--only $(ONLY))
	$(BIN)/dvc repro
	$(BIN)/python -m samaf_lib.report readme

## experiments beside the committed run, readable: the parameters and headline metrics that differ (F1 and the
## hashes of data, model and report folders left out)
exp-show: $(STAMP)
	$(BIN)/dvc exp show --no-pager --md --only-changed --drop '.*\.f1|data/.*|models/.*|reports/.*'

## the whole test suite: unit tests, notebooks under nbval, a smoke `dvc repro`
test: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not full"

## the smoke repro, then `make repro-full` on it (the full ablation grid at smoke size): minutes more than `make test`
test-full: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_pipeline.py -m full

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not slow"

## JupyterLab with the project's kernel ("SAMAF study (.venv)"); notebooks run there write under scratch/
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --MultiKernelManager.default_kernel_name=$(KERNEL)

## speed and memory benchmarks (results to reports/bench.json)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python -m samaf_lib.numerics $(BIN)/python benchmarks/train_epoch.py

## whether this machine computes the committed run's numbers (numpy, MFCCs, torch) under the pipeline's pins
check-numerics: $(STAMP)
	$(BIN)/python -m samaf_lib.numerics_check

## strip notebook outputs on disk (run before committing a notebook)
strip: $(STAMP)
	$(BIN)/nbstripout notebooks/*.ipynb

clean-venv:
	rm -rf $(VENV)
