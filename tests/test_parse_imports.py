"""Building the workflow's DAG imports no torch and no plotting library (issue 16): the
rules import only each paper's `plan`, so a dry run or a partial rerun starts in a second
instead of paying the 3-4 s of `import torch`, and the head node of a cluster never needs
a GPU build of torch to plan jobs. Checked on config.yaml, whose DAG holds all four papers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "matplotlib", "seaborn")


@pytest.mark.slow
def test_building_the_dag_of_every_paper_imports_no_torch(tmp_path):
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
         "-d", str(tmp_path), "--configfile", str(ROOT / "config.yaml"), "-n", "--quiet", "rules"],
        capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    imported = {m.group(1) for m in re.finditer(r"^import time:.*\|\s*([\w.]+)\s*$", run.stderr, re.M)}
    stats = run.stdout + run.stderr
    for paper in ("iterative", "minima", "heinit", "breakeven"):
        assert f"{paper}_claims" in stats, f"the dry run did not plan paper {paper}"
    assert f"repro.{'iterative'}.plan" in imported  # the import list was read
    assert not sorted(m for m in imported if m.split(".")[0] in HEAVY)
