"""The real `minima` target on a tiny config (digits): outputs exist and make sense, and a
changed analysis setting reruns only analysis rules."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, planned_jobs, snakemake

# "--" ends the --configfile list that conftest puts before the extra arguments
TARGET = ("--", "minima")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("minima")
    snakemake(work, *TARGET, configfiles=("tiny_minima.yaml",))
    return work


@pytest.mark.slow
def test_minima_target_outputs(tiny_run):
    res = tiny_run / "results"
    for name in ("sharpness_vs_ratio", "accuracy_vs_ratio", "accuracy_heatmap", "interpolation", "schedules"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / "minima" / f"{name}.{ext}").stat().st_size > 5000, name

    runs = pd.read_csv(res / "tables/minima/runs.csv")
    lam = runs[runs.metric == "lambda_max"].set_index("run")
    # the run meant to diverge has no sharpness (NaN + reason), never a number
    assert lam.loc["diverge_s0", "status"] == "diverged"
    assert math.isnan(lam.loc["diverge_s0", "value"]) and "diverged" in lam.loc["diverge_s0", "note"]
    ok = lam[lam.status == "completed"]
    assert len(ok) == 5 and (ok.value > 0).all() and ok.matched.all()
    # each matched run stopped at the target loss: its final train loss is <= the target
    loss = runs[(runs.metric == "train_loss") & runs.matched]
    assert (loss.value <= loss.target_loss).all()
    assert set(runs[runs.equal_ratio].run) == {"lr0.05_bs16_s0", "lr0.1_bs32_s0", "beta2_s0"}

    claims = pd.read_csv(res / "claims/minima.csv")
    assert list(claims.id) == ["B1a", "B1b", "B2", "B3a", "B3b", "B4a", "B4b"]
    assert set(claims.verdict) <= {"holds", "fails", "inconclusive"}
    assert claims.set_index("id").loc["B4a", "verdict"] == "inconclusive"  # one seed: no noise estimate


@pytest.mark.slow
def test_interpolation_endpoints_are_the_models_own_losses(tiny_run):
    res = tiny_run / "results"
    table = pd.read_csv(res / "tables/minima/interpolation.csv")
    hi_lo = table[table.pair == "hi_lo"]
    assert len(hi_lo.alpha.unique()) == 25 and hi_lo.alpha.min() == -1 and hi_lo.alpha.max() == 2
    for alpha, run in ((0.0, "lr0.1_bs16_s0"), (1.0, "lr0.05_bs32_s0")):
        final = json.loads((res / f"runs/minima_grid/{run}/status.json").read_text())["final"]
        at = hi_lo[(hi_lo.alpha == alpha) & (hi_lo.split == "train")].set_index("metric").value
        assert at["loss"] == pytest.approx(final["train_loss"], rel=1e-5)
        assert at["accuracy"] == pytest.approx(final["train_acc"], abs=1e-9)
        at = hi_lo[(hi_lo.alpha == alpha) & (hi_lo.split == "test")].set_index("metric").value
        assert at["loss"] == pytest.approx(final["test_loss"], rel=1e-5)


@pytest.mark.slow
def test_schedule_eta_over_s_bookkeeping(tiny_run):
    res = tiny_run / "results"
    finals = pd.read_csv(res / "tables/minima/schedules.csv")
    ratio = finals[finals.metric == "mean_lr_over_batch"].set_index("schedule").value
    # cyclic BS 16<->80 at eta 0.1 mirrors cyclic LR 0.02<->0.1 at S 16 (up to integer S)
    assert ratio["cyclic BS"] == pytest.approx(ratio["cyclic LR"], rel=0.02)
    assert ratio["constant eta=0.02, S=16"] == pytest.approx(0.02 / 16)
    assert set(finals.kind) == {"cyclic BS", "cyclic LR", "constant"}
    hist = pd.read_csv(res / "runs/minima_schedules/cbs_s0/history.csv")
    assert hist.batch_size.tolist()[1:] == [80, 16, 80, 16]
    assert "89.39" in (res / "tables/minima/schedules.md").read_text()


@pytest.mark.slow
def test_changing_analysis_settings_never_retrains(tiny_run, tmp_path):
    cfg = yaml.safe_load((CONFIGS / "tiny_minima.yaml").read_text())
    assert planned_jobs(tiny_run, *TARGET, configfiles=("tiny_minima.yaml",)) == {}
    cfg["minima"]["sharpness"]["n_probes"] = 12  # paper-wide metric setting
    cfg["minima"]["interpolation"]["num"] = 31
    cfg["experiments"]["minima_schedules"]["analysis"]["paper_accuracy"]["cbs"] = 90.0  # per-experiment
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(tiny_run, *TARGET, configfiles=(changed,))
    assert "train" not in jobs
    assert jobs.get("minima_sharpness") == 6 and jobs.get("minima_interpolate") == 1
    assert "minima_schedules" in jobs and "minima_claims" in jobs
