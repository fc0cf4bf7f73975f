"""repro.interpolate: exact checks in float64 against explicit computations on tiny models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from repro.interpolate import (alphas_grid, evaluate_split, interpolate_state, interpolation_curve,
                               recompute_bn_stats)
from repro.models import MLP


def _mlp(seed: int, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    if bn:
        model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    else:
        model = MLP(4, 3, depth=1, width=5)
    return model.double().eval()


def _data(n: int = 23, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _explicit_mlp_loss_acc(params: dict, x, y) -> tuple[float, float]:
    """Cross-entropy and accuracy of Linear-ReLU-Linear written out with loops (no torch.nn)."""
    w1, b1 = params["body.0.weight"], params["body.0.bias"]
    w2, b2 = params["fc.weight"], params["fc.bias"]
    total, hits = 0.0, 0
    for n in range(len(x)):
        h = [max(0.0, sum(float(w1[j, i]) * float(x[n, i]) for i in range(x.shape[1])) + float(b1[j]))
             for j in range(w1.shape[0])]
        z = [sum(float(w2[k, j]) * h[j] for j in range(len(h))) + float(b2[k]) for k in range(w2.shape[0])]
        m = max(z)
        log_norm = m + math.log(sum(math.exp(v - m) for v in z))
        total += log_norm - z[int(y[n])]
        hits += int(max(range(len(z)), key=lambda k: z[k]) == int(y[n]))
    return total / len(x), hits / len(x)


def test_alphas_grid_covers_minus_one_to_two_with_both_models():
    alphas = alphas_grid(-1, 2, 31)
    assert len(alphas) == 31 and alphas[0] == -1.0 and alphas[-1] == 2.0
    assert 0.0 in alphas and 1.0 in alphas
    assert all(abs((b - a) - 0.1) < 1e-9 for a, b in zip(alphas, alphas[1:]))


def test_interpolate_state_is_the_affine_combination():
    s1 = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64), "n": torch.tensor(3)}
    s2 = {"w": torch.tensor([5.0, -2.0], dtype=torch.float64), "n": torch.tensor(7)}
    out = interpolate_state(s1, s2, -1.0)
    assert out["w"].tolist() == [2 * 1.0 - 5.0, 2 * 2.0 + 2.0]  # (1-a) s1 + a s2 at a = -1
    assert out["n"].item() == 3  # integer buffers come from model 1
    assert interpolate_state(s1, s2, 0.25)["w"].tolist() == [0.75 * 1 + 0.25 * 5, 0.75 * 2 - 0.25 * 2]
    with pytest.raises(ValueError, match="different parameters"):
        interpolate_state(s1, {"w": s2["w"]}, 0.5)


def test_endpoints_reproduce_each_models_own_loss_and_midpoint_matches_explicit():
    m1, m2 = _mlp(1), _mlp(2)
    x, y = _data()
    splits = {"train": (x, y), "test": _data(11, 1)}
    curve = interpolation_curve(m1, m2, splits, alphas=[0.0, 0.5, 1.0], batch_size=7)
    p1 = {k: v.detach() for k, v in m1.state_dict().items()}
    p2 = {k: v.detach() for k, v in m2.state_dict().items()}
    mid = {k: 0.5 * p1[k] + 0.5 * p2[k] for k in p1}
    for alpha, params in ((0.0, p1), (0.5, mid), (1.0, p2)):
        for split, (xs, ys) in splits.items():
            loss, acc = _explicit_mlp_loss_acc(params, xs, ys)
            row = curve[(curve.alpha == alpha) & (curve.split == split)].set_index("metric").value
            assert row["loss"] == pytest.approx(loss, rel=1e-12)
            assert row["accuracy"] == pytest.approx(acc, abs=1e-12)
    # the models themselves are untouched
    assert all(torch.equal(v, p1[k]) for k, v in m1.state_dict().items())


def test_curve_is_tidy_with_every_alpha_split_and_metric():
    curve = interpolation_curve(_mlp(1), _mlp(2), {"train": _data()}, alphas=alphas_grid(-1, 2, 25))
    assert list(curve.columns) == ["alpha", "split", "metric", "value", "note"]
    assert len(curve) == 25 * 1 * 2
    assert set(curve.metric) == {"loss", "accuracy"}


def test_recompute_bn_stats_gives_the_exact_example_weighted_mean():
    model = _mlp(3, bn=True)
    x, y = _data(30)
    batches = [(x[:7], y[:7]), (x[7:20], y[7:20]), (x[20:], y[20:])]  # unequal sizes
    recompute_bn_stats(model, batches)
    bn = model[1]
    pre = model[0](x).detach()  # activations entering BN
    assert torch.allclose(bn.running_mean, pre.mean(0), rtol=0, atol=1e-12)
    # variance: example-weighted mean of the per-batch unbiased variances
    expected_var = sum(len(b) * model[0](b).detach().var(0, unbiased=True) for b, _ in batches) / len(x)
    assert torch.allclose(bn.running_var, expected_var, rtol=0, atol=1e-12)
    assert not model.training and not bn.training
    # a single batch: exactly the batch statistics
    recompute_bn_stats(model, [(x, y)])
    assert torch.allclose(bn.running_var, pre.var(0, unbiased=True), rtol=0, atol=1e-12)


def test_bn_policies_recompute_vs_interpolate():
    m1, m2 = _mlp(4, bn=True), _mlp(5, bn=True)
    x, y = _data(40)
    recompute_bn_stats(m1, [(x, y)])
    recompute_bn_stats(m2, [(x * 3 + 1, y)])  # very different running stats
    splits = {"train": (x, y)}
    rec = interpolation_curve(m1, m2, splits, [0.0, 0.5, 2.0], bn="recompute", bn_batches=[(x, y)])
    itp = interpolation_curve(m1, m2, splits, [0.0, 0.5, 2.0], bn="interpolate")
    # interpolate at alpha = 0 is model 1 exactly (its own running stats)
    loss1, _ = evaluate_split(m1, x, y)
    assert itp[(itp.alpha == 0) & (itp.metric == "loss")].value.item() == pytest.approx(loss1, rel=1e-12)
    # recompute at alpha = 0 uses statistics of (x) for model 1, which m1 already has
    assert rec[(rec.alpha == 0) & (rec.metric == "loss")].value.item() == pytest.approx(loss1, rel=1e-12)
    # at alpha = 0.5 the two policies differ (the stats differ)
    a = rec[(rec.alpha == 0.5) & (rec.metric == "loss")].value.item()
    b = itp[(itp.alpha == 0.5) & (itp.metric == "loss")].value.item()
    assert a != pytest.approx(b, rel=1e-6)
    # extrapolation may make interpolated variances negative: clamped, so values stay finite
    assert itp[itp.alpha == 2.0].value.notna().all()
    with pytest.raises(ValueError, match="bn policy"):
        interpolation_curve(m1, m2, splits, [0.0], bn="average")
    with pytest.raises(ValueError, match="bn_batches"):
        interpolation_curve(m1, m2, splits, [0.0], bn="recompute", bn_batches=None)


def test_non_finite_outputs_are_missing_with_a_reason():
    m1, m2 = _mlp(1), _mlp(2)
    with torch.no_grad():
        m2.fc.weight.fill_(float("inf"))
    curve = interpolation_curve(m1, m2, {"train": _data()}, alphas=[0.0, 1.0])
    at1 = curve[curve.alpha == 1.0]
    assert at1.value.isna().all()
    assert (at1.note != "").all()
    assert curve[curve.alpha == 0.0].value.notna().all()
