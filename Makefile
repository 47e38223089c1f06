# Two commands for a fresh Linux machine with Python 3.10+:  make demo   and   make test
# Both create .venv when missing and reinstall only when setup.cfg/pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# The CPU build of torch: on a machine without CUDA never pull the multi-GB CUDA wheels.
TORCH_CPU := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: demo test lint docs notebooks bench clean install fuzz
.DEFAULT_GOAL := help

help:
	@echo "make demo   create .venv, install, discover invariants and train a modular network (out/)"
	@echo "make test   create .venv if missing, install with test extras, lint, run the whole suite"
	@echo "make fuzz   long property-based fuzzing (FUZZ_SCALE=30 times CI's inputs; findings in out/)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# torch first, so that the package's `torch>=2.1` is already satisfied by the CPU build
$(VENV)/.torch: | $(PY)
	@if $(PY) -c "import torch" 2>/dev/null; then :; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then $(PIP) install torch; \
	else $(PIP) install "$(TORCH_CPU)" || $(PIP) install torch --index-url $(TORCH_CPU_INDEX); fi
	@touch $@

# compat mode: a path entry for the checkout, so packages added later import without reinstalling
EDITABLE := --config-settings editable_mode=compat

$(VENV)/.installed: setup.cfg pyproject.toml $(VENV)/.torch
	$(PIP) install $(EDITABLE) -e .
	@touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(PIP) install $(EDITABLE) -e ".[test,notebooks,docs,explore]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/aipoincare discover examples/lotka_volterra_3.toml --json out/lotka_volterra_3.json --plot out/lotka_volterra_3.png
	$(BIN)/aipoincare discover examples/fluid_3d.toml --json out/fluid_3d.json --plot out/fluid_3d.png
	$(BIN)/bimt train independence --steps 20000 --out out/bimt-independence
	@echo "pictures and results written to out/"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check traincore aipoincare bimt tests benchmarks examples

test: lint
	@# pytest exits 5 when it collects nothing: a broken suite, said plainly
	$(PY) -m pytest -q; rc=$$?; [ $$rc -ne 5 ] || echo "error: pytest collected no tests"; exit $$rc
	$(MAKE) --no-print-directory docs

docs: $(VENV)/.installed-test
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# CI runs the fuzz tests with a fixed seed (about a minute); this is the long, random run.
# Every input that breaks a property is recorded in out/fuzz-findings.jsonl and the run goes
# on; the tally of inputs tried is printed and written to out/fuzz-report.txt.
FUZZ_SCALE ?= 30
fuzz: $(VENV)/.installed-test
	@mkdir -p out && rm -f out/fuzz-findings.jsonl
	FUZZ_PROFILE=long FUZZ_SCALE=$(FUZZ_SCALE) FUZZ_COLLECT=out/fuzz-findings.jsonl \
	FUZZ_REPORT=out/fuzz-report.txt $(PY) -m pytest -q -m fuzz tests/fuzz \
	    --hypothesis-show-statistics -p no:cacheprovider

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) out docs/_build .pytest_cache .ruff_cache .hypothesis *.egg-info
