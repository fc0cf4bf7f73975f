"""Paper B analysis (repro.minima): exact checks on tiny hand-made cases."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from repro import io
from repro import stats
from repro.minima import claims as mc
from repro.minima import figures as mf
from repro.minima import measure as mm
from repro.minima import plan as mp
from repro.minima import tables as mt
from repro.config import ConfigError, expand_runs
from repro.data import Dataset
from repro.models import build_model
from repro.runs import RunRecord
from repro.schedules import batch_size_at, lr_at


# ------------------------------------------------------------------ helpers


def _status(lr, bs, seed=0, status="completed", train_loss=0.04, target=0.05, test_acc=0.9, reason=None):
    final = dict(train_loss=train_loss, train_acc=0.99, test_loss=0.3, test_acc=test_acc) if status == "completed" \
        else dict(train_loss=math.nan, train_acc=math.nan, test_loss=math.nan, test_acc=math.nan)
    train = dict(lr=lr, batch_size=bs, epochs=50)
    if target is not None:
        train["stop_at_train_loss"] = target
    return dict(status=status, stop_reason=reason or ("reached train loss" if status == "completed" else "loss nan"),
                epochs_completed=7, steps=700, final=final, config=dict(seed=seed, train=train))


def _write_run(root, exp, run, status: dict):
    d = root / "runs" / exp / run
    d.mkdir(parents=True, exist_ok=True)
    (d / "status.json").write_text(json.dumps(status))
    return d


def _wide(rows):
    """A runs_wide-like frame from (lr, bs, seed, lambda_max, test_acc, status, matched) tuples."""
    recs = []
    for lr, bs, seed, lam, acc, status, matched in rows:
        recs.append(dict(group="g", experiment="e", run=f"lr{lr}_bs{bs}_s{seed}", seed=seed, lr=lr, batch_size=bs,
                         lr_over_batch=lr / bs, status=status, matched=matched, equal_ratio=False, target_loss=0.05,
                         epoch=5, step=50, note="" if status == "completed" else "diverged: x", lambda_max=lam,
                         hessian_trace=10 * lam if lam == lam else math.nan, hessian_trace_stderr=0.1,
                         subset_loss=0.04, train_loss=0.04, train_acc=0.99, test_loss=0.3, test_acc=acc))
    return pd.DataFrame(recs)


def _explicit_spearman(x, y) -> float:
    def ranks(v):
        out = []
        for i in range(len(v)):
            less = sum(1 for j in range(len(v)) if v[j] < v[i])
            equal = sum(1 for j in range(len(v)) if v[j] == v[i])
            out.append(less + (equal + 1) / 2)  # average rank of a tie group (1-based)
        return out

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


# ------------------------------------------------------------------ statistics


def test_spearman_matches_explicit_rank_correlation_with_ties():
    x = [1e-4, 2e-4, 2e-4, 4e-4, 8e-4, 1.6e-3, 3.2e-3]
    y = [9.0, 7.5, 8.0, 8.0, 3.0, 4.0, 1.0]
    rho, p, n = stats.spearman(x, y)
    assert n == 7 and 0 < p < 1
    assert rho == pytest.approx(_explicit_spearman(x, y), abs=1e-12)
    # missing values are dropped, not used as numbers
    rho2, _, n2 = stats.spearman(x + [5e-3], y + [math.nan])
    assert n2 == 7 and rho2 == pytest.approx(rho, abs=1e-12)
    assert math.isnan(stats.spearman([1, 2], [2, 1])[0])


def test_partial_spearman_is_the_rank_correlation_of_regression_residuals():
    g = np.random.default_rng(0)
    z = g.normal(size=12)
    x = z + g.normal(size=12)
    y = -z + 0.5 * x + g.normal(size=12)

    def ranks(v):
        return np.array([sum(1 for w in v if w < u) + 1.0 for u in v])  # no ties here

    def residual(a, b):  # least squares a ~ c0 + c1 b, written out
        bm, am = b.mean(), a.mean()
        c1 = ((a - am) * (b - bm)).sum() / ((b - bm) ** 2).sum()
        return a - am - c1 * (b - bm)

    ex, ey = residual(ranks(x), ranks(z)), residual(ranks(y), ranks(z))
    expected = (ex * ey).sum() / math.sqrt((ex ** 2).sum() * (ey ** 2).sum())
    assert stats.partial_spearman(x, y, z) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(stats.partial_spearman(x[:3], y[:3], z[:3]))


def test_ratio_pairs_and_closeness_by_hand():
    # (lr, bs, seed, lambda_max, test_acc)
    runs = [(0.1, 32, 0, 4.0, 0.90), (0.05, 16, 0, 5.0, 0.91), (0.1, 64, 0, 8.0, 0.88),
            (0.05, 32, 0, 10.0, 0.86), (0.2, 256, 0, 1.0, 0.95), (0.1, 32, 1, 3.0, 0.5)]
    wide = _wide([(lr, bs, s, lam, acc, "completed", True) for lr, bs, s, lam, acc in runs])
    equal, step, factor = mc.ratio_pairs(wide)
    names = lambda pairs: sorted(tuple(sorted((p["lr"], p["batch_size"]) for p in pq)) for pq in pairs)  # noqa: E731
    assert names(equal) == [((0.05, 16), (0.1, 32)), ((0.05, 32), (0.1, 64))]
    assert names(step) == [((0.05, 16), (0.05, 32)), ((0.05, 32), (0.1, 32)), ((0.1, 32), (0.1, 64))]
    assert factor == pytest.approx(2.0)
    me, ms, ratio = stats.pair_closeness(equal, step, "lambda_max", log=True)
    assert me == pytest.approx(math.log(1.25), abs=1e-12)
    assert ms == pytest.approx((2 * math.log(2) + math.log(2.5)) / 3, abs=1e-12)
    assert ratio == pytest.approx(me / ms, abs=1e-12)
    me, ms, _ = stats.pair_closeness(equal, step, "test_acc", log=False)
    assert me == pytest.approx((0.01 + 0.02) / 2, abs=1e-12)
    assert ms == pytest.approx((0.02 + 0.04 + 0.05) / 3, abs=1e-12)


def _seeded(rows, seeds=(0, 1, 2)):
    """The same (lr, bs, lambda_max, test_acc, status, matched) rows for every seed."""
    return _wide([(lr, bs, seed, lam, acc, st, m) for seed in seeds for lr, bs, lam, acc, st, m in rows])


def test_sharpness_claims_sign_threshold_interval_and_exclusions():
    ratios = [(0.025, 128), (0.025, 64), (0.05, 64), (0.05, 32), (0.1, 32), (0.2, 32)]
    rows = [(lr, bs, 1.0 / (lr / bs), 0.8 + lr, "completed", True) for lr, bs in ratios]
    falling = _seeded(rows + [(5.0, 16, math.nan, math.nan, "diverged", False)])
    falling["test_loss"] = 1.0 - falling.lr  # lower test loss at larger eta (not monotone in eta/S)
    claims = {c.id: c for c in mc.sharpness_claims(falling)}
    # identical seeds: every resample gives rho = -1, the interval is the point
    assert claims["B1a"].value == pytest.approx(-1.0) and claims["B1a"].verdict == "holds"
    assert (claims["B1a"].ci_low, claims["B1a"].ci_high) == (pytest.approx(-1.0), pytest.approx(-1.0))
    assert claims["B1a"].n_seeds == 3 and "bootstrap over seeds [0, 1, 2]" in claims["B1a"].interval
    x = [lr / bs for lr, bs in ratios] * 3
    assert claims["B2"].value == pytest.approx(_explicit_spearman(x, [1.0 - lr for lr, _ in ratios] * 3), abs=1e-4)
    assert "test accuracy" in claims["B2"].note and "3 diverged" in claims["B1a"].note
    rising = falling.assign(lambda_max=falling.lr_over_batch, hessian_trace=falling.lr_over_batch)
    assert {c.id: c for c in mc.sharpness_claims(rising)}["B1a"].verdict == "fails"
    # one seed: the claim is computed but inconclusive (the protocol needs >= 3 seeds)
    one = {c.id: c for c in mc.sharpness_claims(falling[falling.seed == 0])}
    assert one["B1a"].value == pytest.approx(-1.0) and one["B1a"].verdict == "inconclusive"
    assert "only 1 seed" in one["B1a"].note
    # the verdict reads the interval: seed 2 reversed makes the interval straddle -0.5
    mixed = falling.copy()
    two = mixed.seed == 2
    mixed.loc[two, "lambda_max"] = mixed.loc[two, "lr_over_batch"]
    c = {c.id: c for c in mc.sharpness_claims(mixed)}["B1a"]
    assert c.ci_low == pytest.approx(-1.0) and c.ci_high > -0.5 and c.verdict == "inconclusive"
    again = {c.id: c for c in mc.sharpness_claims(mixed)}["B1a"]
    assert (again.ci_low, again.ci_high) == (c.ci_low, c.ci_high)  # fixed generator: reproducible
    # two groups are never compared with each other: claims per group, with the group in the id
    both = pd.concat([falling, rising.assign(group="h")], ignore_index=True)
    by_id = {c.id: c for c in mc.sharpness_claims(both)}
    assert by_id["B1a[g]"].verdict == "holds" and by_id["B1a[h]"].verdict == "fails"
    # runs that never reached the target are not compared
    unmatched = falling.assign(matched=False)
    assert all(c.verdict == "inconclusive" for c in mc.sharpness_claims(unmatched))


def test_closeness_ratio_under_the_seed_bootstrap_by_hand():
    # per seed: equal pair (0.05/16, 0.1/32) differs by log 1.25 in lambda_max; one-step pairs by log 4
    def seed_rows(seed, eq):
        return [(0.05, 16, seed, 4.0, 0.9, "completed", True), (0.1, 32, seed, 4.0 * eq, 0.9, "completed", True),
                (0.1, 128, seed, 16.0 * eq, 0.9, "completed", True), (0.4, 32, seed, 1.0 * eq, 0.9, "completed", True)]
    wide = _wide(seed_rows(0, 1.25) + seed_rows(1, 1.25) + seed_rows(2, 2.0))
    # seed s: equal |log eq|; one-step pairs (0.1/32 with 0.1/128 and 0.4/32), factor 4: |log 4| each
    per_seed = [math.log(1.25) / math.log(4), math.log(1.25) / math.log(4), math.log(2.0) / math.log(4)]
    assert mc.closeness_ratio(wide, "lambda_max", True) == pytest.approx(
        (2 * math.log(1.25) + math.log(2.0)) / 3 / math.log(4), abs=1e-12)
    c = {c.id: c for c in mc.sharpness_claims(wide)}["B3a"]
    assert c.ci_low == pytest.approx(min(per_seed)) and c.ci_high == pytest.approx(max(per_seed))  # n = 3: the range
    assert c.verdict == "holds"


# ------------------------------------------------------------------ schedules and eta/S bookkeeping


CLR = dict(lr=0.01, batch_size=32, lr_schedule=dict(type="cyclic", low=0.01, high=0.05, stage_length=2, start="low"))
CBS = dict(lr=0.05, batch_size=32, batch_schedule=dict(type="cyclic", low=32, high=160, stage_length=2, start="high"))


def test_cyclic_batch_size_is_the_eta_over_s_mirror_of_cyclic_lr():
    # by hand, stage length 2: triangle 0, .5, 1, .5, 0 ...
    assert [lr_at(CLR, e) for e in range(5)] == pytest.approx([0.01, 0.03, 0.05, 0.03, 0.01])
    assert [batch_size_at(CBS, e) for e in range(5)] == [160, 53, 32, 53, 160]  # 1/S linear: 1/(.5/32 + .5/160)
    for e in range(12):
        clr = lr_at(CLR, e) / batch_size_at(CLR, e)
        s = batch_size_at(CBS, e)
        cbs = lr_at(CBS, e) / s
        assert abs(cbs - clr) / clr <= 0.5 / s + 1e-12  # equal up to rounding S to an integer


def test_mean_ratio_per_epoch_and_per_step_by_hand():
    hist = pd.DataFrame(dict(epoch=[0, 1, 2, 3], step=[0, 25, 100, 125], lr=[0.05] * 4,
                             batch_size=[160, 160, 53, 160], train_loss=1.0, train_acc=0.5, test_loss=1.0,
                             test_acc=0.5))
    per_epoch, per_step = mt.mean_ratio(hist)
    r = [0.05 / 160, 0.05 / 53, 0.05 / 160]
    steps = [25, 75, 25]
    assert per_epoch == pytest.approx(sum(r) / 3, rel=1e-12)
    assert per_step == pytest.approx(sum(a * b for a, b in zip(r, steps)) / sum(steps), rel=1e-12)


def _sched_status(train, seed, acc, status="completed", loss=0.01):
    st = _status(train["lr"], train["batch_size"], seed=seed, status=status, train_loss=loss, test_acc=acc,
                 target=None)
    st["config"]["train"] = dict(train, epochs=4)
    return st


def _sched_items(values):
    items = []
    for name, train, accs, loss in values:
        for seed, acc in enumerate(accs):
            status = "diverged" if acc is None else "completed"
            st = _sched_status(train, seed, acc if acc is not None else math.nan, status, loss)
            st.update(experiment="minima_s", run=f"{name}_s{seed}")
            hist = pd.DataFrame(dict(epoch=[0, 1], step=[0, 10], lr=[train["lr"]] * 2,
                                     batch_size=[train["batch_size"]] * 2, train_loss=[2.0, loss],
                                     train_acc=0.5, test_loss=1.0, test_acc=[0.1, acc]))
            items.append({"record": RunRecord.from_status(st), "history": hist})
    return items


def test_schedule_claims_by_hand():
    small, large, mean = dict(lr=0.01, batch_size=32), dict(lr=0.05, batch_size=160), dict(lr=0.03, batch_size=32)
    finals, curves = mt.schedule_tables(_sched_items([
        ("cbs", CBS, [0.90, 0.92, 0.91], 0.01), ("clr", CLR, [0.91, 0.925, 0.91], 0.01),
        ("const_small", small, [0.85, 0.86, None], 0.05), ("const_large", large, [0.84, 0.85, 0.84], 0.05),
        ("const_mean", mean, [0.88, 0.87, 0.86], 0.02)]))
    assert set(finals.schedule) == {"cyclic BS", "cyclic LR", "constant eta=0.01, S=32", "constant eta=0.05, S=160",
                                    "constant eta=0.03, S=32"}
    div = finals[(finals.run == "const_small_s2") & (finals.metric == "test_acc")]
    assert div.value.isna().all() and div.note.str.contains("diverged").all()
    claims = {c.id: c for c in mc.schedule_claims(finals)}
    # B4a: per-seed CBS - CLR = -0.01, -0.005, 0: mean -0.005. 90% interval: a resample of one seed
    # thrice has probability 1/27 < 5%, so the bounds are the means of (-0.01, -0.01, -0.005) and (0, 0, -0.005)
    assert claims["B4a"].value == pytest.approx(-0.005, abs=1e-12)
    assert claims["B4a"].ci_low == pytest.approx(-0.025 / 3) and claims["B4a"].ci_high == pytest.approx(-0.005 / 3)
    assert claims["B4a"].verdict == "holds" and claims["B4a"].interval.startswith("90%")
    # B4b: per seed min(cycles) - max(constants incl. const_mean): 0.02, 0.05; seed 2 has a diverged constant
    assert claims["B4b"].value == pytest.approx(0.035, abs=1e-5) and claims["B4b"].n_seeds == 2
    assert claims["B4b"].verdict == "inconclusive" and "the protocol needs >= 3" in claims["B4b"].note
    assert "final train loss per schedule" in claims["B4b"].note
    # cycles 11 points apart on every seed: not interchangeable (fails); a constant on top: B4b fails
    finals2, _ = mt.schedule_tables(_sched_items([
        ("cbs", CBS, [0.80, 0.81, 0.80], 0.01), ("clr", CLR, [0.91, 0.92, 0.91], 0.01),
        ("const_small", small, [0.95, 0.95, 0.95], 0.01), ("const_large", large, [0.84, 0.85, 0.84], 0.01)]))
    verdicts = {c.id: c.verdict for c in mc.schedule_claims(finals2)}
    assert verdicts == {"B4a": "fails", "B4b": "fails"}
    # a known difference of half a point on 5 seeds, 90% interval inside (-1, 1) points: equivalent
    seeds5 = [0.90, 0.91, 0.92, 0.93, 0.94]
    finals3, _ = mt.schedule_tables(_sched_items([
        ("cbs", CBS, [a + 0.005 for a in seeds5], 0.01), ("clr", CLR, seeds5, 0.01),
        ("const_small", small, [a - 0.05 for a in seeds5], 0.01)]))
    c = {c.id: c for c in mc.schedule_claims(finals3)}
    assert c["B4a"].value == pytest.approx(0.005) and c["B4a"].n_seeds == 5 and c["B4a"].verdict == "holds"
    assert c["B4b"].value == pytest.approx(0.05) and c["B4b"].verdict == "holds"
    # an equivalence margin cannot be met by a difference of 1.5 points
    finals4, _ = mt.schedule_tables(_sched_items([("cbs", CBS, [a + 0.015 for a in seeds5], 0.01),
                                                  ("clr", CLR, seeds5, 0.01)]))
    assert {c.id: c.verdict for c in mc.schedule_claims(finals4)}["B4a"] == "fails"
    assert {c.verdict for c in mc.schedule_claims(finals2.iloc[0:0])} == {"inconclusive"}
    md = mt.schedules_markdown(finals, {"minima_s": {"paper_accuracy": {"cbs": 89.39}, "paper_setting": "VGG"}})
    assert "89.39" in md and "91.00 ± 1.00" in md
    assert len(curves) == 15 * 2 * 4  # runs x history rows x (train/test loss/accuracy)


# ------------------------------------------------------------------ per-run facts and table


def test_run_facts_matched_rule(tmp_path):
    cases = {"m": _status(0.1, 32, train_loss=0.049), "late": _status(0.1, 32, train_loss=0.2, reason="max_epochs"),
             "none": _status(0.1, 32, target=None), "div": _status(0.1, 32, status="diverged")}
    facts = {k: mm.run_facts(RunRecord.read(_write_run(tmp_path, "minima_g", k + "_s0", v) / "status.json"))
             for k, v in cases.items()}
    assert facts["m"]["matched"] and facts["m"]["experiment"] == "minima_g" and facts["m"]["run"] == "m_s0"
    assert facts["m"]["lr_over_batch"] == pytest.approx(0.1 / 32)
    assert not facts["late"]["matched"] and "did not reach" in facts["late"]["note"]
    assert not facts["none"]["matched"] and "fixed budget" in facts["none"]["note"]
    assert not facts["div"]["matched"] and facts["div"]["note"].startswith("diverged")


def test_runs_table_missing_values_are_nan_with_reason_never_zero(tmp_path):
    ok = mm.run_facts(RunRecord.read(_write_run(tmp_path, "minima_g", "a_s0", _status(0.1, 32)) / "status.json"))
    ok["sharpness"] = dict(lambda_max=5.0, eigenvalues=[5.0, 3.0], hessian_trace=40.0, hessian_trace_stderr=2.0,
                           subset_loss=0.04)
    div = mm.run_facts(RunRecord.read(_write_run(tmp_path, "minima_b", "b_s0",
                                                 _status(1.0, 320, status="diverged")) / "status.json"))
    div["sharpness"] = dict(lambda_max=None, eigenvalues=[], hessian_trace=None, hessian_trace_stderr=None,
                            subset_loss=None)
    table = mt.runs_table([ok, div], {"minima_b": {"equal_ratio": True, "group": "mlp"}, "minima_g": {"group": "mlp"}})
    assert list(table.columns) == mt.RUN_COLUMNS
    d = table[table.run == "b_s0"]
    assert d.value.isna().all() and (d.value != 0).all() and d.note.str.startswith("diverged").all()
    a = table[table.run == "a_s0"].set_index("metric")
    assert a.loc["lambda_max", "value"] == 5.0 and a.loc["lambda_2", "value"] == 3.0
    assert a.loc["hessian_trace", "stderr"] == 2.0
    assert a.equal_ratio.all()  # same eta/S (0.1/32 = 1/320) as the equal-ratio experiment of its group
    other = mt.runs_table([ok, div], {"minima_b": {"equal_ratio": True, "group": "cnn"}, "minima_g": {"group": "mlp"}})
    assert not other[other.run == "a_s0"].equal_ratio.any()  # another group's diagonal does not count
    wide = mt.runs_wide(table)
    assert len(wide) == 2 and wide.set_index("run").loc["a_s0", "hessian_trace_stderr"] == 2.0
    md = mt.runs_markdown(table)
    assert "diverged" in md and "matched" in md


# ------------------------------------------------------------------ sharpness wiring vs a dense Hessian


def test_measure_sharpness_matches_dense_hessian(tmp_path):
    torch.manual_seed(0)
    spec = {"name": "mlp", "depth": 1, "width": 3}
    model = build_model(spec, (1, 2, 2), 3)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(30, 1, 2, 2, generator=g), torch.randint(0, 3, (30,), generator=g)
    data = Dataset("toy", x, y, x[:5], y[:5], 3)
    run = _write_run(tmp_path, "minima_g", "toy_s0", _status(0.1, 32))
    io.save_torch({"state_dict": model.state_dict(), "model": spec, "input_shape": [1, 2, 2], "num_classes": 3},
                  run / "model.pt")
    settings = dict(mp.paper_defaults()["sharpness"], n_examples=1000, tol=1e-6, n_probes=60, trace_rtol=None,
                    batch_size=7)
    out = mm.measure_sharpness(run / "model.pt", run / "status.json", data, settings)

    m64 = copy.deepcopy(model).double()
    names = [n for n, _ in m64.named_parameters()]
    shapes = [p.shape for _, p in m64.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in m64.named_parameters()])

    def loss(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = flat[i:i + s.numel()].reshape(s)
            i += s.numel()
        logits = torch.func.functional_call(m64, params, (x.double(),))
        return torch.nn.functional.cross_entropy(logits, y)

    H = torch.autograd.functional.hessian(loss, flat0)
    sh = out["sharpness"]
    assert sh["lambda_max"] == pytest.approx(torch.linalg.eigvalsh(H).max().item(), rel=1e-4)
    assert abs(sh["hessian_trace"] - H.trace().item()) <= 5 * sh["hessian_trace_stderr"]
    assert sh["subset_loss"] == pytest.approx(loss(flat0).item(), rel=1e-5)
    assert sh["n_examples"] == 30 and out["matched"]


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory):
    """Two completed runs (MLPs at different random inits) and a diverged one on digits, saved
    as the train rule saves them."""
    root = tmp_path_factory.mktemp("parts")
    spec = {"name": "mlp", "depth": 1, "width": 16}
    cfg = dict(seed=0, dataset="digits", model=spec, train=dict(lr=0.1, batch_size=32, epochs=5, stop_at_train_loss=3.0))
    runs = {}
    for name, seed in (("a_s0", 1), ("b_s0", 2)):
        torch.manual_seed(seed)
        model = build_model(spec, (1, 8, 8), 10)
        d = _write_run(root, "minima_g", name, dict(_status(0.1, 32, train_loss=2.3, target=3.0), config=cfg))
        io.save_torch({"state_dict": model.state_dict(), "model": spec, "input_shape": [1, 8, 8], "num_classes": 10},
                      d / "model.pt")
        runs[name] = d
    runs["c_s0"] = _write_run(root, "minima_g", "c_s0", _status(5.0, 16, status="diverged"))
    return runs


def _without_wall_time(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


def test_a_run_measured_in_a_shared_sharpness_job_equals_its_own_job(tmp_path, digit_runs, one_thread):
    settings = mp.sharpness_settings({"sharpness": {"n_examples": 200, "n_probes": 4, "tol": 0.01}}, {})
    data = mp.data_spec({"dataset": "digits"})

    def job(names, out):
        runs = [digit_runs[n] for n in names]
        return mm.sharpness_job([r / "model.pt" for r in runs], [r / "status.json" for r in runs], [data] * len(runs),
                                tmp_path / out, settings)

    before = torch.get_rng_state()
    shared = job(["a_s0", "c_s0", "b_s0"], "shared.json")
    assert torch.equal(torch.get_rng_state(), before)  # each run starts from (and leaves) the job's random state
    alone = {n: job([n], f"{n}.json") for n in ("a_s0", "b_s0", "c_s0")}
    reverse = job(["b_s0", "c_s0", "a_s0"], "reverse.json")
    assert [r["run"] for r in shared] == ["a_s0", "c_s0", "b_s0"]
    assert shared[0]["sharpness"]["lambda_max"] > 0 and shared[1]["sharpness"]["lambda_max"] is None
    assert _without_wall_time(shared) == _without_wall_time([alone[n][0] for n in ("a_s0", "c_s0", "b_s0")])
    assert _without_wall_time(reverse) == _without_wall_time(shared[::-1])
    # the part's file is a list of the same records, and the runs table reads it per run
    saved = json.loads((tmp_path / "shared.json").read_text())
    assert _without_wall_time(saved) == _without_wall_time(json.loads(json.dumps(shared)))
    assert [r["run"] for r in mt.read_sharpness([tmp_path / "shared.json", tmp_path / "a_s0.json"])] == \
        ["a_s0", "c_s0", "b_s0", "a_s0"]
    assert "runs_per_job" not in saved[0]["settings"]  # job layout is not a measurement setting


def test_a_pair_interpolated_in_a_shared_job_equals_its_own_job(tmp_path, digit_runs, one_thread):
    settings = {k: v for k, v in dict(mp.paper_defaults()["interpolation"], num=25, bn_examples=100).items()
                if k not in ("pairs", "claim_points_only", "pairs_per_job")}
    data = mp.data_spec({"dataset": "digits"})
    pairs = [("ab", "a_s0", "b_s0", False), ("ba", "b_s0", "a_s0", True), ("ac", "a_s0", "c_s0", False)]

    def job(chosen, out):
        specs = [{"pair": p, "a": f"minima_g/{a}", "b": f"minima_g/{b}", "data": data, "group": "g", "label": p,
                  "claim_points_only": only} for p, a, b, only in chosen]
        ends = [digit_runs[r] for _, a, b, _ in chosen for r in (a, b)]
        return mm.interpolation_job(specs, [e / "model.pt" for e in ends], [e / "status.json" for e in ends],
                                    tmp_path / out, settings)

    shared = job(pairs, "shared.csv")
    assert list(shared.pair.unique()) == ["ab", "ba", "ac"]
    assert len(shared[shared.pair == "ba"].alpha.unique()) == 6 and shared[shared.pair == "ac"].value.isna().all()
    for chosen in pairs:
        alone = job([chosen], f"{chosen[0]}.csv")
        pd.testing.assert_frame_equal(shared[shared.pair == chosen[0]].reset_index(drop=True), alone)
        assert shared[shared.pair == chosen[0]].value.notna().sum() == alone.value.notna().sum()
    on_disk = pd.read_csv(tmp_path / "shared.csv")
    assert len(on_disk) == len(shared) and on_disk.value.equals(shared.value)
    with pytest.raises(ValueError, match="2 pairs need 4 models"):
        mm.interpolation_job([{}, {}], ["m"], ["s"], tmp_path / "x.csv", settings)


def test_sharpness_of_a_diverged_run_is_missing_not_zero(tmp_path):
    run = _write_run(tmp_path, "minima_g", "big_s0", _status(5.0, 16, status="diverged"))
    out = mm.measure_sharpness(run / "model.pt", run / "status.json", None, mp.paper_defaults()["sharpness"])
    assert out["sharpness"]["lambda_max"] is None and out["sharpness"]["hessian_trace"] is None
    assert out["status"] == "diverged" and out["note"].startswith("diverged")


def test_interpolation_with_a_diverged_end_is_missing_with_the_reason(tmp_path):
    ok = _write_run(tmp_path, "minima_g", "a_s0", _status(0.1, 32))
    bad = _write_run(tmp_path, "minima_g", "b_s0", _status(9.0, 16, status="diverged", reason="loss nan at epoch 1"))
    settings = mp.paper_defaults()["interpolation"]
    table = mm.interpolate_pair("p", {"model": ok / "model.pt", "status": ok / "status.json", "data": {}},
                                {"model": bad / "model.pt", "status": bad / "status.json", "data": {}}, settings)
    assert len(table) == 35 * 2 * 2 and table.alpha.min() == -1 and table.alpha.max() == 2  # + the 4 B7 points
    assert table.value.isna().all() and table.note.str.contains("b_s0 diverged: loss nan").all()
    assert (table.b_lr_over_batch == 9.0 / 16).all()
    md = mt.interpolation_markdown(table)
    assert "diverged" in md
    mf.plot_interpolation(table, tmp_path / "i.png")
    assert (tmp_path / "i.png").stat().st_size > 1000


def test_sharpness_subset_is_fixed_and_class_balanced():
    y = torch.arange(10).repeat(20)
    data = Dataset("toy", torch.randn(200, 1, 1, 1), y, y[:1].float(), y[:1], 10)
    a = mm.sharpness_batches(data, 50, 0, 20)
    b = mm.sharpness_batches(data, 50, 0, 20)
    assert [len(t[1]) for t in a] == [20, 20, 10]
    ya = torch.cat([t[1] for t in a])
    assert torch.equal(ya, torch.cat([t[1] for t in b]))
    assert torch.bincount(ya).tolist() == [5] * 10


# ------------------------------------------------------------------ configuration


def _config(**minima):
    exp = dict(paper="minima", dataset="digits", model=dict(name="mlp", depth=1, width=8),
               train=dict(epochs=2, batch_size=32, lr=0.1, stop_at_train_loss=0.5), analysis=dict(role="sharpness"))
    return dict(experiments=dict(minima_g=exp), minima=minima)


def test_plan_checks_pairs_roles_and_analysis_keys():
    cfg = _config(interpolation=dict(pairs=dict(p=dict(a="minima_g/base_s0", b="minima_g/base_s0"))))
    plan = mp.plan(cfg, expand_runs(cfg))
    assert plan["sharpness"] == [("minima_g", "base_s0")] and plan["pairs"]["p"]["a"] == ("minima_g", "base_s0")
    assert plan["experiments"]["minima_g"]["group"] == "digits mlp depth1 width8"
    bad = _config(interpolation=dict(pairs=dict(p=dict(a="minima_g/nope_s0", b="minima_g/base_s0"))))
    with pytest.raises(ConfigError, match="pairs.p.a: no run 'minima_g/nope_s0'"):
        mp.plan(bad, expand_runs(bad))
    cyc = _config()
    cyc["experiments"]["minima_g"]["train"]["lr_schedule"] = dict(type="cyclic", low=0.01, high=0.1, stage_length=1)
    with pytest.raises(ConfigError, match="role: schedule"):
        mp.plan(cyc, expand_runs(cyc))
    typo = _config()
    typo["experiments"]["minima_g"]["analysis"] = dict(role="sharpness", equal_rato=True)
    with pytest.raises(ConfigError, match="experiments.minima_g.analysis"):
        mp.plan(typo, expand_runs(typo))
    settings = mp.sharpness_settings({"sharpness": {"n_probes": 7}}, {"sharpness": {"tol": 0.5}})
    assert settings["n_probes"] == 7 and settings["tol"] == 0.5 and settings["n_examples"] == 1000


def test_job_parts_keep_order_and_name_a_single_run_after_itself():
    names = ["r1_s0", "r2_s0", "r3_s0"]
    assert mp.job_parts(names, None) == {"part1of1": names}
    assert mp.job_parts(names, 5) == {"part1of1": names}
    assert mp.job_parts(names, 2) == {"part1of2": ["r1_s0", "r2_s0"], "part2of2": ["r3_s0"]}
    assert mp.job_parts(names, 1) == {n: [n] for n in names}  # paper scale: one cached file per run
    assert mp.job_parts([], None) == {} and mp.job_parts([], 1) == {}


def _workflow(cfg):
    from repro.settings import validate_config

    cfg = validate_config(cfg)
    return mp.Workflow(cfg, expand_runs(cfg), "results", lambda e, r: f"results/runs/{e}/{r}")


def test_workflow_parts_per_experiment_and_the_paper_scale_keeps_one_per_job():
    import yaml
    from pathlib import Path
    from types import SimpleNamespace as W

    cfg = _config(interpolation=dict(pairs={"p": dict(a="minima_g/base_s0", b="minima_h/base_s1"),
                                            "q_s1": dict(a="minima_h/base_s0", b="minima_h/base_s1")},
                                     claim_points_only=["_s1"]))
    cfg["experiments"]["minima_g"]["seeds"] = [0, 1, 2]
    cfg["experiments"]["minima_h"] = dict(copy.deepcopy(cfg["experiments"]["minima_g"]), seeds=[0, 1])
    cfg["experiments"]["minima_h"]["analysis"] = dict(role="sharpness", sharpness=dict(n_probes=5))
    flow = _workflow(copy.deepcopy(cfg))  # default: all runs of an experiment, all pairs, in one job each
    assert flow.sharpness_parts == {("minima_g", "part1of1"): ["base_s0", "base_s1", "base_s2"],
                                    ("minima_h", "part1of1"): ["base_s0", "base_s1"]}
    assert flow.sharpness_files() == ["results/metrics/minima/sharpness/minima_g/part1of1.json",
                                      "results/metrics/minima/sharpness/minima_h/part1of1.json"]
    wc = W(experiment="minima_h", part="part1of1")
    assert flow.sharpness_inputs(wc)["models"] == ["results/runs/minima_h/base_s0/model.pt",
                                                   "results/runs/minima_h/base_s1/model.pt"]
    assert len(flow.sharpness_data(wc)) == 2 and flow.sharpness_settings(wc)["n_probes"] == 5
    assert "runs_per_job" not in flow.sharpness_settings(wc)
    specs = flow.pair_specs(W(part="part1of1"))
    assert [(s["pair"], s["claim_points_only"]) for s in specs] == [("p", False), ("q_s1", True)]
    assert flow.pair_inputs(W(part="part1of1"))["statuses"] == [
        f"results/runs/{r}/status.json" for r in ("minima_g/base_s0", "minima_h/base_s1", "minima_h/base_s0",
                                                  "minima_h/base_s1")]
    assert set(flow.interpolation_settings()) >= {"num", "side_offset"}
    assert not set(flow.interpolation_settings()) & {"pairs", "claim_points_only", "pairs_per_job"}
    # a part's time limit: start-up once + the sum over its runs; pairs: the sum over its pairs
    one = flow.sharpness_runtime(W(experiment="minima_g", part="part1of1"), 1)
    assert one == mp.costs.measure_runtime_sum_min([(flow.runs[("minima_g", f"base_s{s}")], mp.costs.sharpness_passes(
        flow.paper_settings("sharpness"), 1437)) for s in range(3)], 1)
    assert flow.interpolation_runtime(W(part="part1of1")) == 2 * mp.costs.INTERPOLATION_PAIR_MIN

    cfg["minima"]["sharpness"] = dict(runs_per_job=2)
    cfg["minima"]["interpolation"]["pairs_per_job"] = 1
    flow = _workflow(copy.deepcopy(cfg))
    assert flow.sharpness_parts == {("minima_g", "part1of2"): ["base_s0", "base_s1"],
                                    ("minima_g", "part2of2"): ["base_s2"], ("minima_h", "part1of1"): ["base_s0", "base_s1"]}
    assert flow.interpolation_files() == ["results/metrics/minima/interpolation/p.csv",
                                          "results/metrics/minima/interpolation/q_s1.csv"]
    assert flow.interpolation_runtime(W(part="p")) == mp.costs.INTERPOLATION_PAIR_MIN
    cfg["minima"]["sharpness"] = dict(runs_per_job=1)
    assert _workflow(copy.deepcopy(cfg)).sharpness_files()[0] == "results/metrics/minima/sharpness/minima_g/base_s0.json"
    bad = copy.deepcopy(cfg)
    bad["minima"]["sharpness"] = dict(runs_per_job=0)
    with pytest.raises(ConfigError, match="runs_per_job"):
        _workflow(bad)
    # the paper scale (SLURM, one GPU per job) keeps one cached job per run and per pair
    paper = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "paper.yaml").read_text())["minima"]
    assert paper["sharpness"]["runs_per_job"] == 1 and paper["interpolation"]["pairs_per_job"] == 1


# ------------------------------------------------------------------ figures (edge cases; the workflow test renders real ones)


def test_figures_render_when_every_run_diverged(tmp_path):
    table = mt.runs_table([dict(mm.run_facts(RunRecord.read(_write_run(tmp_path, "minima_g", f"r{i}_s0",
                                                                        _status(9.0 * (i + 1), 16, status="diverged"))
                                                             / "status.json")),
                                sharpness={}) for i in range(2)], {})
    table.to_csv(tmp_path / "runs.csv", index=False)
    out = {f"{k}_{e}": tmp_path / f"{k}.{e}" for k in ("sharpness", "accuracy", "heatmap") for e in ("png", "pdf")}
    mf.plot_ratio_figures(tmp_path / "runs.csv", out)
    mf.plot_schedules(pd.DataFrame(columns=mt.CURVE_COLUMNS), tmp_path / "s.png")
    mf.plot_interpolation(pd.DataFrame(columns=["pair"]), tmp_path / "i.png")
    for path in list(out.values()) + [tmp_path / "s.png", tmp_path / "i.pdf"]:
        assert path.stat().st_size > 1000
    claims = {c.id: c.verdict for c in mc.sharpness_claims(mt.runs_wide(table))}
    assert set(claims.values()) == {"inconclusive"}
    assert np.isnan(mt.runs_wide(table).lambda_max).all()


# ------------------------------------------------------------------ interpolation side rises (B7)


def _curve(pair, ra, rb, loss, alphas, group="g", seed=0):
    """An interpolation table for one pair whose train loss is loss(alpha) (test: 2 * loss);
    the pair is the seed-`seed` replicate of the comparison `pair`."""
    rows = []
    for al in alphas:
        for split, scale in (("train", 1.0), ("test", 2.0)):
            rows.append(dict(pair=f"{pair}_s{seed}", label=pair, group=group, a_experiment="e", a_run=f"{pair}a_s{seed}",
                             a_seed=seed, b_experiment="e", b_run=f"{pair}b_s{seed}", a_lr_over_batch=ra,
                             b_lr_over_batch=rb, alpha=al, split=split, metric="loss", value=scale * loss(al), note=""))
            rows.append({**rows[-1], "metric": "accuracy", "value": 0.9})
    return pd.DataFrame(rows)


def test_second_difference_of_a_quadratic_is_its_curvature_whatever_the_gradient():
    for g in (0.0, 3.0, -40.0):          # the ends of matched-loss runs are not minima: g != 0
        for k, x0, d in ((2.0, 0.0, 0.25), (16.0, 1.0, 0.25), (0.5, 1.0, 0.1)):
            loss = lambda a, g=g, k=k, x0=x0: 0.05 + g * (a - x0) + 0.5 * k * (a - x0) ** 2  # noqa: E731
            assert mc.second_difference(loss(x0 - d), loss(x0), loss(x0 + d), d) == pytest.approx(k, abs=1e-9)
    assert math.isnan(mc.second_difference(math.nan, 1.0, 1.0, 0.25))


def test_end_curvature_matches_the_exact_directional_second_derivative_float64():
    # cross-entropy of a softmax-linear model along theta_a + t (theta_b - theta_a), in float64:
    # the second difference at small d against v^T H v from torch.func.hessian (exact)
    from torch.func import hessian

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=gen, dtype=torch.float64), torch.randint(0, 3, (40,), generator=gen)
    theta_a, theta_b = torch.randn(15, generator=gen, dtype=torch.float64), torch.randn(15, generator=gen,
                                                                                          dtype=torch.float64)
    loss = lambda th: torch.nn.functional.cross_entropy(x @ th.view(5, 3), y)  # noqa: E731
    v = theta_b - theta_a
    line = lambda al: float(loss(theta_a + al * v))  # noqa: E731
    d = 1e-3
    alphas = [-d, 0.0, d, 1 - d, 1.0, 1 + d]
    curve = pd.DataFrame(dict(alpha=alphas, split="train", metric="loss", value=[line(a) for a in alphas]))
    k = mc.end_curvatures(curve, d)
    for end, theta in (("a", theta_a), ("b", theta_b)):
        exact = float(v @ hessian(loss)(theta) @ v)
        assert k[f"kappa_{end}"] == pytest.approx(exact, rel=1e-4)
    assert k["loss_a"] == pytest.approx(line(0.0)) and k["rise_b"] == pytest.approx(line(1 + d) - line(1.0))


def test_claim_points_only_evaluates_the_six_points_of_b7():
    settings = dict(mp.paper_defaults()["interpolation"], num=13)  # -1 .. 2 in steps of 0.25
    alphas = mm.interpolation_alphas(settings)
    assert {-0.25, 0.0, 0.25, 0.75, 1.0, 1.25} <= set(alphas) and len(alphas) == 13
    assert len(mm.interpolation_alphas(dict(settings, num=31))) == 35  # four B7 points added to a 0.1 grid
    assert mm.interpolation_alphas(dict(settings, claim_points_only=True)) == [-0.25, 0.0, 0.25, 0.75, 1.0, 1.25]


def test_end_curvatures_and_interpolation_claims_by_hand():
    alphas = mm.claim_alphas(0.25)

    def pairs(label, ra, rb, ka, kb, ga=0.3, gb=-0.2, seeds=(0, 1, 2)):
        """Quadratic wells with curvature ka at a and kb at b and non-zero slopes at both ends."""
        f = lambda a: 0.05 + (ga * a + 0.5 * ka * a * a if a <= 0.5 else gb * (a - 1) + 0.5 * kb * (a - 1) ** 2)  # noqa: E731
        return pd.concat([_curve(label, ra, rb, f, alphas, seed=s) for s in seeds])

    diff = pairs("d", 0.01, 0.0025, 4.0, 16.0)                # b has the lower eta/S and the larger curvature
    eq = pairs("q", 0.004, 0.004 * 1.25, 8.0, 10.0)           # equal eta/S (within half a x2 step)
    sides = mc.side_table(pd.concat([diff, eq]), 0.25).set_index("pair")
    assert sides.loc["d_s1", "kappa_a"] == pytest.approx(4.0) and sides.loc["d_s1", "kappa_b"] == pytest.approx(16.0)
    assert sides.loc["d_s2", "label"] == "d" and sides.loc["d_s2", "seed"] == 2
    assert not sides.loc["d_s0", "equal_ratio"] and sides.loc["q_s0", "equal_ratio"]
    assert sides.loc["d_s0", "log_ratio"] == pytest.approx(math.log(4.0))   # low-eta/S end (b) / high (a)
    assert sides.loc["q_s0", "log_ratio"] == pytest.approx(math.log(0.8))   # a / b for an equal pair
    claims = {c.id: c for c in mc.interpolation_claims(pd.concat([diff, eq]), 0.25)}
    assert claims["B7a"].value == pytest.approx(math.log(4.0)) and claims["B7a"].verdict == "holds"
    assert claims["B7a"].n_seeds == 3
    assert claims["B7b"].value == pytest.approx(math.log(0.8)) and claims["B7b"].verdict == "holds"
    assert claims["B7b"].interval.startswith("90%")
    # equal pair a factor 3 apart on every seed: outside +-log 2, not alike
    far = pairs("q", 0.004, 0.004 * 1.25, 30.0, 10.0)
    assert {c.id: c.verdict for c in mc.interpolation_claims(pd.concat([diff, far]), 0.25)}["B7b"] == "fails"
    # the sharper end at the high-eta/S model: B7a fails (one label failing fails the claim)
    flipped = pairs("f", 0.0025, 0.01, 4.0, 16.0)
    assert {c.id: c.verdict for c in mc.interpolation_claims(pd.concat([diff, flipped]), 0.25)}["B7a"] == "fails"
    # a non-convex end: no curvature ratio -> inconclusive, with the reason
    concave = pairs("c", 0.01, 0.0025, -1.0, 16.0)
    c = {c.id: c for c in mc.interpolation_claims(concave, 0.25)}["B7a"]
    assert c.verdict == "inconclusive" and "not convex" in c.note
    # one seed only: inconclusive
    assert {c.id: c.verdict for c in mc.interpolation_claims(pairs("d", 0.01, 0.0025, 4.0, 16.0, seeds=(0,)),
                                                               0.25)}["B7a"] == "inconclusive"
    # pairs of two groups are never compared with each other
    two = {c.id: c.verdict for c in mc.interpolation_claims(pd.concat([diff, eq.assign(group="h")]), 0.25)}
    assert two == {"B7a[g]": "holds", "B7b[g]": "inconclusive", "B7a[h]": "inconclusive", "B7b[h]": "holds"}
    assert {c.verdict for c in mc.interpolation_claims(pd.DataFrame(columns=["pair"]), 0.25)} == {"inconclusive"}


# ------------------------------------------------------------------ memorization (B5)


def _memo_item(lr, bs, accs, noise=0.25, mom=0.0, status="completed", seed=0):
    """accs: [(train_acc on noisy labels, test_acc)] for epochs 1.."""
    st = _status(lr, bs, seed=seed, status=status, target=None,
                 test_acc=accs[-1][1] if status == "completed" else math.nan)
    st["config"].update(label_noise=noise)
    st["config"]["train"]["momentum"] = mom
    st.update(experiment="minima_memo", run=f"lr{lr}_bs{bs}_mom{mom:g}_s{seed}")
    hist = pd.DataFrame(dict(epoch=range(len(accs) + 1), step=range(len(accs) + 1),
                             train_acc=[0.1] + [a for a, _ in accs], test_acc=[0.1] + [t for _, t in accs]))
    return {"record": RunRecord.from_status(st), "history": hist}


def test_memorization_point_table_and_claim_by_hand():
    assert mt.memorization_target(0.25, 0.5) == pytest.approx(0.875, abs=1e-15)
    assert mt.memorization_target(0.5, 1.0) == pytest.approx(1.0, abs=1e-15)
    # target 0.875: the first epoch at or above it
    items = [_memo_item(0.05, 64, [(0.8, 0.90), (0.875, 0.85), (0.95, 0.80)]),   # eta/S 7.8e-4 -> 0.85 at epoch 2
             _memo_item(0.1, 64, [(0.7, 0.91), (0.9, 0.88), (0.99, 0.84)]),     # 1.6e-3 -> 0.88 at epoch 2
             _memo_item(0.2, 64, [(0.7, 0.92), (0.86, 0.91), (0.88, 0.90)]),    # 3.1e-3 -> 0.90 at epoch 3
             _memo_item(0.2, 32, [(0.6, 0.92), (0.8, 0.92), (0.9, 0.93)]),      # 6.3e-3 -> 0.93 at epoch 3
             _memo_item(0.4, 32, [(0.6, 0.92), (0.7, 0.92), (0.8, 0.92)]),      # never reaches it
             _memo_item(5.0, 32, [(0.1, 0.1)], status="diverged")]
    table = mt.memorization_table(items, {"minima_memo": {"group": "g"}}, 0.5)
    assert list(table.columns) == mt.MEMO_COLUMNS
    wide = mt.memo_wide(table).set_index("run")
    assert wide.loc["lr0.05_bs64_mom0_s0", "epoch_at_level"] == 2
    assert wide.loc["lr0.05_bs64_mom0_s0", "test_acc_at_level"] == pytest.approx(0.85, abs=1e-15)
    assert wide.loc["lr0.2_bs32_mom0_s0", "test_acc_at_level"] == pytest.approx(0.93, abs=1e-15)
    never = wide.loc["lr0.4_bs32_mom0_s0"]
    assert math.isnan(never.test_acc_at_level) and "never reached 87.5%" in never.note
    div = table[table.run == "lr5_bs32_mom0_s0"]
    assert div.value.isna().all() and div.note.str.startswith("diverged").all()  # never a zero
    # B5 needs >= 3 seeds: one seed is computed but inconclusive
    claim = mc.memorization_claims(table)[0]
    x = [0.05 / 64, 0.1 / 64, 0.2 / 64, 0.2 / 32]
    assert claim.value == pytest.approx(_explicit_spearman(x, [0.85, 0.88, 0.90, 0.93]), abs=1e-4)
    assert claim.verdict == "inconclusive" and claim.id == "B5" and "the protocol needs >= 3" in claim.note
    assert "1 diverged" in claim.note and "1 run(s) never reached" in claim.note

    def seeded(its, seeds=(0, 1, 2), flip=False):
        out = []
        for seed in seeds:
            for it in its:
                accs = list(zip(it["history"].train_acc[1:], it["history"].test_acc[1:]))
                if flip:
                    accs = [(a, 1.8 - t) for a, t in accs]
                out.append(_memo_item(it["record"].lr, it["record"].batch_size, accs, seed=seed,
                                      status=it["record"].status))
        return mt.memorization_table(out, {}, 0.5)

    three = mc.memorization_claims(seeded(items))[0]
    assert three.value == pytest.approx(1.0) and (three.ci_low, three.ci_high) == (pytest.approx(1.0),) * 2
    assert three.verdict == "holds" and three.n_seeds == 3
    # falling accuracy with eta/S fails; < 3 runs per seed reaching the target is inconclusive
    assert mc.memorization_claims(seeded(items[:4], flip=True))[0].verdict == "fails"
    few = mc.memorization_claims(seeded(items[:2]))[0]
    assert few.verdict == "inconclusive" and "< 3 runs reaching the target" in few.note
    cells = mt.memorization_table(items[:4] + [_memo_item(0.1, 64, [(0.9, 0.8)], mom=0.9)], {}, 0.5)
    ids = [c.id for c in mc.memorization_claims(cells)]
    assert ids == ["B5[minima_memo, noise 0.25, momentum 0]", "B5[minima_memo, noise 0.25, momentum 0.9]"]
    not_run = mc.memorization_claims(None)[0]
    assert not_run.verdict == "inconclusive" and "not run at this scale" in not_run.note
    assert "No memorization runs" in mt.memorization_markdown(table.iloc[0:0], 0.5)
    assert "87.5%" in mt.memorization_markdown(table, 0.5)


# ------------------------------------------------------------------ breaking point (B6)


def _break_status(size, beta, seed, acc, status="completed"):
    st = _status(0.1 * beta, 50 * beta, seed=seed, status=status, target=None, test_acc=acc)
    st["config"]["train_size"] = size
    st.update(experiment=f"minima_break_{size}", run=f"beta{beta}_s{seed}")
    return RunRecord.from_status(st)


def _break_runs(accs):
    """accs: {size: {beta: [acc per seed, None = diverged]}} -> the per-run table of claim B6."""
    statuses = [_break_status(size, beta, seed, math.nan if a is None else a, "diverged" if a is None else "completed")
                for size, ladder in accs.items() for beta, seeds in ladder.items() for seed, a in enumerate(seeds)]
    return mt.breaking_runs(statuses, {f"minima_break_{size}": {"group": "g"} for size in accs})


def _break_summary(accs, tolerance=0.01):
    """accs: {size: {beta: [acc per seed, None = diverged]}}"""
    statuses = [_break_status(size, beta, seed, math.nan if a is None else a, "diverged" if a is None else "completed")
                for size, ladder in accs.items() for beta, seeds in ladder.items() for seed, a in enumerate(seeds)]
    groups = {f"minima_break_{size}": {"group": "g"} for size in accs}
    return mt.breaking_summary(mt.breaking_runs(statuses, groups), tolerance)


def test_breaking_beta_by_hand():
    s = _break_summary({1000: {1: [0.90, 0.92], 2: [0.905, 0.905], 4: [0.89, 0.89], 8: [0.95, 0.95]},
                        4000: {1: [0.93, 0.93], 2: [0.93, 0.93], 4: [0.925, 0.925], 8: [0.91, 0.91]},
                        9000: {1: [0.94, 0.94], 2: [0.94, 0.94], 4: [0.94, None], 8: [0.94, 0.94]}})
    by = s.set_index(["train_size", "beta"])
    # size 1000: reference 0.91; beta 2 drops 0.005 (ok), beta 4 drops 0.02 (> 0.01): breaking beta 2,
    # even though beta 8 recovers (the first drop decides)
    assert by.loc[(1000, 1), "reference_acc"] == pytest.approx(0.91, abs=1e-15)
    assert by.loc[(1000, 4), "drop"] == pytest.approx(0.02, abs=1e-12) and not by.loc[(1000, 4), "within_tolerance"]
    assert (s[s.train_size == 1000].breaking_beta == 2).all()
    assert (s[s.train_size == 4000].breaking_beta == 4).all()        # 0.02 drop at beta 8
    assert (s[s.train_size == 9000].breaking_beta == 2).all()        # a diverged seed at beta 4 is a drop
    assert by.loc[(9000, 4), "n_diverged"] == 1 and "diverged" in by.loc[(9000, 4), "note"]
    # B6 from per-run rows, bootstrapped over seeds: the smallest and the largest train size
    c = mc.breaking_claims(_break_runs({1000: {1: [0.90, 0.92, 0.91], 2: [0.905] * 3, 4: [0.89] * 3},
                                        9000: {1: [0.94] * 3, 2: [0.94] * 3, 4: [0.94, None, 0.94]}}))[0]
    assert c.id == "B6" and c.value == pytest.approx(0.0)  # both break at beta 2
    assert c.verdict == "inconclusive" and "1000: 2; 9000: 2" in c.note
    good_runs = _break_runs({1000: {1: [0.9] * 3, 2: [0.85] * 3, 4: [0.8] * 3}, 4000: {1: [0.93] * 3, 2: [0.93] * 3},
                             9000: {1: [0.94] * 3, 2: [0.94] * 3, 4: [0.94] * 3}})
    c = mc.breaking_claims(good_runs)[0]
    assert c.verdict == "holds" and c.value == pytest.approx(math.log2(4 / 1)) and ">= 4" in c.note  # censored top
    assert (c.ci_low, c.ci_high) == (pytest.approx(2.0), pytest.approx(2.0)) and c.n_seeds == 3
    # the large set breaking first fails; one seed per cell is inconclusive
    bad = _break_runs({1000: {1: [0.9] * 3, 2: [0.9] * 3, 4: [0.9] * 3}, 9000: {1: [0.94] * 3, 2: [0.90] * 3,
                                                                             4: [0.90] * 3}})
    c = mc.breaking_claims(bad)[0]
    assert c.value == pytest.approx(-2.0) and c.verdict == "fails"   # 9000 breaks at 1, 1000 censored at >= 4
    assert mc.breaking_claims(_break_runs({1000: {1: [0.9], 2: [0.8]}, 4000: {1: [0.9], 2: [0.9]}}))[0].verdict \
        == "inconclusive"
    # a resample's breaking beta is recomputed from its own seed means: seed 2 alone breaks at beta 1
    mixed = _break_runs({1000: {1: [0.9] * 3, 2: [0.9, 0.9, 0.85]}, 4000: {1: [0.93] * 3, 2: [0.93] * 3}})
    assert mc.breaking_ratio(mixed, 0.01) == pytest.approx(1.0)      # mean drop 1.67 points at beta 2: 1000 breaks at 1
    c = mc.breaking_claims(mixed)[0]
    # resamples without seed 2 (p = 8/27 > 2.5%) have no drop: log2(2 / 2) = 0
    assert c.ci_low == pytest.approx(0.0) and c.ci_high == pytest.approx(1.0) and c.verdict == "inconclusive"
    assert mc.breaking_claims(None)[0].verdict == "inconclusive"
    good = _break_summary({1000: {1: [0.9], 2: [0.85], 4: [0.8]}, 4000: {1: [0.93], 2: [0.93], 4: [0.9]},
                           9000: {1: [0.94], 2: [0.94], 4: [0.94]}})
    assert "breaking beta" in mt.breaking_markdown(good, 0.01) and ">= 4" in mt.breaking_markdown(good, 0.01)
    # beta is on one scale for every size of a group: S / smallest S of the group
    runs = mt.breaking_runs([_break_status(1000, 2, 0, 0.9), _break_status(4000, 1, 0, 0.9)],
                            {"minima_break_1000": {"group": "g"}, "minima_break_4000": {"group": "g"}})
    assert runs.set_index("experiment").beta.to_dict() == {"minima_break_1000": 2.0, "minima_break_4000": 1.0}


def test_new_figures_render_with_data_and_empty(tmp_path):
    items = [_memo_item(0.05, 64, [(0.8, 0.9), (0.9, 0.85)]), _memo_item(5.0, 32, [(0.1, 0.1)], status="diverged")]
    table = mt.memorization_table(items, {}, 0.5)
    mf.plot_memorization(table, mt.memorization_curves(items), tmp_path / "m.png")
    mf.plot_memorization(table.iloc[0:0], mt.memorization_curves([]), tmp_path / "m0.png")
    statuses = [_break_status(1000, b, 0, 0.9 - 0.01 * b) for b in (1, 2, 4)] + [_break_status(1000, 8, 0, math.nan,
                                                                                                "diverged")]
    runs = mt.breaking_runs(statuses, {})
    mf.plot_breaking(runs, mt.breaking_summary(runs, 0.01), 0.01, tmp_path / "b.png")
    empty = mt.breaking_runs([], {})
    mf.plot_breaking(empty, mt.breaking_summary(empty, 0.01), 0.01, tmp_path / "b0.png")
    for name in ("m.png", "m0.png", "b.png", "b0.pdf"):
        assert (tmp_path / name).stat().st_size > 1000


def test_plan_checks_memorization_and_breaking_roles():
    memo = _config()
    memo["experiments"]["minima_g"]["analysis"] = dict(role="memorization")
    with pytest.raises(ConfigError, match="minima_g.label_noise: .* role: memorization"):
        mp.plan(memo, expand_runs(memo))
    memo["experiments"]["minima_g"]["label_noise"] = 0.25
    assert mp.plan(memo, expand_runs(memo))["memorization"] == [("minima_g", "base_s0")]
    brk = _config()
    brk["experiments"]["minima_g"]["analysis"] = dict(role="breaking")
    brk["experiments"]["minima_g"]["runs"] = [dict(name="beta1"), dict(name="beta2", set={"train.lr": 0.3,
                                                                                          "train.batch_size": 64})]
    with pytest.raises(ConfigError, match="role breaking needs one eta/S"):
        mp.plan(brk, expand_runs(brk))
    brk["experiments"]["minima_g"]["runs"][1]["set"]["train.lr"] = 0.2
    assert len(mp.plan(brk, expand_runs(brk))["breaking"]) == 2


def test_plan_module_does_not_import_torch_or_matplotlib():
    """rules/minima.smk imports repro.minima.plan while the DAG is built: no torch, no plotting."""
    import subprocess
    import sys

    code = "import sys, repro.minima.plan; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
