"""Building the DAG of every paper imports no torch and no plotting library.

Snakemake parses the whole workflow for every command (a dry run, `--report`, each cluster
job's own start), so whatever the rule files import at parse time is paid for again and
again; torch alone costs seconds. The rules import only each paper's `plan` module and the
torch-free shared ones; this test runs a real dry run of config.yaml (all four papers) with
Python's import profiler and reads back every module the parse imported.
"""

from __future__ import annotations

from conftest import REPO, snakemake

HEAVY = ("torch", "matplotlib", "seaborn")
PLANS = [f"repro.{paper}.plan" for paper in ("iterative", "minima", "heinit", "breakeven")]
# one job per paper that only exists when that paper's DAG was built
PAPER_RULES = ("iterative_tables", "minima_sharpness", "heinit_sweep", "breakeven_curvature")


def imported_modules(stderr: str) -> set[str]:
    """The module names of `python -X importtime`'s report ("import time: self | cumulative | name")."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def test_dry_run_of_every_paper_imports_no_torch_or_plotting(tmp_path):
    proc = snakemake(tmp_path, "-n", "--quiet=rules", configfiles=(REPO / "config.yaml",),
                     env={"PYTHONPROFILEIMPORTTIME": "1"})
    planned = proc.stdout + proc.stderr
    assert all(rule in planned for rule in PAPER_RULES), planned[-3000:]
    modules = imported_modules(proc.stderr)
    assert set(PLANS) <= modules, "the import report does not list the paper plans"
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"parsing the workflow imported {heavy[:10]}"
