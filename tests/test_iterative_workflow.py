"""The `iterative` target end to end on a tiny config (digits, three small ResNets, one epoch).

Targets are passed after "--" (conftest.snakemake keeps them apart from --configfile,
which takes several values).
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import CONFIGS, planned_jobs, snakemake
from repro.claims import COLUMNS, VERDICTS
from repro.iterative.plan import FIGURES, TABLES

TARGET = ("--", "iterative")


@pytest.mark.slow
def test_iterative_target_on_tiny_config(workdir):
    snakemake(workdir, *TARGET, configfiles=("tiny_iterative.yaml",))
    res = workdir / "results"
    claims = pd.read_csv(res / "claims" / "iterative.csv")
    assert list(claims.columns) == COLUMNS
    assert list(claims["id"]) == ["A1a", "A1b", "A2", "A3", "A4a", "A4b", "A5", "A6", "A7"]
    assert set(claims["verdict"]) <= set(VERDICTS)
    measured = claims[claims["value"].notna()]
    assert len(measured) and measured["interval"].str.contains(r"seeds \[0\]").all()
    # one seed (< 3): a value is shown, but no verdict is read from it (docs/CLAIMS.md 1.1)
    assert (claims["verdict"] == "inconclusive").all()
    for name in TABLES:
        assert (res / "tables" / "iterative" / f"{name}.csv").stat().st_size > 0
        assert (res / "tables" / "iterative" / f"{name}.md").stat().st_size > 0
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (res / "figures" / "iterative" / f"{name}.{ext}").stat().st_size > 5000, name

    blocks = pd.read_csv(res / "tables" / "iterative" / "blocks.csv")
    cos = blocks[(blocks.metric == "cosine") & (blocks.split == "test")]
    assert cos.groupby("run").size().to_dict() == {"unshared_s0": 6}  # measure_variants: [unshared]
    assert cos["value"].between(-1, 1).all()
    ratio = blocks[blocks.metric == "norm_ratio"]["value"]
    assert (ratio > 0).all()
    drop = pd.read_csv(res / "tables" / "iterative" / "drop.csv")
    assert len(drop[(drop.kind == "shuffle") & (drop.metric == "accuracy")]) == 1  # analysis: {n_shuffles: 1}
    heads = pd.read_csv(res / "tables" / "iterative" / "heads.csv")
    assert set(heads.epoch) == {0.0, 0.5, 1.0} and set(heads.run) == {"unshared_s0", "naive_s0", "ubn_s0"}
    init = pd.read_csv(res / "tables" / "iterative" / "init.csv")
    growth = init[init.metric == "growth"].groupby("variant")["value"].mean()  # over stages
    assert growth["naive"] > growth["UBN"]  # at init: naive sharing grows activations, UBN does not
    table1 = pd.read_csv(res / "tables" / "iterative" / "table1.csv")
    assert sorted(table1["variant"]) == ["UBN", "naive", "unshared"]
    assert table1["test_error_mean"].between(0, 100).all()

    # nothing left to do; then a changed analysis setting reruns analysis rules only
    assert planned_jobs(workdir, *TARGET, configfiles=("tiny_iterative.yaml",)) == {}
    text = (CONFIGS / "tiny_iterative.yaml").read_text()
    assert text.count("unroll: {steps: 3,") == 1
    changed = workdir / "changed.yaml"
    changed.write_text(text.replace("unroll: {steps: 3,", "unroll: {steps: 2,"))
    jobs = planned_jobs(workdir, *TARGET, configfiles=(str(changed),))
    assert "train" not in jobs and "iterative_snapshot_metrics" not in jobs
    assert jobs.get("iterative_model_metrics") == 1
    assert {"iterative_tables", "iterative_figures", "iterative_claims"} <= set(jobs)
