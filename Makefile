# Two entry points (README Quickstart): `make reproduce` and `make test`.
# Each creates the virtual environment .venv from requirements.lock when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# the suite on every core, one test file per worker (module fixtures such as a shared
# workflow run stay shared within a file), files handed out in collection order (the
# 12-minute paper-scale miniature first: tests/conftest.py); PYTEST_ARGS= runs it serially
PYTEST_ARGS ?= -n auto --dist loadfile --no-loadscope-reorder

.PHONY: reproduce medium paper-mini test venv system-deps lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Full default reproduction: every paper, claims, then the HTML report.
reproduce: venv
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@echo "Done: results/claims.md, results/report.html, results/tables/, results/figures/"

# The medium scale (docs/CLAIMS.md section 2): the claims the default scale cannot reach, on
# the embedded data, in its own folder so that it never overwrites the default results.
MEDIUM_DIR ?= medium
medium: venv
	$(BIN)/snakemake --directory $(MEDIUM_DIR) --configfile $(abspath configs/medium.yaml) --cores $(CORES) --rerun-incomplete
	@echo "Done: $(MEDIUM_DIR)/results/claims.md"

# configs/paper.yaml executed in miniature on the CPU (README "Scales"): every rule of the paper
# DAG, the papers' architectures at full size, tiny files in torchvision's formats written
# into $(MINI_DIR)/data, configs/paper-mini.yaml shrinking only sizes. Results under $(MINI_DIR)/results.
MINI_DIR ?= paper-mini
MINI_CORES ?= 2
paper-mini: venv
	$(BIN)/python -m repro.tiny_datasets $(MINI_DIR)/data
	$(BIN)/snakemake --directory $(MINI_DIR) --configfile $(abspath configs/paper.yaml) $(abspath configs/paper-mini.yaml) \
	  --config data_root=$(abspath $(MINI_DIR))/data --cores $(MINI_CORES) --scheduler greedy --rerun-incomplete
	$(BIN)/snakemake --directory $(MINI_DIR) --configfile $(abspath configs/paper.yaml) $(abspath configs/paper-mini.yaml) \
	  --config data_root=$(abspath $(MINI_DIR))/data --cores $(MINI_CORES) --report $(abspath $(MINI_DIR))/results/report.html
	@echo "Done: $(MINI_DIR)/results/claims.md, $(MINI_DIR)/results/tables/paper_comparison.md, $(MINI_DIR)/results/report.html"

# SLURM and munge for the real-SLURM test (tests/test_slurm.py) on Debian/Ubuntu: installed
# as root (or through passwordless sudo); elsewhere a note, and that test is skipped with
# the reason. The daemons are not started here: the test starts and stops its own.
SBIN_PATH := $(PATH):/usr/sbin:/sbin
system-deps:
	@if PATH="$(SBIN_PATH)" command -v slurmctld >/dev/null && PATH="$(SBIN_PATH)" command -v munged >/dev/null; then \
	  echo "slurm-wlm and munge: installed"; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "note: no apt-get: install slurm-wlm + munge yourself, or the SLURM test is skipped"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; \
	else \
	  echo "note: slurm-wlm/munge not installed and not root: the SLURM test will be skipped"; \
	fi

# Whole test suite, including the real-SLURM workflow test.
test: venv system-deps
	$(BIN)/pytest -ra $(PYTEST_ARGS)

lint: venv
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake paper-mini
