"""Snapshots by global step (docs/CLAIMS.md section 6): the schedule by hand, the training
loop saving at exactly those steps, and the runs of one seed sharing their initial network
(the sweeps are compared paired by seed)."""

from __future__ import annotations

import pytest
import torch
import yaml

from repro import io
from repro.config import ConfigError, parse_config, snapshot_epochs, snapshot_steps, steps_per_epoch
from repro.data import load_dataset
from repro.train import snapshot_name, train_run

# digits: 1,437 training images (test_fraction 0.2) -> S = 100 gives 14 steps per epoch
RUN = dict(seed=0, dataset="digits", model=dict(name="mlp", depth=1, width=16),
           train=dict(epochs=3, batch_size=100, lr=0.05), snapshots=dict(steps=[0, 5, 14, 20, 100], every_steps=16))


@pytest.fixture(autouse=True, scope="module")
def _threads(one_thread):
    """One thread (conftest.one_thread)."""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_step_schedule_by_hand():
    assert steps_per_epoch(RUN) == 1437 // 100 == 14
    # listed steps up to the last (42 = 3 x 14; 100 is beyond), every 16th, and the last step
    assert snapshot_steps(RUN) == [0, 5, 14, 16, 20, 32, 42]
    assert snapshot_epochs(RUN) == [s / 14 for s in [0, 5, 14, 16, 20, 32, 42]]
    assert snapshot_epochs(RUN)[-1] == 3.0 and snapshot_epochs(RUN)[2] == 1.0
    only_list = dict(RUN, snapshots=dict(steps=[3]))
    assert snapshot_steps(only_list) == [3, 42]          # the last step is always kept
    # the epoch schedules are unchanged
    assert snapshot_epochs(dict(RUN, snapshots=dict(at=[0, 0.5, 9]))) == [0.0, 0.5]


def test_the_default_grid_gives_the_protocols_snapshot_counts():
    """docs/CLAIMS.md 6 with shrink (1) of 7.1 (steps 24, 192, 384 dropped): at S = 32 (125
    steps per epoch) 8 snapshots by step 128 (7 inside the first epoch, where there were 2),
    11 in all; 47 per seed."""
    cfg = yaml.safe_load(open("config.yaml"))
    runs = parse_config(cfg, ["config.yaml"])
    d = {k[1]: r for k, r in runs.items() if r["paper"] == "breakeven" and k[1].endswith("_s0")}
    bs32 = snapshot_steps(d["lr0.03_bs32_s0"])
    assert sum(1 for s in bs32 if s <= 128) == 8 and sum(1 for s in bs32 if s <= 125) == 7 and len(bs32) == 11 and bs32[-1] == 750
    assert snapshot_steps(d["lr0.03_bs512_s0"]) == [0, 8, 16, 32, 48, 64, 96, 128, 140]
    assert sum(len(snapshot_steps(r)) for r in d.values()) == 47


def _config(snapshots, batch_schedule=False):
    train = dict(epochs=2, batch_size=64, lr=0.05)
    if batch_schedule:
        train["batch_schedule"] = dict(type="step", milestones=[1], values=[128])
    return {"experiments": {"breakeven_x": dict(paper="breakeven", dataset="digits", seeds=[0],
                                                 model=dict(name="mlp", depth=1, width=8), train=train,
                                                 snapshots=snapshots)}}


def test_step_and_epoch_schedules_cannot_be_mixed_nor_used_with_a_batch_schedule():
    parse_config(_config(dict(steps=[0, 3], every_steps=10)))
    with pytest.raises(ConfigError, match="one of the two schedules"):
        parse_config(_config(dict(steps=[0, 3], at=[1])))
    with pytest.raises(ConfigError, match="batch_schedule"):
        parse_config(_config(dict(steps=[0, 3]), batch_schedule=True))


def test_training_saves_the_step_snapshots_at_their_global_steps(tmp_path, digits):
    epochs = snapshot_epochs(RUN)
    train_run(RUN, digits, tmp_path / "out", tmp_path / "ckpt", snapshot_epochs=epochs)
    for step, epoch in zip(snapshot_steps(RUN), epochs):
        payload = io.load_torch(tmp_path / "out/snapshots" / f"{snapshot_name(epoch)}.pt")
        assert payload["step"] == step and payload["epoch"] == pytest.approx(step / 14)
    names = sorted(p.name for p in (tmp_path / "out/snapshots").glob("*.pt"))
    assert len(names) == len(epochs)


def test_two_runs_of_one_seed_with_different_lr_share_their_step0_snapshot(tmp_path, digits):
    """The sweeps are paired by seed: every run of a seed starts from the same network."""
    other = dict(RUN, train=dict(RUN["train"], lr=0.5))
    epochs = snapshot_epochs(RUN)
    train_run(RUN, digits, tmp_path / "a/out", tmp_path / "a/ckpt", snapshot_epochs=epochs)
    train_run(other, digits, tmp_path / "b/out", tmp_path / "b/ckpt", snapshot_epochs=epochs)
    first = [io.load_torch(tmp_path / f"{r}/out/snapshots/e0.pt")["state_dict"] for r in ("a", "b")]
    assert all(torch.equal(first[0][k], first[1][k]) for k in first[0])
    later = [io.load_torch(tmp_path / f"{r}/out/snapshots/{snapshot_name(epochs[1])}.pt")["state_dict"]
             for r in ("a", "b")]
    assert not all(torch.equal(later[0][k], later[1][k]) for k in later[0])   # the runs do differ
