"""Paper D end to end: the real `breakeven` target on the tiny digits config, and partial
reruns when an analysis setting changes (never retraining)."""

import json

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, planned_jobs, snakemake

pytestmark = pytest.mark.slow

TINY = "tiny_breakeven.yaml"
TABLES = ["trajectories.csv", "trajectories.md", "runs.csv", "maxima.csv", "maxima.md", "cost.csv"]
FIGURES = ["trajectories", "early_phase", "bn", "extra"]


def variant(tmp_path, name, edit):
    cfg = yaml.safe_load((CONFIGS / TINY).read_text())
    edit(cfg)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of the params Snakemake compares
    return str(path)


def test_breakeven_target_on_tiny_config(workdir, tmp_path):
    snakemake(workdir, "breakeven", configfiles=(TINY,))
    res = workdir / "results"
    for name in TABLES:
        assert (res / "tables/breakeven" / name).stat().st_size > 0
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (res / "figures/breakeven" / f"{name}.{ext}").stat().st_size > 1000

    # one JSON per run, one record per expected snapshot; the diverged run's later snapshots
    # are missing, with the reason
    runs = pd.read_csv(res / "tables/breakeven/runs.csv").set_index("run")
    assert runs.loc["lr50_bs64_s0", "status"] == "diverged" and not runs.loc["lr50_bs64_s0", "valid"]
    assert runs.loc["lr50_bs64_s0", "n_missing_snapshots"] == 1
    recs = json.loads((res / "metrics/breakeven/breakeven_tiny/lr50_bs64_s0.json").read_text())["records"]
    assert [r["snapshot"] for r in recs] == ["e0", "e2"]
    assert recs[1]["status"] == "missing" and "diverged" in recs[1]["reason"]
    assert runs.loc["lr0.05_bs64_s0", "status"] == "completed"
    assert runs["valid"].sum() >= 2

    traj = pd.read_csv(res / "tables/breakeven/trajectories.csv")
    assert set(traj.columns) >= {"experiment", "run", "seed", "lr", "batch_size", "epoch", "step", "metric", "value"}
    ok = traj[(traj.run == "lr0.05_bs64_s0")].pivot_table(index="epoch", columns="metric", values="value")
    assert list(ok.index) == [0.0, 2.0]
    for metric in ("lambda1_K", "lambda1_H", "trace_K", "lambda_star_K", "train_acc", "g_over_gtop"):
        assert (ok[metric] > 0).all(), metric
    assert ((ok.lambda_star_K <= ok.lambda1_K) & (ok.lambda1_K <= ok.trace_K)).all()
    assert (ok.conditioning_K <= 1).all() and (ok.g_over_gtop >= 1 - 1e-9).all()
    assert (ok.lr_lambda1_H - 0.05 * ok.lambda1_H).abs().max() < 1e-9
    bn = traj[(traj.experiment == "breakeven_tinybn") & (traj.metric == "gamma_norm")]
    assert len(bn) == 2 and (bn.value > 0).all()
    # BN net: training-mode values and eval-mode values beside them; without BN they coincide
    bn_wide = traj[traj.experiment == "breakeven_tinybn"].pivot_table(index="epoch", columns="metric", values="value")
    assert (bn_wide.lambda1_H_eval > 0).all() and (bn_wide.lambda1_K_eval > 0).all()
    assert (ok.lambda1_H_eval == ok.lambda1_H).all() and (ok.trace_K_eval == ok.trace_K).all()
    assert not (traj.metric == "gamma_norm").loc[traj.experiment == "breakeven_tiny"].any()
    gone = traj[(traj.run == "lr50_bs64_s0") & (traj.metric == "all")]
    assert len(gone) == 1 and gone.value.isna().all() and gone.note.str.contains("diverged").all()

    maxima = pd.read_csv(res / "tables/breakeven/maxima.csv")
    m = maxima[(maxima.run == "lr0.05_bs64_s0") & (maxima.metric == "max_lambda1_K")].iloc[0]
    assert m.value == pytest.approx(ok.lambda1_K.max()) and m.epoch_of_max == ok.lambda1_K.idxmax()

    claims = pd.read_csv(res / "claims/breakeven.csv")
    # one claim per sweep: the MLP's eta sweep (no BN: -cnn) and its S sweep; the VGG-BN has one run
    assert list(claims.id) == ["D1a-cnn", "D1b-cnn", "D1c", "D1d", "D2a-cnn", "D2b-cnn", "D2c", "D2d", "D3a", "D3b"]
    assert set(claims.verdict) == {"inconclusive"}       # one seed: the protocol needs 3
    assert claims.set_index("id").loc["D1a-cnn", "note"].count("lr50_bs64_s0") >= 1   # the left-out run is named

    # cached: nothing to do; a measurement setting reruns curvature, never training
    assert planned_jobs(workdir, "breakeven", configfiles=(TINY,)) == {}
    n_runs = len(list((res / "metrics/breakeven").glob("*/*.json")))
    assert n_runs == 5
    tol = variant(tmp_path, "tol.yaml", lambda c: c["breakeven"]["hessian"].update(tol=0.01))
    jobs = planned_jobs(workdir, "breakeven", configfiles=(tol,))
    assert "train" not in jobs and "breakeven_probe" not in jobs and jobs["breakeven_curvature"] == n_runs
    # a per-experiment override reaches only that experiment's run (one job for its snapshots)
    override = variant(tmp_path, "ov.yaml",
                       lambda c: c["experiments"]["breakeven_tinybn"].setdefault("analysis", {}).update(
                           covariance={"top": 1}))
    jobs = planned_jobs(workdir, "breakeven", configfiles=(override,))
    assert "train" not in jobs and jobs["breakeven_curvature"] == 1
    # a change to one run retrains and remeasures that run only
    one_run = variant(tmp_path, "run.yaml", lambda c: c["experiments"]["breakeven_tiny"]["runs"][1]["set"].update(
        {"train.lr": 0.4}))
    jobs = planned_jobs(workdir, "breakeven", configfiles=(one_run,))
    assert jobs["train"] == 1 and jobs["breakeven_curvature"] == 1 and "breakeven_probe" not in jobs
    # the threshold accuracy only changes tables, figures and claims
    thr = variant(tmp_path, "thr.yaml", lambda c: c["experiments"]["breakeven_tiny"]["analysis"].update(
        threshold_accuracy=0.4))
    jobs = planned_jobs(workdir, "breakeven", configfiles=(thr,))
    assert set(jobs) == {"breakeven_tables", "breakeven_figures", "breakeven_claims", "breakeven"}


def test_invalid_breakeven_analysis_is_rejected_before_any_job(workdir, tmp_path):
    bad = variant(tmp_path, "bad.yaml", lambda c: c["experiments"]["breakeven_tiny"]["analysis"].update(
        hessian={"k": 0}))
    proc = snakemake(workdir, "-n", "breakeven", configfiles=(bad,), check=False)
    assert proc.returncode != 0
    assert "experiments.breakeven_tiny.analysis.hessian.k" in proc.stdout + proc.stderr
