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
import torch.nn.functional as F
import yaml

from repro import blocks
from repro.iterative import claims as it_claims
from repro.iterative import measure, plan
from repro.iterative import tables as it_tables
from repro.data import load_dataset
from repro.models import PreActResNet
from repro.train import _model_payload
from repro import io

from block_reference import block_items, forward_from_block, forward_to_block

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
    assert set(plan.MODEL_KEYS) | set(plan.SNAPSHOT_KEYS) | {"measure_variants", "gpu", "mem_mb", "gate",
                                                                  "sharing_init"} == set(yaml.safe_load(
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


SEEDS = (0, 1, 2)


def hand_tables(first_ratio=(2.0, 3.0, 2.5), cos_last=(-0.2, -0.4, -0.3), drop_first=(0.5, 0.3, 0.4),
                border_first=(0.0, 0.5, 0.25), border_n=(20, 40, 20), head_mid=(0.7, 0.7, 0.7),
                train_error=(0.5, 0.5, 0.5), test_error=(3.0, 3.0, 3.0), final_loss=(0.005, 0.005, 0.005)):
    """Three seeds of one unshared model with 2 stages x 2 blocks (cosine per block, last stage
    with 3 heads), plus trained naive/UBN runs and their epoch-0 init rows."""
    rows_b, rows_d, rows_bl, rows_h, rows_u, rows_i, rows_c = [], [], [], [], [], [], []
    for seed in SEEDS:
        ids = _ids("unshared", seed)
        for block, stage, pos in [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]:
            ratio = first_ratio[seed] if pos == 0 else 1.0
            cos = cos_last[seed] if block == 3 else -0.05
            for split in ("train", "test"):
                rows_b.append(dict(ids, split=split, block=block, stage=stage, position=pos, metric="norm_ratio",
                                   value=ratio, note=""))
                rows_b.append(dict(ids, split=split, block=block, stage=stage, position=pos, metric="cosine",
                                   value=cos, note=""))
                rows_b.append(dict(ids, split=split, block=block, stage=stage, position=pos, metric="cosine_out",
                                   value=cos / 2, note=""))
            acc = 0.9 - (drop_first[seed] if pos == 0 else 0.1)
            rows_d.append(dict(ids, split="test", kind="drop", block=block, stage=stage, position=pos, shuffle=-1,
                               metric="accuracy", value=acc, note=""))
        rows_d.append(dict(ids, split="test", kind="intact", block=-1, stage=-1, position=-1, shuffle=-1,
                           metric="accuracy", value=0.9, note=""))
        for offset, acc in ((-1, border_first[seed]), (0, 1.0)):
            rows_bl.append(dict(ids, split="test", group="borderline", n_examples=border_n[seed], offset=offset,
                                metric="accuracy", value=acc, note=""))
        for epoch in (0.0, 1.0):
            for pos, acc in ((0, 0.5), (1, head_mid[seed] if epoch else 0.1), (2, 0.8 if epoch else 0.1)):
                rows_h.append(dict(ids, epoch=epoch, split="test", block=2 + pos, position=pos, metric="accuracy",
                                   value=acc, note=""))
        for scale, end in ((1.0, 5.0), (0.3, 0.12), (0.1, (0.08, 0.09, 0.07)[seed])):
            for step, v in ((0, 0.1), (1, 0.11), (2, end)):
                rows_u.append(dict(ids, split="train", group="all", n_examples=100, scale=scale, step=step,
                                   metric="loss", value=v, note=""))
        for epoch, loss in ((0, 2.0), (1, final_loss[seed])):
            rows_c.append(dict(ids, epoch=epoch, step=10 * epoch, split="train", metric="loss", value=loss, note=""))
    runs = []
    for variant, growth, test_err in (("unshared", 1.5, None), ("naive", 4.0, 6.0), ("UBN", 1.1, 2.0)):
        for seed in SEEDS:
            ids = _ids(variant, seed, variant)
            for stage, extra in ((0, 0.0), (1, 1.0)):
                rows_i.append(dict(ids, block=-1, stage=stage, position=-1, metric="growth",
                                   value=growth + seed + extra, note=""))
            runs.append(dict(ids, dataset="digits", architecture="a", params=10, epochs=1, status="completed",
                             stop_reason="max_epochs", epochs_completed=1,
                             train_error=train_error[seed] if test_err is None else 1.0,
                             test_error=test_error[seed] if test_err is None else test_err + seed))
    frames = dict(blocks=rows_b, drop=rows_d, borderline=rows_bl, heads=rows_h, unroll=rows_u, init=rows_i,
                  curves=rows_c)
    tables = {k: pd.DataFrame(v) for k, v in frames.items()}
    tables["runs"] = pd.DataFrame(runs)
    return tables


def _by_id(tables):
    return {c.id: c for c in it_claims.evaluate_claims(tables)}


def test_claims_on_hand_made_tables_hold_with_hand_computed_values_and_intervals():
    """Three seeds: the 95% percentile interval of a seed mean is the range of the per-seed values."""
    claims = _by_id(hand_tables())
    assert set(claims) == {"A1a", "A1b", "A2", "A3", "A4a", "A4b", "A5", "A6", "A7"}
    assert all(c.paper == "A" and c.interval.startswith("95% percentile bootstrap") for c in claims.values()
               if c.id != "A4a" or c.value is not None)
    a1a = claims["A1a"]  # deciding part: an early block (-0.05 on every seed), the part nearest 0
    assert (a1a.value, a1a.ci_low, a1a.ci_high, a1a.verdict) == (pytest.approx(-0.05), pytest.approx(-0.05),
                                                                  pytest.approx(-0.05), "holds")
    assert "cosine_out" in a1a.note and a1a.n_seeds == 3
    # A1b: per seed OLS slope of (-0.05, -0.05, -0.05, c) on (0, 1, 2, 3) = 0.3 (c + 0.05) / 1
    slopes = [0.3 * (c + 0.05) for c in (-0.2, -0.4, -0.3)]
    a1b = claims["A1b"]
    assert a1b.value == pytest.approx(np.mean(slopes)) and a1b.verdict == "holds"
    assert (a1b.ci_low, a1b.ci_high) == (pytest.approx(min(slopes)), pytest.approx(max(slopes)))
    a2 = claims["A2"]
    assert (a2.value, a2.ci_low, a2.ci_high) == (pytest.approx(1.5), pytest.approx(1.0), pytest.approx(2.0))
    a3 = claims["A3"]  # cost(first) - cost(later) = drop_first - 0.1 per seed
    assert (a3.value, a3.ci_low, a3.ci_high, a3.verdict) == (pytest.approx(0.3), pytest.approx(0.2),
                                                             pytest.approx(0.4), "holds")
    # A4a: per seed log[mean_stage growth naive / unshared] = log((4.5 + s) / (2 + s))
    a4a = [math.log((4.5 + s) / (2.0 + s)) for s in SEEDS]
    assert claims["A4a"].value == pytest.approx(np.mean(a4a)) and claims["A4a"].verdict == "holds"
    assert (claims["A4a"].ci_low, claims["A4a"].ci_high) == (pytest.approx(min(a4a)), pytest.approx(max(a4a)))
    assert claims["A4b"].value == pytest.approx(4.0) and claims["A4b"].verdict == "holds"  # UBN 2-4 % error: gate passed
    # A5: example-weighted gain (20 * 1 + 40 * 0.5 + 20 * 0.75) / 80
    assert claims["A5"].value == pytest.approx(55 / 80) and claims["A5"].verdict == "holds"
    assert claims["A6"].value == pytest.approx(0.3) and claims["A6"].verdict == "holds"
    # A7: min over scales < 1 of loss(last step) / loss(0); scale 0.1 wins on every seed
    a7 = [0.8, 0.9, 0.7]
    assert (claims["A7"].value, claims["A7"].ci_low, claims["A7"].ci_high) == (
        pytest.approx(0.8), pytest.approx(0.7), pytest.approx(0.9))
    assert claims["A7"].verdict == "holds" and "at scale 0.1" in claims["A7"].note and min(a7) == 0.7


def test_claims_fail_when_every_seed_is_on_the_other_side():
    bad = hand_tables(first_ratio=(0.5, 0.9, 0.8), cos_last=(0.3, 0.1, 0.2), drop_first=(0.05, 0.05, 0.05),
                      border_first=(1.0, 1.0, 1.0), head_mid=(0.9, 0.95, 0.85))
    claims = _by_id(bad)
    assert claims["A1a"].verdict == "fails" and claims["A1a"].value == pytest.approx(0.2)
    assert claims["A1b"].verdict == "fails"
    assert claims["A2"].verdict == "fails" and claims["A2"].value == pytest.approx(0.7333333 - 1.0)
    assert claims["A3"].verdict == "fails" and claims["A3"].value == pytest.approx(-0.05)
    assert claims["A5"].verdict == "fails" and claims["A5"].value == pytest.approx(0.0) or \
        claims["A5"].verdict == "inconclusive"  # a zero-width interval at 0 is not below 0
    # A6: rise 0.3 > 0 on every seed but a fall of 0.1, 0.15, 0.05 > tau between heads 1 and 2
    assert claims["A6"].verdict == "fails" and "largest fall F: 0.1 [0.05, 0.15] fails" in claims["A6"].note


def test_mixed_seeds_make_a_claim_inconclusive():
    """One seed on the other side: the interval (the range of 3 seeds) straddles the threshold."""
    claims = _by_id(hand_tables(drop_first=(0.5, 0.05, 0.4), head_mid=(0.7, 0.9, 0.7)))
    assert claims["A3"].verdict == "inconclusive" and claims["A3"].ci_low < 0 < claims["A3"].ci_high
    assert claims["A6"].verdict == "inconclusive"  # F = 0.1 on one seed, -0.1 on two: straddles tau


def test_quality_gate_makes_the_block_claims_inconclusive():
    low = _by_id(hand_tables(test_error=(3.0, 6.0, 3.0)))  # seed 1 at 94 % test accuracy < 0.95
    for cid in ("A1a", "A1b", "A2", "A3", "A5", "A6", "A7"):
        assert low[cid].verdict == "inconclusive", cid
        assert "below the quality gate" in low[cid].note and "seeds below: [1]" in low[cid].note
    assert low["A3"].value == pytest.approx(0.3)  # the value and interval are still reported
    assert low["A4a"].verdict == "holds"  # initialisation: no gate
    a7 = _by_id(hand_tables(final_loss=(0.005, 0.02, 0.005)))  # G_A7: train loss <= 0.01
    assert a7["A7"].verdict == "inconclusive" and a7["A3"].verdict == "holds"


def test_a5_needs_ten_borderline_examples_per_seed_and_a4a_prefers_the_init_only_job():
    claims = _by_id(hand_tables(border_n=(20, 9, 20)))
    assert claims["A5"].verdict == "inconclusive" and "seeds [1]" in claims["A5"].note
    t = hand_tables()
    t["sharing_init"] = pd.DataFrame([dict(experiment="e", seed=s, variant=v, stage=0, metric="growth", value=g)
                                      for s in range(10) for v, g in (("unshared", 2.0), ("naive", 1.0))])
    a4a = _by_id(t)["A4a"]
    assert a4a.value == pytest.approx(math.log(0.5)) and a4a.verdict == "fails" and a4a.n_seeds == 10
    # fewer than 3 seeds: inconclusive, never a verdict
    few = {k: (v[v["seed"] < 2] if "seed" in v else v) for k, v in hand_tables().items()}
    for claim in it_claims.evaluate_claims(few):
        assert claim.verdict == "inconclusive", claim.id


def test_every_run_skipped_gives_no_number():
    skipped = {k: v.iloc[0:0] for k, v in hand_tables().items()}
    skipped["runs"] = hand_tables()["runs"].assign(status="diverged")
    for claim in it_claims.evaluate_claims(skipped):
        assert claim.verdict == "inconclusive" and claim.value is None, claim
        assert "Skipped (not completed)" in claim.note


def test_claim_ids_are_registered():
    from repro.claims import registered_scales

    for claim in it_claims.evaluate_claims(hand_tables()):
        assert registered_scales(claim.id)


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
    assert naive.seeds == 2 and naive.test_error_mean == pytest.approx(7.0)  # the diverged seed is left out
    assert "1 of 3 runs not completed" in naive.note
    ubn = t1[t1.variant == "UBN"].iloc[0]
    assert ubn.test_error_mean == pytest.approx(3.0) and ubn.test_error_sd == pytest.approx(1.0)
    assert "3.00 ± 1.00" in (out / "table1.md").read_text()
    assert r"\pm" in (out / "table1.tex").read_text()
    curves = pd.read_csv(out / "curves.csv")
    err = curves[(curves.metric == "error") & (curves.split == "test") & (curves.epoch == 1)]
    assert len(err) == 9 and set(curves.columns) >= {"experiment", "run", "seed", "epoch", "step", "metric", "value"}
    claims = it_claims.write_claims(out, tmp_path / "claims.csv")
    assert list(claims.columns) == ["id", "paper", "statement", "statistic", "threshold", "value", "ci_low",
                                    "ci_high", "interval", "n_seeds", "scale", "verdict", "note"]
    assert "naive_s1 (diverged)" in claims.set_index("id").loc["A4b", "note"]


# ---------------------------------------------------------------- cosine_out, sharing at init


def _float64_resnet(seed=0, **kw):
    torch.manual_seed(seed)
    spec = dict(widths=(2, 3), blocks_per_stage=3)
    spec.update(kw)
    model = PreActResNet(1, 3, **spec).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-trivial BN running statistics and affine parameters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g, dtype=torch.float64))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g, dtype=torch.float64))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g, dtype=torch.float64))
    return model.eval()


def _output_side_cosines(model, x1, y1):
    """For ONE example, every block i: cos(F_i, dl/d out_i), out_i = h_i + F_i(h_i), the gradient
    taken on a fresh leaf at the block output and the rest of the network run from it."""
    items = block_items(model)
    out = []
    for i in range(len(items)):
        _, b, h_in = forward_to_block(model, items, x1, i)
        with torch.no_grad():
            base, f = b.base_and_residual(h_in)
            leaf = (base + f).clone().requires_grad_(True)
        h = forward_from_block(items, i, leaf)
        (g,) = torch.autograd.grad(F.cross_entropy(model.head(h), y1), leaf)
        f, g = f.reshape(-1), g.reshape(-1)
        out.append(float(f @ g / (f.norm() * g.norm())))
    return out


@pytest.mark.parametrize("kw", [dict(), dict(downsample="none", widths=(3,)), dict(shared_blocks=2)])
def test_cosine_out_matches_a_hand_computed_output_gradient_in_float64(kw):
    model = _float64_resnet(**kw)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(5, 1, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (5,), generator=g)
    got = blocks.block_statistics(model, [(x[:2], y[:2]), (x[2:], y[2:])])
    expected = np.array([_output_side_cosines(model, x[n:n + 1], y[n:n + 1]) for n in range(len(y))]).mean(0)
    np.testing.assert_allclose(got["cosine_out"], expected, rtol=1e-10, atol=1e-12)
    # a projection block's F does not depend on P(h): its input-side gradient is the output one
    proj = [i for i, (s, p) in enumerate(model.block_index()) if p == 0 and model.stages[s][0].projection is not None]
    np.testing.assert_allclose(got["cosine"].iloc[proj], got["cosine_out"].iloc[proj], rtol=1e-10)
    assert list(blocks.block_metrics(model, [(x, y)]).columns) == ["block", "cosine", "norm_ratio"]  # API kept


def test_sharing_init_variants_differ_only_by_sharing_and_match_init_diagnostics(digits):
    """A4a's init-only job: per seed the naive and unshared networks come from the same generator
    state, differ only in sharing (naive keeps BN gamma = 1, as unshared), and the table holds
    blocks.init_diagnostics of exactly those networks."""
    spec = dict(name="resnet", widths=[4, 8], blocks_per_stage=4)
    cfg = dict(experiment="e", run="unshared_s0", seed=0, dataset="digits", model=spec)
    settings = plan.settings_for({"init_batch": 32})
    frame = measure.sharing_init_frame(cfg, ["unshared", "naive", "UBN"], 3, [0, 1], digits, settings)
    assert set(frame["variant"]) == {"unshared", "naive", "UBN"} and set(frame["seed"]) == {0, 1}
    assert set(frame["span"]) == {3} and frame["value"].notna().all()
    x, y = measure.subset(digits.x_train, digits.y_train, 32, settings["subset_seed"])
    for variant, extra in (("unshared", {}), ("naive", dict(shared_blocks=3, shared_bn="naive"))):
        torch.manual_seed(1)
        model = PreActResNet(1, 10, widths=(4, 8), blocks_per_stage=4, **extra)
        stage1 = model.stages[1]
        assert (stage1[1].conv1 is stage1[3].conv1) == (variant == "naive")
        assert all(float(m.weight.detach().min()) == 1.0 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        _, per_stage = blocks.init_diagnostics(model, (x, y), 3)
        got = frame[(frame["seed"] == 1) & (frame["variant"] == variant) & (frame["metric"] == "growth")]
        np.testing.assert_allclose(got.sort_values("stage")["value"], per_stage["growth"], rtol=1e-6)
    ratio = it_claims.log_growth_ratio(frame, "naive")
    m = frame[frame["metric"] == "growth"].groupby(["seed", "variant"])["value"].mean()
    assert ratio.set_index("seed")["value"][0] == pytest.approx(math.log(m[0, "naive"] / m[0, "unshared"]))
