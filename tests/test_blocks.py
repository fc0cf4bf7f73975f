"""Exactness of paper A's block measurements (repro.blocks) on tiny float64 ResNets.

Every quantity is compared with an independent computation: per-example forward passes
with the block input re-injected as a leaf tensor (autograd on one example at a time),
explicit Python loops for norms and dot products, and manual edits of the network
(identity in place of a block, repeated application of the last block).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro import blocks
from repro.models import PreActResNet

from block_reference import block_items, forward_from_block, forward_to_block


@pytest.fixture(autouse=True, scope="module")
def _threads(one_thread):
    """Every test here runs on one thread (see conftest.one_thread)."""


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial eval-mode BN: random running statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.1)


def tiny_resnet(seed=0, **kw) -> PreActResNet:
    torch.manual_seed(seed)
    spec = dict(widths=(2, 3), blocks_per_stage=3)
    spec.update(kw)
    model = PreActResNet(1, 3, **spec).double()
    _randomise_bn(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def tiny_data(n=5, side=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, side, side, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _close(a, b, rtol=1e-10, atol=1e-12):
    """allclose in float64 (torch.testing.assert_close imports torch.distributed: slow)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, rtol=rtol, atol=atol), (a - b).abs().max().item()


def _flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


def _dot(a, b):
    return sum(x * y for x, y in zip(_flat(a), _flat(b)))


def _norm(a):
    return math.sqrt(sum(x * x for x in _flat(a)))


def manual_block_values(model, x1, y1):
    """For ONE example: [(cos(F_i, dl/dh_i), ||F_i||/||h_i||)] for every block i.

    h_i is re-created as a leaf tensor and the rest of the network is run from it, so
    dl/dh_i comes from a fresh autograd graph per block, not from the traced forward.
    It is the total derivative: in an identity block h_i is the block input, so the path
    through F_i(h_i) counts; in a downsampling block h_i = P(block input) and F_i does not
    depend on it.
    """
    items = block_items(model)
    out = []
    for i in range(len(items)):
        _, b, h_in = forward_to_block(model, items, x1, i)
        if b.projection is None:
            leaf = h_in.clone().requires_grad_(True)
            f = b.conv2(F.relu(b.bn2(b.conv1(F.relu(b.bn1(leaf))))))
        else:
            with torch.no_grad():
                a = F.relu(b.bn1(h_in))
                base, f = b.projection(a), b.conv2(F.relu(b.bn2(b.conv1(a))))
            leaf = base.clone().requires_grad_(True)
        h = forward_from_block(items, i, leaf + f)
        loss = F.cross_entropy(model.head(h), y1)
        (g,) = torch.autograd.grad(loss, leaf)
        f = f.detach()
        out.append((_dot(f, g) / (_norm(f) * _norm(g)), _norm(f) / _norm(leaf.detach())))
    return out


@pytest.mark.parametrize("kw", [dict(), dict(downsample="none", widths=(3,)), dict(shared_blocks=2)])
def test_block_metrics_match_per_example_autograd(kw):
    model = tiny_resnet(**kw)
    x, y = tiny_data()
    got = blocks.block_metrics(model, [(x[:2], y[:2]), (x[2:], y[2:])])
    assert list(got.columns) == ["block", "cosine", "norm_ratio"]
    assert list(got["block"]) == list(range(len(model.block_index())))
    per_example = np.array([manual_block_values(model, x[n:n + 1], y[n:n + 1]) for n in range(len(y))])
    np.testing.assert_allclose(got["cosine"], per_example[:, :, 0].mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["norm_ratio"], per_example[:, :, 1].mean(0), rtol=1e-10)


def test_block_metrics_example_weighted_and_mode_restored():
    """Batches of different sizes give the example mean; the model's mode is restored."""
    model = tiny_resnet()
    x, y = tiny_data(n=7)
    one = blocks.block_metrics(model, [(x, y)])
    model.train()
    uneven = blocks.block_metrics(model, [(x[:1], y[:1]), (x[1:], y[1:])])
    assert model.training
    np.testing.assert_allclose(one[["cosine", "norm_ratio"]], uneven[["cosine", "norm_ratio"]], rtol=1e-10)


def test_cosine_matches_finite_difference_of_the_loss():
    """Moving the block input by eps * F changes the loss by eps * F . dl/dh_i (first order),
    so cosine * ||F|| * ||dl/dh|| must match a finite difference (total derivative)."""
    model = tiny_resnet(seed=3)
    x, y = tiny_data(n=1, seed=3)
    stats = blocks.block_statistics(model, [(x, y)])
    _, rec = blocks.forward_blocks(model, x, record=True)
    last = len(rec["hs"]) - 1  # an identity block whose output goes straight into the head
    block = model.stages[-1][-1]
    h, f = rec["hs"][last].detach(), rec["fs"][last].detach()
    eps = 1e-6
    with torch.no_grad():
        def loss(v):
            return F.cross_entropy(model.head(block(v)), y, reduction="sum").item()
        delta = (loss(h + eps * f) - loss(h - eps * f)) / 2
    predicted = eps * stats.loc[last, "cosine"] * stats.loc[last, "f_norm"] * stats.loc[last, "grad_norm"]
    assert delta == pytest.approx(predicted, rel=1e-6)


def _identity_swap(model, k):
    """A copy of the model in which block k is replaced by its shortcut alone."""
    swapped = copy.deepcopy(model)
    s, p = model.block_index()[k]
    block = swapped.stages[s][p]

    class Shortcut(nn.Module):
        def __init__(self, b):
            super().__init__()
            self.b = b

        def forward(self, h):
            return h if self.b.projection is None else self.b.projection(F.relu(self.b.bn1(h)))

    swapped.stages[s][p] = Shortcut(block)
    return swapped


def test_drop_block_equals_manual_identity_swap():
    model = tiny_resnet(widths=(2, 3, 3), blocks_per_stage=2)
    x, y = tiny_data(n=9)
    got = blocks.drop_block_results(model, [(x[:4], y[:4]), (x[4:], y[4:])])
    assert list(got["block"]) == [-1] + list(range(6))
    for _, row in got.iterrows():
        ref = model if row.block < 0 else _identity_swap(model, int(row.block))
        with torch.no_grad():
            logits = ref(x)
            traced, _, _ = model.forward_trace(x, drop=frozenset() if row.block < 0 else {int(row.block)})
        _close(logits, traced)
        assert row.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-10)
        assert row.accuracy == pytest.approx((logits.argmax(1) == y).double().mean().item())


def test_shuffle_keeps_first_blocks_and_identity_order_is_the_network():
    model = tiny_resnet(widths=(2, 3), blocks_per_stage=4)
    orders = blocks.shuffled_orders(model, 6, seed=1)
    for order in orders:
        assert sorted(order) == list(range(8))
        assert order[0] == 0 and order[4] == 4
        assert set(order[1:4]) == {1, 2, 3}
    x, _ = tiny_data()
    with torch.no_grad():
        _close(blocks.forward_blocks(model, x, order=list(range(8))), model(x))
        # an explicit swap of blocks 1 and 2 equals rebuilding the stage in that order
        swapped = copy.deepcopy(model)
        st = swapped.stages[0]
        swapped.stages[0] = nn.ModuleList([st[0], st[2], st[1], st[3]])
        _close(blocks.forward_blocks(model, x, order=[0, 2, 1, 3, 4, 5, 6, 7]), swapped(x))


def test_last_stage_heads_and_unrolling():
    model = tiny_resnet()
    x, y = tiny_data(n=6)
    logits, targets = blocks.last_stage_logits(model, [(x[:3], y[:3]), (x[3:], y[3:])])
    assert logits.shape == (3, 6, 3) and torch.equal(targets, y)
    with torch.no_grad():
        _close(logits[-1], model(x))
        _, hs, fs = model.forward_trace(x)
        _close(logits[0], model.head(hs[3] + fs[3]))
    ul, norms, _ = blocks.unroll_logits(model, [(x, y)], steps=2, scale=0.3)
    block = model.stages[-1][-1]
    with torch.no_grad():
        h = hs[-1] + fs[-1]
        expected = [model.head(h)]
        for _ in range(2):
            h = h + 0.3 * block.base_and_residual(h)[1]
            expected.append(model.head(h))
        _close(ul, torch.stack(expected))
        _close(norms[-1], h.flatten(1).norm(dim=1))
    with pytest.raises(ValueError):
        blocks.unroll_logits(tiny_resnet(blocks_per_stage=1), [(x, y)], steps=1)


def test_borderline_mask_and_group_metrics_by_hand():
    y = torch.tensor([0, 1, 0])
    # probability of class 0 at three consecutive heads (rows) for three examples (columns)
    p0 = torch.tensor([[0.52, 0.10, 0.20],
                       [0.48, 0.45, 0.45],
                       [0.30, 0.60, 0.90]], dtype=torch.float64)
    logits = torch.stack([p0.log(), (1 - p0).log()], dim=-1)
    # ex 0 (y=0): right, wrong, wrong; the flip changes p(true) by 0.04 < 0.1 -> borderline
    # ex 1 (y=1): p(true) .90, .55, .40: right, right, wrong; the flip changes it by 0.15 -> not
    # ex 2 (y=0): p(true) .20, .45, .90: wrong, wrong, right; the flip changes it by 0.45 -> not
    assert blocks.borderline_mask(logits, y, threshold=0.1).tolist() == [True, False, False]
    assert blocks.borderline_mask(logits, y, threshold=0.2).tolist() == [True, True, False]
    frame = blocks.borderline_analysis(logits, y, last_blocks=3, threshold=0.1)
    acc = frame[(frame.group == "correct") & (frame.metric == "accuracy")].sort_values("offset")
    assert list(acc.offset) == [-2, -1, 0] and set(acc.n_examples) == {1}  # only ex 2 is right at the end
    assert acc.value.tolist() == [0.0, 0.0, 1.0]
    ent = frame[(frame.group == "all") & (frame.metric == "entropy") & (frame.offset == 0)].value.item()
    expected = float(np.mean([-(q * math.log(q) + (1 - q) * math.log(1 - q)) for q in (0.30, 0.60, 0.90)]))
    assert ent == pytest.approx(expected, rel=1e-12)
    loss = frame[(frame.group == "borderline") & (frame.metric == "loss")].sort_values("offset").value.tolist()
    assert loss == pytest.approx([-math.log(0.52), -math.log(0.48), -math.log(0.30)], rel=1e-12)
    # only the last K heads are used
    last2 = blocks.borderline_analysis(logits, y, last_blocks=2, threshold=0.1)
    assert sorted(last2.offset.unique()) == [-1, 0]
    assert last2[last2.group == "borderline"].n_examples.iloc[0] == 0  # ex 0 flips only between heads 0 and 1
    assert last2[last2.group == "borderline"].value.isna().all()


def test_unshared_bn_keeps_per_step_statistics():
    torch.manual_seed(0)
    ubn = PreActResNet(1, 3, widths=(4,), blocks_per_stage=4, downsample="none", shared_blocks=3,
                       shared_bn="unshared").double()
    naive = PreActResNet(1, 3, widths=(4,), blocks_per_stage=4, downsample="none", shared_blocks=3,
                         shared_bn="naive").double()
    for model in (ubn, naive):
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0  # running statistics = the last batch's statistics
    x, _ = tiny_data(n=8)
    for model in (ubn, naive):
        model.train()
        with torch.no_grad():
            _, rec = blocks.forward_blocks(model, x, record=True)
    top = ubn.stages[0][1:]
    assert top[0].conv1 is top[1].conv1 is top[2].conv1  # convolutions shared
    assert len({id(b.bn1) for b in top}) == 3  # one BN per step
    for b, h in zip(top, rec_inputs(ubn, x)[1:]):
        _close(b.bn1.running_mean, h.mean(dim=(0, 2, 3)))
        _close(b.bn1.weight.detach(), torch.full((4,), 0.1, dtype=torch.float64), rtol=1e-6)  # set in float32
    # naive: one BN for all steps, whose statistics are those of the last step only
    ntop = naive.stages[0][1:]
    assert ntop[0].bn1 is ntop[2].bn1
    last_input = rec_inputs(naive, x)[-1]
    _close(ntop[0].bn1.running_mean, last_input.mean(dim=(0, 2, 3)))
    assert blocks.shared_span(ubn) == 3 and blocks.shared_span(naive) == 3
    assert blocks.shared_span(tiny_resnet()) == 0


def rec_inputs(model, x):
    """Block inputs of a train-mode forward, recomputed without touching BN statistics."""
    saved = copy.deepcopy(model)
    with torch.no_grad():
        _, rec = blocks.forward_blocks(saved, x, record=True)
    return rec["inputs"]


def test_init_diagnostics_match_manual_norms():
    torch.manual_seed(1)
    model = PreActResNet(1, 3, widths=(3, 4), blocks_per_stage=3, shared_blocks=2, shared_bn="naive").double()
    x, y = tiny_data(n=6)
    state = copy.deepcopy(model.state_dict())
    per_block, per_stage = blocks.init_diagnostics(model, (x, y))
    for k, v in model.state_dict().items():  # the caller's BN statistics are untouched
        _close(v, state[k])
    # manual: train-mode forward, gradient at the input of block 1 (stage 0) via a leaf
    m = copy.deepcopy(model).train()
    with torch.no_grad():
        h0 = m.stages[0][0](m.stem(x))
    leaf = h0.clone().requires_grad_(True)
    h = leaf
    outs = []
    for s, stage in enumerate(m.stages):
        for j, b in enumerate(stage):
            if s == 0 and j == 0:
                continue
            h = b(h)
            outs.append(h)
    loss = F.cross_entropy(m.head(h), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, leaf)
    expected_grad = np.mean([_norm(g[n]) for n in range(len(y))])
    assert per_block.loc[1, "grad_in"] == pytest.approx(expected_grad, rel=1e-10)
    assert per_block.loc[1, "in_norm"] == pytest.approx(np.mean([_norm(h0[n]) for n in range(len(y))]), rel=1e-10)
    out_stage0 = outs[1]  # output of block 2 = last block of stage 0
    growth = np.mean([_norm(out_stage0[n]) for n in range(6)]) / np.mean([_norm(h0[n]) for n in range(6)])
    assert per_stage.loc[0, "span"] == 2
    assert per_stage.loc[0, "growth"] == pytest.approx(growth, rel=1e-10)
