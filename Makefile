# Two entry points (README Quickstart): `make reproduce` and `make test`.
# Each creates the virtual environment .venv from requirements.lock when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
PYTEST_ARGS ?=

.PHONY: reproduce test venv system-deps lint clean

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
	rm -rf results .snakemake
