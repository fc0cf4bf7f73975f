"""Paper A analysis layer: settings, per-run tables, skipped runs, Table 1 and the claims.

Claims are checked on small hand-made tables whose verdicts and values are computed here
by hand; the per-run measurements on a tiny real ResNet are checked against repro.blocks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from repro import blocks
from repro.iterative import claims as it_claims
from repro.iterative import measure, plan
from repro.iterative import tables as it_tables
from repro.data import load_dataset
from repro.models import PreActResNet
from repro.train import _model_payload
from repro import io

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "iterative.schema.yaml"


@pytest.fixture(autouse=True, scope="module")
def _threads(one_thread):
    """Every test here runs on one thread (see conftest.one_thread)."""


def test_settings_defaults_are_the_schema_defaults_and_overrides_merge():
    from snakemake.utils import validate

    filled = {}
    validate(filled, str(SCHEMA))
    assert filled == plan.defaults()
    merged = plan.settings_for({"unroll": {"steps": 5}, "n_shuffles": 1}, {"unroll": {"scales": [0.5]}})
    assert merged["unroll"] == {"steps": 5, "scales": [0.5]}
    assert merged["n_shuffles"] == 1 and merged["borderline"] == plan.defaults()["borderline"]
    assert plan.defaults()["unroll"]["steps"] == 20  # the merge never mutates the defaults
    assert set(plan.MODEL_KEYS) | set(plan.SNAPSHOT_KEYS) | {"measure_variants", "gpu", "mem_mb"} == set(yaml.safe_load(
        SCHEMA.read_text())["properties"])


def test_plan_imports_no_torch():
    """rules/iterative.smk imports repro.iterative.plan while the DAG is built: no torch."""
    import subprocess
    import sys

    code = "import sys, repro.iterative.plan; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_run_ids_and_variants():
    cfg = dict(experiment="e", run="ubn_s12", seed=12, dataset="digits",
               model=dict(name="resnet", widths=[4], blocks_per_stage=3, shared_blocks=2, downsample="none"),
               train=dict(epochs=1))
    assert plan.run_ids(cfg) == dict(experiment="e", run="ubn_s12", seed=12, label="ubn", variant="UBN")
    assert plan.variant_of({"shared_blocks": 2, "shared_bn": "naive"}) == "naive"
    assert plan.variant_of({"name": "resnet"}) == "unshared"
    record = measure.run_record(cfg)
    model = PreActResNet(1, 10, widths=(4,), blocks_per_stage=3, shared_blocks=2, downsample="none")
    assert record["params"] == sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- per run, on a tiny real model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, digits):
    """A (randomly initialised, BN statistics from one pass) ResNet saved like a trained run."""
    torch.manual_seed(0)
    spec = dict(name="resnet", widths=[4, 8], blocks_per_stage=3)
    model = PreActResNet(1, 10, widths=(4, 8), blocks_per_stage=3)
    with torch.no_grad():
        model.train()(digits.x_train[:256])
    model.eval()
    cfg = dict(experiment="iterative_t", run="unshared_s0", seed=0, dataset="digits", model=spec,
               train=dict(epochs=1, batch_size=64, lr=0.1))
    d = tmp_path_factory.mktemp("run")
    io.save_torch(_model_payload(model, cfg, digits), d / "model.pt")
    io.atomic_write_json(d / "status.json", dict(status="completed", stop_reason="max_epochs"))
    return d, cfg, model


SETTINGS = plan.settings_for({"max_examples": 120, "batch_size": 50, "n_shuffles": 2,
                            "unroll": {"steps": 2, "scales": [1.0, 0.5]}})


def test_run_model_metrics_tables_match_the_block_functions(tiny_run, digits, tmp_path):
    d, cfg, model = tiny_run
    outputs = {name: str(tmp_path / f"{name}.csv") for name in plan.MODEL_TABLES}
    measure.run_model_metrics(d / "model.pt", d / "status.json", cfg, SETTINGS, outputs)
    tables = {name: pd.read_csv(path) for name, path in outputs.items()}
    for frame in tables.values():
        assert list(frame.columns[:5]) == plan.ID_COLUMNS
        assert (frame["label"] == "unshared").all() and (frame["seed"] == 0).all()
    # the same subset the analysis uses -> the same numbers as calling repro.blocks directly
    batches = measure.split_batches(digits, SETTINGS)
    assert sum(len(y) for _, y in batches["test"]) == 120
    expected = blocks.block_metrics(model, batches["test"])
    b = tables["blocks"]
    got = b[(b.split == "test") & (b.metric == "cosine")].sort_values("block")["value"].to_numpy()
    np.testing.assert_allclose(got, expected["cosine"], rtol=1e-6)
    drop = blocks.drop_block_results(model, batches["test"])
    dt = tables["drop"]
    got = dt[(dt.kind == "drop") & (dt.metric == "accuracy")].sort_values("block")["value"].to_numpy()
    np.testing.assert_allclose(got, drop["accuracy"].to_numpy()[1:])
    assert len(dt[(dt.kind == "shuffle") & (dt.metric == "accuracy")]) == 2
    u = tables["unroll"]
    assert set(u.scale) == {1.0, 0.5} and set(u.step) == {0, 1, 2}
    # step 0 of the unrolling is the network itself: its train loss equals the plain evaluation
    x, y = measure.subset(digits.x_train, digits.y_train, 120, 0)
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(model(x), y).item()
    step0 = u[(u.split == "train") & (u.group == "all") & (u.metric == "loss") & (u.step == 0)]["value"]
    np.testing.assert_allclose(step0, plain, rtol=1e-5)


def test_snapshot_metrics_heads_and_init(tiny_run, digits, tmp_path):
    d, cfg, model = tiny_run
    snaps = d / "snapshots"
    snaps.mkdir(exist_ok=True)
    for e in ("e0", "e1"):
        (snaps / f"{e}.pt").write_bytes((d / "model.pt").read_bytes())
        (snaps / f"{e}.pt.sha256").write_bytes((d / "model.pt.sha256").read_bytes())
    outputs = {name: str(tmp_path / f"{name}.csv") for name in plan.SNAPSHOT_TABLES}
    measure.run_snapshot_metrics(snaps, d / "status.json", cfg, SETTINGS, [0.0, 1.0], None, outputs)
    heads = pd.read_csv(outputs["heads"])
    assert set(heads.epoch) == {0.0, 1.0} and set(heads.position) == {0, 1, 2}
    acc = heads[(heads.metric == "accuracy") & (heads.split == "test") & (heads.epoch == 1.0)]
    x, y = measure.subset(digits.x_test, digits.y_test, 120, 0)
    with torch.no_grad():
        full = (model(x).argmax(1) == y).double().mean().item()
    assert acc[acc.position == 2]["value"].item() == pytest.approx(full)  # last head = the network
    init = pd.read_csv(outputs["init"])
    stage_rows = init[init.block == -1]
    assert set(stage_rows.metric) == {"span", "growth", "grad_ratio"}
    assert (stage_rows[stage_rows.metric == "span"]["value"] == 2).all()  # unshared: all but the first


def test_diverged_run_is_skipped_with_a_visible_reason(tiny_run, tmp_path):
    d, cfg, _ = tiny_run
    status = tmp_path / "status.json"
    io.atomic_write_json(status, dict(status="diverged", stop_reason="loss nan at epoch 1, step 3"))
    outputs = {name: str(tmp_path / f"{name}.csv") for name in plan.MODEL_TABLES}
    measure.run_model_metrics(d / "model.pt", status, cfg, SETTINGS, outputs)
    for path in outputs.values():
        frame = pd.read_csv(path)
        assert frame["metric"].tolist() == ["skipped"] and frame["value"].isna().all()
        assert "diverged" in frame["note"].item() and "loss nan" in frame["note"].item()


def test_non_finite_values_become_missing_with_a_reason():
    frame = pd.DataFrame(dict(metric=["a", "b", "c"], value=[1.0, np.inf, np.nan]))
    out = it_tables.mark_missing(frame, "overflow")
    assert out["value"].isna().tolist() == [False, True, True]
    assert out["note"].tolist() == ["", "overflow", "overflow"]


# ---------------------------------------------------------------- aggregation and claims on hand-made tables


def _ids(run, seed, variant="unshared", experiment="e"):
    return dict(experiment=experiment, run=f"{run}_s{seed}", seed=seed, label=run, variant=variant)


def hand_tables(first_ratio=(2.0, 3.0), cos_last=(-0.2, -0.4), drop_first=(0.5, 0.3), border_first=(0.0, 0.5)):
    """Two seeds of one unshared model with 2 stages x 2 blocks, plus naive/UBN runs."""
    rows_b, rows_d, rows_bl, rows_h, rows_u, rows_i = [], [], [], [], [], []
    for seed in (0, 1):
        ids = _ids("unshared", seed)
        for block, stage, pos in [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]:
            ratio = first_ratio[seed] if pos == 0 else 1.0
            cos = cos_last[seed] if block == 3 else -0.05
            for split in ("train", "test"):
                rows_b.append(dict(ids, split=split, block=block, stage=stage, position=pos, metric="norm_ratio",
                                   value=ratio, note=""))
                rows_b.append(dict(ids, split=split, block=block, stage=stage, position=pos, metric="cosine",
                                   value=cos, note=""))
            acc = 0.9 - (drop_first[seed] if pos == 0 else 0.1)
            rows_d.append(dict(ids, split="test", kind="drop", block=block, stage=stage, position=pos, shuffle=-1,
                               metric="accuracy", value=acc, note=""))
        rows_d.append(dict(ids, split="test", kind="intact", block=-1, stage=-1, position=-1, shuffle=-1,
                           metric="accuracy", value=0.9, note=""))
        n = 2 if seed == 0 else 4
        for offset, acc in ((-1, border_first[seed]), (0, 1.0)):
            rows_bl.append(dict(ids, split="test", group="borderline", n_examples=n, offset=offset,
                                metric="accuracy", value=acc, note=""))
        for epoch in (0.0, 1.0):
            for pos, acc in ((0, 0.5), (1, 0.8 if epoch else 0.1)):
                rows_h.append(dict(ids, epoch=epoch, split="test", block=2 + pos, position=pos, metric="accuracy",
                                   value=acc, note=""))
        for scale, end in ((1.0, 5.0), (0.1, 0.09 if seed else 0.08)):
            for step, v in ((0, 0.1), (1, end)):
                rows_u.append(dict(ids, split="train", group="all", n_examples=100, scale=scale, step=step,
                                   metric="loss", value=v, note=""))
    runs = []
    for variant, growth, test_err in (("unshared", 1.5, 3.0), ("naive", 4.0, 6.0), ("UBN", 1.1, 4.0)):
        for seed in (0, 1):
            ids = _ids(variant, seed, variant)
            rows_i.append(dict(ids, block=-1, stage=0, position=-1, metric="growth", value=growth + seed, note=""))
            runs.append(dict(ids, dataset="digits", architecture="a", params=10, epochs=1, status="completed",
                             stop_reason="max_epochs", epochs_completed=1, train_error=1.0 + seed,
                             test_error=test_err + seed))
    frames = dict(blocks=rows_b, drop=rows_d, borderline=rows_bl, heads=rows_h, unroll=rows_u, init=rows_i)
    tables = {k: pd.DataFrame(v) for k, v in frames.items()}
    tables["runs"] = pd.DataFrame(runs)
    return tables


def test_claims_on_hand_made_tables_hold_with_hand_computed_values():
    claims = {c.id: c for c in it_claims.evaluate_claims(hand_tables())}
    assert set(claims) == {"A1", "A2", "A3", "A4a", "A4b", "A5", "A6", "A7"}
    assert all(c.paper == "A" for c in claims.values())
    assert claims["A1"].value == pytest.approx(-0.05) and claims["A1"].verdict == "holds"
    assert claims["A2"].value == pytest.approx(2.5 - 1.0) and claims["A2"].verdict == "holds"
    assert claims["A3"].value == pytest.approx(0.4 - 0.1) and claims["A3"].verdict == "holds"
    assert claims["A4a"].value == pytest.approx(4.5 / 1.6) and claims["A4a"].verdict == "holds"
    assert claims["A4b"].value == pytest.approx(6.5 - 4.5) and claims["A4b"].verdict == "holds"
    # borderline examples pooled over seeds: (2 * 0.0 + 4 * 0.5) / 6 at the first head, 1.0 at the last
    assert claims["A5"].value == pytest.approx(1.0 - 2.0 / 6) and claims["A5"].verdict == "holds"
    assert claims["A6"].value == pytest.approx(0.3) and claims["A6"].verdict == "holds"
    assert claims["A7"].value == pytest.approx(0.085 / 0.1) and claims["A7"].verdict == "holds"
    assert "seeds [0, 1]" in claims["A1"].note


def test_claims_fail_or_are_inconclusive_when_they_should():
    bad = hand_tables(first_ratio=(0.5, 0.9), cos_last=(0.3, 0.1), drop_first=(0.05, 0.05), border_first=(1.0, 1.0))
    claims = {c.id: c for c in it_claims.evaluate_claims(bad)}
    assert claims["A1"].verdict == "fails" and claims["A1"].value == pytest.approx(0.2)
    assert claims["A2"].verdict == "fails" and claims["A2"].value == pytest.approx(0.7 - 1.0)
    assert claims["A3"].verdict == "fails" and claims["A3"].value == pytest.approx(-0.05)
    assert claims["A5"].verdict == "fails" and claims["A5"].value == pytest.approx(0.0)
    # every run skipped: no number, inconclusive, never "holds"
    skipped = {k: v.iloc[0:0] for k, v in hand_tables().items()}
    skipped["runs"] = hand_tables()["runs"].assign(status="diverged")
    for claim in it_claims.evaluate_claims(skipped):
        assert claim.verdict == "inconclusive" and claim.value is None, claim
        assert "Skipped (not completed)" in claim.note


def test_aggregate_writes_tidy_tables_and_table1(tmp_path):
    t = hand_tables()
    per_run = {}
    for name in plan.MODEL_TABLES + plan.SNAPSHOT_TABLES:
        path = tmp_path / f"{name}_in.csv"
        t[name].to_csv(path, index=False)
        per_run[name] = [path]
    records, histories, statuses = [], [], []
    for i, r in t["runs"].iterrows():
        record = {k: r[k] for k in plan.ID_COLUMNS + ["dataset", "architecture", "params", "epochs"]}
        records.append(record)
        h = tmp_path / f"h{i}.csv"
        pd.DataFrame(dict(epoch=[0, 1], step=[0, 5], train_loss=[2.0, 0.1], train_acc=[0.1, 1 - r.train_error / 100],
                          test_loss=[2.0, 0.2], test_acc=[0.1, 1 - r.test_error / 100])).to_csv(h, index=False)
        s = tmp_path / f"s{i}.json"
        diverged = r.variant == "naive" and r.seed == 1
        s.write_text(json.dumps(dict(status="diverged" if diverged else "completed", stop_reason="x",
                                     final=dict(train_acc=1 - r.train_error / 100, test_acc=1 - r.test_error / 100))))
        histories.append(h)
        statuses.append(s)
    out = tmp_path / "tables"
    it_tables.aggregate(per_run, histories, statuses, records, out)
    for name in plan.TABLES:
        assert (out / f"{name}.csv").exists() and (out / f"{name}.md").exists()
    t1 = pd.read_csv(out / "table1.csv")
    naive = t1[t1.variant == "naive"].iloc[0]
    assert naive.seeds == 1 and naive.test_error_mean == pytest.approx(6.0)  # the diverged seed is left out
    assert "1 of 2 runs not completed" in naive.note
    ubn = t1[t1.variant == "UBN"].iloc[0]
    assert ubn.test_error_mean == pytest.approx(4.5) and ubn.test_error_sd == pytest.approx(math.sqrt(0.5))
    assert "4.50 ± 0.71" in (out / "table1.md").read_text()
    assert r"\pm" in (out / "table1.tex").read_text()
    curves = pd.read_csv(out / "curves.csv")
    err = curves[(curves.metric == "error") & (curves.split == "test") & (curves.epoch == 1)]
    assert len(err) == 6 and set(curves.columns) >= {"experiment", "run", "seed", "epoch", "step", "metric", "value"}
    claims = it_claims.write_claims(out, tmp_path / "claims.csv")
    assert list(claims.columns) == ["id", "paper", "statement", "statistic", "threshold", "value", "ci_low",
                                    "ci_high", "interval", "n_seeds", "scale", "verdict", "note"]
    assert "naive_s1 (diverged)" in claims.set_index("id").loc["A4b", "note"]
