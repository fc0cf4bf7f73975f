"""Shared test helpers: run the real Snakemake workflow in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests" / "configs"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def pytest_collection_modifyitems(config, items):
    """The paper-scale miniature (~12 min, one file) first: under pytest-xdist (`make test`:
    one file per worker, files handed out in collection order with --no-loadscope-reorder)
    it then runs beside the rest of the suite instead of alone after it. Otherwise the order
    is unchanged (stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("paper_mini") is None)


def snakemake(workdir, *args, configfiles=("tiny.yaml",), check=True, timeout=900, env=None):
    """Run the project's Snakefile with results in `workdir`; returns CompletedProcess.

    `args` are Snakemake arguments and targets (a target may follow "--");
    `configfiles` are names in tests/configs/ (merged in order) or absolute paths.
    """
    files = [str(c if Path(c).is_absolute() else CONFIGS / c) for c in configfiles]
    args = list(args)
    targets = []
    if "--" in args:  # keep targets apart from --configfile, which takes several values
        cut = args.index("--")
        args, targets = args[:cut], args[cut + 1:]
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           *args, "--configfile", *files] + (["--", *targets] if targets else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(workdir, *args, configfiles=("tiny.yaml",)) -> dict[str, int]:
    """Job counts per rule from a dry run (`-n`); empty when nothing is to be done."""
    proc = snakemake(workdir, "-n", "--quiet=rules", *args, configfiles=configfiles)
    counts, in_table = {}, False
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: fastest for tiny models on a shared CPU, and the same reduction
    order everywhere (bitwise comparisons need it; the workflow sets threads per rule)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
