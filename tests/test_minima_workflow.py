"""The real `minima` target on a tiny config (digits): outputs exist and make sense, and a
changed analysis setting reruns only analysis rules."""

from __future__ import annotations

import copy
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
    for name in ("sharpness_vs_ratio", "accuracy_vs_ratio", "accuracy_heatmap", "interpolation", "schedules",
                 "memorization", "breaking"):
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
    assert list(claims.id) == ["B1a", "B1b", "B2", "B3a", "B3b", "B4a", "B4b", "B5", "B6", "B7a", "B7b"]
    assert set(claims.verdict) <= {"holds", "fails", "inconclusive"}
    by_id = claims.set_index("id")
    # one seed: every claim is computed but inconclusive (the protocol needs >= 3 seeds)
    assert by_id.loc["B4a", "verdict"] == "inconclusive" and "the protocol needs >= 3" in by_id.loc["B4a", "note"]
    assert by_id.loc["B1a", "verdict"] == "inconclusive" and "only 1 seed" in by_id.loc["B1a", "note"]
    # B7 read both pairs (one differing, one equal eta/S): the curvature at each end by second
    # differences, per seed, or why there is none
    assert "hi_lo: " in by_id.loc["B7a", "note"] and "kappa" in by_id.loc["B7a", "note"]
    assert "equal: " in by_id.loc["B7b", "note"] and "kappa" in by_id.loc["B7b", "note"]
    assert set(by_id.scale) <= {"default", "medium"}
    # B6 ran on the two train sizes; B5 on the label-noise grid
    assert "400:" in claims.set_index("id").loc["B6", "note"] and "full:" in claims.set_index("id").loc["B6", "note"]
    assert "not run at this scale" not in claims.set_index("id").loc["B5", "note"]


@pytest.mark.slow
def test_stop_checks_inside_epochs_in_the_workflow(tiny_run):
    res = tiny_run / "results"
    for run in ("lr0.05_bs16_s0", "lr0.1_bs16_s0", "lr0.05_bs32_s0", "lr0.1_bs32_s0"):
        status = json.loads((res / f"runs/minima_grid/{run}/status.json").read_text())
        stop = status["stop"]
        assert stop["checks_per_epoch"] == 2 and stop["train_loss"] <= 0.6
        before = stop["previous_check"]
        if before is None:  # crossed at the very first check
            assert stop["epoch"] <= 0.5 + 0.01
        else:
            assert before["train_loss"] > 0.6 and stop["epoch"] - before["epoch"] <= 0.5 + 0.01  # one check interval
        assert status["epochs_completed"] == stop["epoch"]


@pytest.mark.slow
def test_memorization_and_breaking_tables(tiny_run):
    res = tiny_run / "results"
    memo = pd.read_csv(res / "tables/minima/memorization.csv")
    assert memo.run.nunique() == 4 and set(memo.label_noise) == {0.25}
    at = memo[memo.metric == "test_acc_at_level"]
    # each run has a value at the target (0.75 + 0.2 * 0.25 = 80% on the noisy labels) or says why not
    assert ((at.value.notna()) | at.note.str.contains("never reached")).all()
    assert memo.target_train_acc.tolist() == pytest.approx([0.8] * len(memo))
    # the noisy labels really are noisy: no run fits its training labels as well as the clean grid runs
    final = memo[memo.metric == "final_train_acc"].value
    assert final.max() < 0.98
    brk = pd.read_csv(res / "tables/minima/breaking.csv")
    assert sorted(brk.beta.unique()) == [1.0, 4.0] and brk.experiment.nunique() == 2
    assert set(brk.train_size.fillna(-1)) == {400, -1}  # -1: the full training set
    assert (brk.groupby("experiment").breaking_beta.nunique() == 1).all()
    assert "breaking beta" in (res / "tables/minima/breaking.md").read_text()


@pytest.mark.slow
def test_interpolation_endpoints_are_the_models_own_losses(tiny_run):
    res = tiny_run / "results"
    table = pd.read_csv(res / "tables/minima/interpolation.csv")
    hi_lo = table[table.pair == "hi_lo"]
    assert len(hi_lo.alpha.unique()) == 25 and hi_lo.alpha.min() == -1 and hi_lo.alpha.max() == 2  # B7 points on the grid
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
    # default job layout: one sharpness job per experiment (grid: 5 runs, beta: 1), one for both pairs
    assert jobs.get("minima_sharpness") == 2 and jobs.get("minima_interpolate") == 1
    assert "minima_schedules" in jobs and "minima_claims" in jobs


@pytest.mark.slow
def test_job_layout_and_a_changed_run_rerun_only_the_parts_that_hold_it(tiny_run, tmp_path):
    """Runs (pairs) measured together are cached per part: a changed run reruns the parts
    that hold it, never the others; the paper scale's layout (1 per job) is one job per run."""
    import shutil

    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2 keeps modification times
    assert planned_jobs(work, *TARGET, configfiles=("tiny_minima.yaml",)) == {}
    sharpness = sorted(p.relative_to(work / "results/metrics/minima") for p in
                       (work / "results/metrics/minima").rglob("*.json"))
    assert [str(p) for p in sharpness] == ["sharpness/minima_beta/part1of1.json", "sharpness/minima_grid/part1of1.json"]
    assert len(json.loads((work / "results/metrics/minima/sharpness/minima_grid/part1of1.json").read_text())) == 5

    def change(run):  # new content (Snakemake reruns on a changed checksum, not on a touch)
        with open(work / f"results/runs/{run}/status.json", "a") as status:
            status.write("\n")

    change("minima_beta/beta2_s0")  # in no pair
    jobs = planned_jobs(work, *TARGET, configfiles=("tiny_minima.yaml",))
    assert jobs.get("minima_sharpness") == 1 and "minima_interpolate" not in jobs and "train" not in jobs
    change("minima_grid/lr0.05_bs32_s0")  # end b of pair hi_lo
    jobs = planned_jobs(work, *TARGET, configfiles=("tiny_minima.yaml",))
    assert jobs.get("minima_sharpness") == 2 and jobs.get("minima_interpolate") == 1 and "train" not in jobs
    cfg = yaml.safe_load((CONFIGS / "tiny_minima.yaml").read_text())
    own = copy.deepcopy(cfg)
    own["experiments"]["minima_beta"]["analysis"]["sharpness"] = {"n_probes": 12}  # one experiment's setting
    changed = tmp_path / "own.yaml"
    changed.write_text(yaml.safe_dump(own, sort_keys=False))
    jobs = planned_jobs(tiny_run, *TARGET, configfiles=(changed,))
    assert jobs.get("minima_sharpness") == 1 and "minima_interpolate" not in jobs and "train" not in jobs
    cfg["minima"]["sharpness"]["runs_per_job"] = 1
    cfg["minima"]["interpolation"]["pairs_per_job"] = 1
    one_each = tmp_path / "one_each.yaml"
    one_each.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(tiny_run, *TARGET, configfiles=(one_each,))
    assert jobs.get("minima_sharpness") == 6 and jobs.get("minima_interpolate") == 2 and "train" not in jobs
