"""repro.runs: one run record read from status.json, one eta/S formula, one equal-ratio rule."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from repro import runs
from repro.runs import RunRecord


def _status(**extra):
    cfg = dict(seed=3, dataset="digits", train_size=500, label_noise=0.25,
               train=dict(lr=0.1, batch_size=64, momentum=0.9, stop_at_train_loss=0.05))
    return dict(status="completed", stop_reason="reached train loss", epochs_completed=7, steps=140,
                final=dict(train_loss=0.04, train_acc=0.99, test_loss=0.3, test_acc=0.9), config=cfg, **extra)


def test_read_takes_ids_from_the_folders_when_the_file_has_none(tmp_path):
    path = tmp_path / "runs" / "minima_grid" / "lr0.1_bs64_s3" / "status.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_status()))
    rec = RunRecord.read(path)
    assert rec.key == ("minima_grid", "lr0.1_bs64_s3")
    assert (rec.seed, rec.lr, rec.batch_size, rec.momentum, rec.label_noise, rec.train_size) == \
        (3, 0.1, 64, 0.9, 0.25, 500)
    assert rec.lr_over_batch == 0.1 / 64 and rec.completed and rec.failure == ""
    assert rec.final_metric("test_acc") == 0.9 and (rec.epochs_completed, rec.steps) == (7, 140)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "diverged"


def test_ids_recorded_in_the_status_win_over_the_folder(tmp_path):
    path = tmp_path / "elsewhere" / "copy" / "status.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_status(experiment="minima_beta", run="beta2_s0")))
    assert RunRecord.read(path).key == ("minima_beta", "beta2_s0")
    in_config = _status()
    in_config["config"].update(experiment="e", run="r")
    assert RunRecord.from_status(in_config, "x", "y").key == ("e", "r")
    with pytest.raises(ValueError, match="no experiment id"):
        RunRecord.from_status(_status())


def test_a_diverged_run_has_no_final_metrics_and_says_why():
    st = _status(experiment="e", run="r")
    st.update(status="diverged", stop_reason="loss nan at epoch 2")
    rec = RunRecord.from_status(st)
    assert not rec.completed and rec.final_metric("test_acc") is None
    assert rec.failure == "diverged: loss nan at epoch 2"


def test_lr_over_batch_is_elementwise():
    assert runs.lr_over_batch(0.1, 64) == 0.1 / 64
    np.testing.assert_array_equal(runs.lr_over_batch(np.array([0.1, 0.2]), np.array([32, 64])),
                                  [0.1 / 32, 0.2 / 64])


def test_same_ratio_is_float_rounding_not_a_grid_step():
    assert runs.same_ratio(0.05 / 64, 0.1 / 128)
    assert runs.same_ratio(0.03 / 96, 0.01 / 32)  # equal up to rounding of the decimals
    assert runs.same_ratio(1.0, 1.0 + 0.9 * runs.RATIO_REL_TOL)
    assert not runs.same_ratio(1.0, 1.0 + 2 * runs.RATIO_REL_TOL)
    assert not runs.same_ratio(0.1 / 1024, 0.01 / 128)  # the paper's "equal" pair differs by 1.25
    rec = RunRecord.from_status(_status(experiment="e", run="r"))
    assert runs.same_ratio(rec, 0.2 / 128) and runs.ratio_in(rec.lr_over_batch, [1.0, 0.05 / 32])


def test_within_half_grid_step_is_a_different_question():
    assert runs.within_half_grid_step(0.1 / 1024, 0.01 / 128)      # x1.25 < sqrt(2)
    assert not runs.within_half_grid_step(0.1 / 64, 0.1 / 128)     # one factor-2 step
    assert runs.within_half_grid_step(1.0, 1.41) and not runs.within_half_grid_step(1.0, math.sqrt(2))
