"""Training loop: determinism, SIGKILL + resume, corrupt/stale checkpoints, divergence,
snapshots, schedules."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from repro import io
from repro.data import load_dataset
from repro.schedules import batch_size_at, lr_at
from repro.train import load_model, train_run

CFG = dict(seed=3, dataset="digits", model=dict(name="mlp", depth=2, width=32),
           train=dict(epochs=3, batch_size=16, lr=0.05, momentum=0.9))


@pytest.fixture(autouse=True, scope="module")
def _threads(one_thread):
    """Every test here runs on one thread (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def run(tmp, data, cfg=CFG, **kw):
    return train_run(cfg, data, tmp / "out", tmp / "ckpt", **kw)


def same_weights(a, b):
    sa, sb = io.load_torch(a)["state_dict"], io.load_torch(b)["state_dict"]
    return all(torch.equal(sa[k], sb[k]) for k in sa)



def kill_once_written(proc, path, timeout_s, finished_msg):
    """SIGKILL `proc` as soon as `path` exists (it must still be running then)."""
    deadline = time.time() + timeout_s
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, finished_msg
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

def test_same_config_and_seed_give_bitwise_identical_history_and_weights(tmp_path, digits):
    run(tmp_path / "a", digits)
    run(tmp_path / "b", digits)
    assert (tmp_path / "a/out/history.csv").read_bytes() == (tmp_path / "b/out/history.csv").read_bytes()
    assert same_weights(tmp_path / "a/out/model.pt", tmp_path / "b/out/model.pt")
    hist = pd.read_csv(tmp_path / "a/out/history.csv")
    assert hist["epoch"].tolist() == [0, 1, 2, 3]
    assert hist["train_acc"].iloc[-1] > 0.8  # it learns


def test_other_seed_differs(tmp_path, digits):
    run(tmp_path / "a", digits)
    run(tmp_path / "b", digits, cfg={**CFG, "seed": 4})
    assert not same_weights(tmp_path / "a/out/model.pt", tmp_path / "b/out/model.pt")


SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from repro.data import load_dataset
from repro.train import train_run
cfg = {cfg!r}
train_run(cfg, load_dataset("digits"), sys.argv[1] + "/out", sys.argv[1] + "/ckpt")
"""


def test_sigkilled_run_resumes_and_ends_bitwise_identical(tmp_path, digits):
    # augmentation on, so the replayed epoch must also replay the random translations/flips
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 4, "batch_size": 8, "translate": 1, "flip": True}}
    ref = run(tmp_path / "ref", digits, cfg=cfg)
    work = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(cfg=cfg), str(work)])
    # a complete checkpoint (data, then checksum)
    kill_once_written(proc, work / "ckpt" / "last.pt.sha256", 120, "training finished before it could be killed")
    assert not (work / "out" / "status.json").exists()
    resumed = run(work, digits, cfg=cfg)
    assert resumed["resumed_from_epoch"] is not None and resumed["resumed_from_epoch"] >= 1
    assert (work / "out/history.csv").read_bytes() == (tmp_path / "ref/out/history.csv").read_bytes()
    assert same_weights(work / "out/model.pt", tmp_path / "ref/out/model.pt")
    assert resumed["steps"] == ref["steps"]


def test_corrupt_checkpoint_is_never_used_and_previous_one_is(tmp_path, digits, caplog):
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 2}}
    run(tmp_path / "ref", digits, cfg=cfg)
    work = tmp_path / "w"
    run(work, digits, cfg=cfg)
    ckpt = work / "ckpt"
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 2])  # truncated
    with caplog.at_level("WARNING"):
        result = run(work, digits, cfg=cfg)
    assert "checksum mismatch" in caplog.text
    assert result["resumed_from_epoch"] == 1  # fell back to previous.pt (epoch 1)
    assert same_weights(work / "out/model.pt", tmp_path / "ref/out/model.pt")


def test_checkpoint_without_checksum_is_not_used_and_rotation_survives(tmp_path, digits, caplog):
    # a kill between writing last.pt and last.pt.sha256 leaves an unverifiable checkpoint
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 2}}
    run(tmp_path / "ref", digits, cfg=cfg)
    work = tmp_path / "w"
    run(work, digits, cfg=cfg)
    for name in ("last.pt.sha256", "previous.pt", "previous.pt.sha256"):
        (work / "ckpt" / name).unlink()
    with caplog.at_level("WARNING"):
        result = run(work, digits, cfg=cfg)
    assert "checksum file last.pt.sha256 is missing" in caplog.text
    assert result["resumed_from_epoch"] is None  # started over instead of trusting it
    assert same_weights(work / "out/model.pt", tmp_path / "ref/out/model.pt")


def test_checkpoint_of_another_config_is_not_reused(tmp_path, digits, caplog):
    run(tmp_path, digits)
    with caplog.at_level("WARNING"):
        result = run(tmp_path, digits, cfg={**CFG, "train": {**CFG["train"], "lr": 0.01}})
    assert result["resumed_from_epoch"] is None
    assert "another configuration" in caplog.text


def test_divergence_is_recorded_not_raised(tmp_path, digits):
    cfg = {**CFG, "train": {**CFG["train"], "lr": 50.0, "momentum": 0.0}}
    result = run(tmp_path, digits, cfg=cfg)
    status = json.loads((tmp_path / "out/status.json").read_text())
    assert result["status"] == status["status"] == "diverged"
    assert "epoch 1" in status["stop_reason"]
    assert (tmp_path / "out/model.pt").exists() and (tmp_path / "out/history.csv").exists()


def test_stop_at_target_train_loss(tmp_path, digits):
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 30, "stop_at_train_loss": 0.3}}
    result = run(tmp_path, digits, cfg=cfg)
    hist = pd.read_csv(tmp_path / "out/history.csv")
    assert result["epochs_completed"] < 30 and "reached train loss" in result["stop_reason"]
    assert hist["train_loss"].iloc[-1] <= 0.3 < hist["train_loss"].iloc[-2]


def test_fractional_snapshots_land_on_the_right_steps(tmp_path, digits):
    # 1438 training digits / 16 = 89 steps per epoch
    run(tmp_path, digits, snapshot_epochs=[0, 0.5, 1, 2.25, 3])
    expected = {"e0": 0, "e0.5": 44, "e1": 89, "e2.25": 89 * 2 + 22, "e3": 89 * 3}
    for name, step in expected.items():
        model, payload = load_model(tmp_path / "out" / "snapshots" / f"{name}.pt")
        assert payload["step"] == step, name
    final, _ = load_model(tmp_path / "out/model.pt")
    last, _ = load_model(tmp_path / "out/snapshots/e3.pt")
    assert all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), last.state_dict().values()))


def test_schedules():
    train = {"lr": 0.1, "batch_size": 128,
             "lr_schedule": {"type": "step", "milestones": [2, 4], "values": [0.02, 0.004]}}
    assert [lr_at(train, e) for e in range(6)] == [0.1, 0.1, 0.02, 0.02, 0.004, 0.004]
    train["lr_schedule"] = {"type": "step", "milestones": [1], "gamma": 0.5}
    assert [lr_at(train, e) for e in range(3)] == [0.1, 0.05, 0.05]
    cyc_lr = {"lr": 0.001, "batch_size": 128,
              "lr_schedule": {"type": "cyclic", "low": 0.001, "high": 0.005, "stage_length": 2}}
    assert [round(lr_at(cyc_lr, e), 6) for e in range(5)] == [0.001, 0.003, 0.005, 0.003, 0.001]
    cyc_bs = {"lr": 0.005, "batch_size": 640,
              "batch_schedule": {"type": "cyclic", "low": 128, "high": 640, "stage_length": 2, "start": "high"}}
    # cyclic batch size mirrors the cyclic LR in eta/S: the ratios are equal epoch by epoch
    for e in range(6):
        r_lr = lr_at(cyc_lr, e) / 128
        r_bs = lr_at(cyc_bs, e) / batch_size_at(cyc_bs, e)
        assert abs(r_lr - r_bs) / r_lr < 0.01, e


def _train_loss64(path, data):
    """Full-train-set mean cross-entropy of a saved model, recomputed in float64."""
    model, _ = load_model(path)
    model = model.double()
    with torch.no_grad():
        logits = model(data.x_train.double())
        return torch.nn.functional.cross_entropy(logits, data.y_train).item()


def test_stop_check_steps_are_evenly_spaced_inside_the_epoch():
    from repro.train import stop_check_steps

    assert stop_check_steps(89, 4) == [22, 44, 67]  # round(22.25), round(44.5) (to even), round(66.75)
    assert stop_check_steps(89, 1) == [] and stop_check_steps(3, 8) == [1, 2]
    assert stop_check_steps(10, 2) == [5]


def test_stop_checks_inside_an_epoch_stop_within_one_check_of_the_crossing(tmp_path, digits):
    # 1438 digits / 16 = 89 steps per epoch, checks after steps 22, 44, 67 and 89 of each epoch
    train = {**CFG["train"], "epochs": 30, "momentum": 0.0, "stop_at_train_loss": 0.3, "stop_checks_per_epoch": 4}
    result = run(tmp_path / "fine", digits, cfg={**CFG, "train": train})
    stop = result["stop"]
    n = 89
    assert result["status"] == "completed" and "reached train loss" in result["stop_reason"]
    # independent recomputation: the same run without a target, a snapshot at every check
    # position up to the stop, each loss recomputed in float64 from the saved weights
    epochs = math.ceil(stop["epoch"])
    ref_train = {k: v for k, v in train.items() if k not in ("stop_at_train_loss", "stop_checks_per_epoch")}
    checks = [e - 1 + i / n for e in range(1, epochs + 1) for i in (22, 44, 67, 89)]
    run(tmp_path / "ref", digits, cfg={**CFG, "train": {**ref_train, "epochs": epochs}}, snapshot_epochs=checks)
    losses = {c: _train_loss64(tmp_path / "ref/out/snapshots" / f"e{c:g}.pt", digits) for c in checks}
    first = next(c for c in checks if losses[c] <= 0.3)
    assert stop["epoch"] == pytest.approx(first, abs=1e-12)
    assert stop["train_loss"] == pytest.approx(losses[first], rel=1e-5)
    before = checks[checks.index(first) - 1]
    assert stop["previous_check"]["epoch"] == pytest.approx(before, abs=1e-12)
    assert stop["previous_check"]["train_loss"] == pytest.approx(losses[before], rel=1e-5) and losses[before] > 0.3
    # the checks read the model only: the stopped weights are the reference's at that step
    assert same_weights(tmp_path / "fine/out/model.pt", tmp_path / "ref/out/snapshots" / f"e{first:g}.pt")
    hist = pd.read_csv(tmp_path / "fine/out/history.csv")
    assert hist.epoch.iloc[-1] == pytest.approx(first) and hist.step.iloc[-1] == stop["step"] == result["steps"]
    assert hist.epoch.iloc[:-1].tolist() == list(range(epochs))  # whole epochs before the stop row
    # the coarse (epoch-end) rule stops at the epoch end after the crossing, at a lower loss
    coarse = run(tmp_path / "coarse", digits, cfg={**CFG, "train": {**train, "stop_checks_per_epoch": 1}})
    assert coarse["epochs_completed"] == epochs and coarse["stop"]["train_loss"] <= stop["train_loss"]
    # a rerun resumes from the stopped checkpoint and reports the same stop
    again = run(tmp_path / "fine", digits, cfg={**CFG, "train": train})
    assert again["stop"] == stop and again["resumed_from_epoch"] == epochs


# ---------------------------------------------------------------- several runs in one job

# a batch whose earlier runs leave every kind of state behind them: a diverged run, a stop
# inside an epoch, augmentation, snapshots; the runs after them must not notice
BATCH = [
    ("wild_s0", {**CFG, "seed": 0, "train": {**CFG["train"], "lr": 50.0, "momentum": 0.0}}, []),
    ("stop_s1", {**CFG, "seed": 1, "train": {**CFG["train"], "epochs": 30, "stop_at_train_loss": 0.3,
                                             "stop_checks_per_epoch": 4}}, [0, 0.5, 1]),
    ("aug_s2", {**CFG, "seed": 2, "train": {**CFG["train"], "translate": 1, "flip": True}}, [0, 1.5, 3]),
    ("plain_s3", CFG, [0, 2]),
]
OUT_FILES = ["history.csv", "model.pt", "status.json", "snapshots"]


def batch_jobs(root):
    return [dict(run=name, spec=cfg, out_dir=str(root / name / "out"), ckpt_dir=str(root / name / "ckpt"),
                 snapshot_epochs=snaps) for name, cfg, snaps in BATCH]


def same_outputs(a: Path, b: Path, resumed: bool = False) -> bool:
    """Byte-equal history, model, status and snapshots (timing.csv holds wall-clock times).
    A resumed run's status.json differs in `resumed_from_epoch` only (it says where)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "timing.csv")
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "timing.csv")
    if resumed:
        status = [json.loads((x / "status.json").read_text()) for x in (a, b)]
        for s in status:
            s.pop("resumed_from_epoch")
        files.remove(Path("status.json"))
        if status[0] != status[1]:
            return False
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.fixture(scope="module")
def alone(tmp_path_factory, digits):
    """Each run of BATCH trained on its own, as one-run jobs train them."""
    root = tmp_path_factory.mktemp("alone")
    for name, cfg, snaps in BATCH:
        train_run(cfg, digits, root / name / "out", root / name / "ckpt", snapshot_epochs=snaps)
    return root


def test_a_run_trained_in_a_batch_equals_the_run_trained_alone(tmp_path, alone):
    from repro.train import train_runs

    results = train_runs(batch_jobs(tmp_path))
    assert [r["status"] for r in results] == ["diverged", "completed", "completed", "completed"]
    assert "reached train loss" in results[1]["stop_reason"]
    for name, _, snaps in BATCH:
        assert same_outputs(tmp_path / name / "out", alone / name / "out"), name
        assert len(list((tmp_path / name / "out/snapshots").glob("*.pt"))) == len(snaps)


BATCH_SCRIPT = """
import torch
torch.set_num_threads(1)
from repro.train import train_runs
train_runs({jobs!r})
"""


def test_a_killed_batch_resumes_each_run_from_its_own_checkpoint(tmp_path, alone):
    from repro.train import train_runs

    proc = subprocess.Popen([sys.executable, "-c", BATCH_SCRIPT.format(jobs=batch_jobs(tmp_path))])
    # the third run is under way
    kill_once_written(proc, tmp_path / "aug_s2" / "ckpt" / "last.pt.sha256", 300,
                      "the batch finished before it could be killed")
    assert (tmp_path / "stop_s1/out/status.json").exists() and not (tmp_path / "aug_s2/out/status.json").exists()
    # Snakemake deletes a rerun job's declared outputs: all of them, finished runs' too
    for name, _, _ in BATCH:
        for path in (tmp_path / name / "out").rglob("*"):
            if path.is_file():
                path.unlink()
    results = train_runs(batch_jobs(tmp_path))
    done = {r["config"]["seed"]: r["resumed_from_epoch"] for r in results}
    assert done[1] == math.ceil(results[1]["epochs_completed"])  # finished: rewritten from its last checkpoint
    assert done[2] is not None and 1 <= done[2] < 3  # killed mid-run: resumed, not restarted
    assert done[3] is None  # never started
    for name, _, _ in BATCH:
        assert same_outputs(tmp_path / name / "out", alone / name / "out", resumed=True), name
    assert same_outputs(tmp_path / "plain_s3/out", alone / "plain_s3/out")  # trained after the restart


def test_batches_group_the_seeds_of_one_run_spec():
    from repro.config import expand_runs
    from repro.settings import validate_config
    from repro.train_batches import train_batches

    config = {"experiments": {
        "grid": {"paper": "foundation", "dataset": "digits", "seeds": [0, 1, 2],
                 "model": {"name": "mlp", "depth": 1, "width": 8}, "train": {"epochs": 1, "batch_size": 32, "lr": 0.1},
                 "grid": {"train.lr": [0.05, 0.1]}},
        "single": {"paper": "foundation", "dataset": "digits", "seeds": [7],
                   "model": {"name": "mlp", "depth": 1, "width": 8}, "train": {"epochs": 1, "batch_size": 32, "lr": 0.1}}}}
    validate_config(config)
    runs = expand_runs(config)
    assert train_batches(runs, {"by": "none"}) == [] and train_batches(runs, None) == []
    batches = train_batches(runs, {"by": "seed"})
    assert [(b.experiment, b.name, b.runs) for b in batches] == [
        ("grid", "lr0.05_s0+1+2", ("lr0.05_s0", "lr0.05_s1", "lr0.05_s2")),
        ("grid", "lr0.1_s0+1+2", ("lr0.1_s0", "lr0.1_s1", "lr0.1_s2"))]  # single_s7: a batch of one is none
    assert len({b.rule for b in batches}) == 2 and all(b.rule.isidentifier() for b in batches)
    capped = train_batches(runs, {"by": "seed", "max_runs": 2})
    assert [b.runs for b in capped] == [("lr0.05_s0", "lr0.05_s1"), ("lr0.1_s0", "lr0.1_s1")]  # s2 alone
