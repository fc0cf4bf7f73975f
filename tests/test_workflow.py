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
