"""Real Snakemake runs of the tiny config: outputs, caching and partial reruns."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, planned_jobs, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One complete run of the tiny config, shared by the tests below (each copies it)."""
    work = tmp_path_factory.mktemp("tiny")
    snakemake(work)
    return work


def copy_of(done, tmp_path):
    dst = tmp_path / "w"
    shutil.copytree(done, dst, symlinks=True)
    return dst


def test_end_to_end_outputs(done):
    runs = done / "results" / "runs" / "tiny"
    assert sorted(p.name for p in runs.iterdir()) == ["lr0.05_s0", "lr0.1_s0"]
    for run in runs.iterdir():
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "completed" and status["epochs_completed"] == 2
        assert sorted(p.name for p in (run / "snapshots").glob("*.pt")) == ["e0.pt", "e1.pt", "e2.pt"]
        assert len(pd.read_csv(run / "history.csv")) == 3
    log = (done / "results/logs/train/tiny/lr0.1_s0.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log  # per-epoch progress lines
    table = pd.read_csv(done / "results/run_table.csv")
    assert set(table["run"]) == {"lr0.05_s0", "lr0.1_s0"}
    assert (done / "results/claims.md").exists()


def test_second_run_has_nothing_to_do(done):
    assert planned_jobs(done) == {}
    proc = snakemake(done, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_run_parameter_reruns_only_that_experiment(done, tmp_path):
    work = copy_of(done, tmp_path)
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg["experiments"]["other"] = {**cfg["experiments"]["tiny"], "grid": {"train.lr": [0.2]}}
    first = tmp_path / "two.yaml"
    first.write_text(yaml.safe_dump(cfg))
    snakemake(work, configfiles=(first,))
    cfg["experiments"]["other"]["train"] = {**cfg["experiments"]["other"]["train"], "epochs": 3}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(work, configfiles=(changed,))
    assert jobs.get("train") == 1  # only other/lr0.2_s0, not the two tiny runs
    proc = snakemake(work, "-n", configfiles=(changed,))
    assert "results/runs/other/lr0.2_s0" in proc.stdout and "results/runs/tiny/" not in proc.stdout.split("run_table")[0]


def test_deleting_an_artifact_reruns_only_its_job_and_dependents(done, tmp_path):
    work = copy_of(done, tmp_path)
    (work / "results/runs/tiny/lr0.05_s0/status.json").unlink()
    assert planned_jobs(work) == {"train": 1, "all": 1}


def test_until_and_forcerun(done, tmp_path):
    work = copy_of(done, tmp_path)
    assert planned_jobs(work, "--forcerun", "train") == {"train": 2, "all": 1}
    assert planned_jobs(work, "--forcerun", "train", "--until", "train") == {"train": 2}


def test_batched_runs_equal_the_runs_trained_one_per_job(done, tmp_path):
    """train_batch {by: seed}: the seeds of one run spec train in one job (a rule per batch);
    every run's files are byte for byte those its own job writes. Seed 0 trains second in
    its batch here, after seed 1 has used the process."""
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg["train_batch"] = {"by": "seed"}
    cfg["experiments"]["tiny"]["seeds"] = [1, 0]
    batched = tmp_path / "batched.yaml"
    batched.write_text(yaml.safe_dump(cfg, sort_keys=False))  # model.pt pickles the model spec in key order
    work = tmp_path / "w"
    runs = [f"results/runs/tiny/lr{lr}_s{seed}/status.json" for lr in ("0.05", "0.1") for seed in (1, 0)]
    rules = {"train_tiny_lr0_05_s1_0": 1, "train_tiny_lr0_1_s1_0": 1}
    assert planned_jobs(work, "--", *runs, configfiles=(batched,)) == rules  # no one-run `train` job
    snakemake(work, "--", *runs, configfiles=(batched,))
    for run in ("lr0.05_s0", "lr0.1_s0"):
        mine, theirs = work / "results/runs/tiny" / run, done / "results/runs/tiny" / run
        files = sorted(p.relative_to(mine) for p in mine.rglob("*") if p.is_file() and p.name != "timing.csv")
        assert files == sorted(p.relative_to(theirs) for p in theirs.rglob("*")
                               if p.is_file() and p.name != "timing.csv")
        assert len(files) > 6  # model, history, status, snapshots (and their checksums)
        for f in files:
            assert (mine / f).read_bytes() == (theirs / f).read_bytes(), (run, f)
    log = (work / "results/logs/train_batch/tiny/lr0.1_s1+0.log").read_text()
    assert "run lr0.1_s1 (1 of 2" in log and "run lr0.1_s0 (2 of 2" in log and log.count("epoch 2/2") == 2
    assert (work / "results/benchmarks/train_batch/tiny/lr0.1_s1+0.tsv").exists()
    # a deleted artifact of one run reruns its batch's job only; the batch's other run resumes
    # from its final checkpoint (rewritten, not trained again)
    (work / "results/runs/tiny/lr0.1_s0/status.json").unlink()
    assert planned_jobs(work, "--", *runs, configfiles=(batched,)) == {"train_tiny_lr0_1_s1_0": 1}
    before = (work / "results/runs/tiny/lr0.1_s1/history.csv").read_bytes()
    snakemake(work, "--", *runs, configfiles=(batched,))
    status = json.loads((work / "results/runs/tiny/lr0.1_s1/status.json").read_text())
    assert status["resumed_from_epoch"] == 2
    assert (work / "results/runs/tiny/lr0.1_s1/history.csv").read_bytes() == before
