"""Paper A (iterative inference) measurements on residual blocks of a PreActResNet.

Notation, for residual block i (global index in forward order, see
``PreActResNet.block_index``): h_i is the representation its residual is added to (the
block input, or its projection P(h) in a downsampling block) and F_i(h_i) the residual
branch, so that h_{i+1} = h_i + F_i(h_i) (with the stage transition in between).

Gradient. dL/dh_i is the total derivative of the loss with respect to h_i, as one
backward pass through ``PreActResNet.forward_trace`` gives it: in an identity block h_i is
the block input, so the path through F_i(h_i) itself counts, (I + J_F_i)^T dL/dh_{i+1};
in a downsampling block h_i = P(input) and F_i does not depend on it.

Loss normalisation. All gradients are gradients of the *per-example* loss
l_n = CE(logits_n, y_n): we back-propagate the sum-reduced loss sum_n l_n, and because the
model is in eval mode (BN uses its running statistics, so examples do not interact) the
slice n of dL/dh_i is exactly dl_n/dh_{i,n}. With a mean-reduced loss every per-example
gradient would be scaled by 1/B, which changes the gradient norms but not the cosine.

BN mode. Everything here runs the model in eval mode (running statistics), except
:func:`init_diagnostics`, which uses batch statistics (training mode, as in the first SGD
step) on a copy of the model because the running statistics of an untrained network are
meaningless. The caller's train/eval mode is restored on return.

The measurement functions take ``batches``, a list of (inputs, targets) pairs (one pair
for :func:`init_diagnostics`), and move them to the model's device and dtype; averages are
over examples (example-weighted across batches, so the batching never changes a result).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- helpers


@contextmanager
def model_mode(model: torch.nn.Module, training: bool):
    """Run a block with the model in train (True) or eval (False) mode; restore it after."""
    was = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype


def _to(model, x, y=None):
    x = x.to(_device(model), _dtype(model))
    return x if y is None else (x, y.to(_device(model)))


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-example l2 norm over all non-batch dimensions."""
    return t.flatten(1).norm(dim=1)


def block_table(model) -> pd.DataFrame:
    """block, stage, position (all 0-based) for every residual block, in forward order."""
    return pd.DataFrame([dict(block=k, stage=s, position=p) for k, (s, p) in enumerate(model.block_index())])


def flat_blocks(model) -> list[tuple[torch.nn.Module | None, torch.nn.Module]]:
    """(pool applied before the block or None, block) for every block in forward order."""
    return [(pool if j == 0 else None, block)
            for pool, stage in zip(model.pools, model.stages) for j, block in enumerate(stage)]


def forward_blocks(model, x, order=None, drop=frozenset(), record=False):
    """Forward through the blocks in `order` (global indices; default: all, in order).

    Blocks in `drop` add no residual (identity in place of F; a downsampling block keeps
    its projection so shapes still fit). With `record`, also returns the per-block inputs
    (after the stage's pool, if any: what the block sees), h_i (what F is added to), F_i
    and the block outputs.
    Returns logits, or (logits, dict(inputs, hs, fs, outs)).
    """
    items = flat_blocks(model)
    order = range(len(items)) if order is None else order
    h = model.stem(x)
    rec = dict(inputs=[], hs=[], fs=[], outs=[])
    for k in order:
        pool, block = items[k]
        if pool is not None:
            h = pool(h)
        rec["inputs"].append(h)
        base, f = block.base_and_residual(h)
        h = base if k in drop else base + f
        rec["hs"].append(base)
        rec["fs"].append(f)
        rec["outs"].append(h)
    logits = model.head(h)
    return (logits, rec) if record else logits


# ---------------------------------------------------------------- cosine and norm ratio


def block_statistics(model, batches) -> pd.DataFrame:
    """Per-block averages over all examples of `batches`, model in eval mode.

    Columns: block, stage, position, cosine, cosine_out, norm_ratio, f_norm, h_norm,
    grad_norm, n_examples, n_cosine. For every example n and block i (one forward and one
    backward per batch give all blocks):

        cosine_n     = <F_i(h_i)_n, g_n> / (||F_i(h_i)_n|| ||g_n||),  g_n = dl_n/dh_{i,n}
        cosine_out_n = the same with g_n = dl_n/dh_{i+1,n}, the gradient at the block
                       *output* h_i + F_i(h_i) (the last block's output is the head's input)
        norm_ratio_n = ||F_i(h_i)_n|| / ||h_{i,n}||

    cosine_out is the paper's first-order argument expanded at the other end of the step
    (docs/CLAIMS.md A1a, secondary); in a projection block the two coincide, since F_i
    does not depend on P(h_i).

    (l2 norms over all channels and positions), averaged over examples. Examples where the
    cosine is undefined (a zero gradient or residual) are left out of the cosine mean;
    n_cosine counts the examples it is over. f_norm, h_norm, grad_norm are example means.
    """
    sums = None
    with model_mode(model, False), torch.enable_grad():
        for x, y in batches:
            x, y = _to(model, x, y)
            logits, rec = forward_blocks(model, x, record=True)
            hs, fs, outs = rec["hs"], rec["fs"], rec["outs"]
            loss = F.cross_entropy(logits, y, reduction="sum")  # per-example gradients, see module doc
            grads = torch.autograd.grad(loss, hs + outs)
            grads, grads_out = grads[:len(hs)], grads[len(hs):]
            if sums is None:
                sums = {k: np.zeros(len(hs)) for k in ("cosine", "cosine_out", "norm_ratio", "f_norm", "h_norm",
                                                       "grad_norm", "n_examples", "n_cosine", "n_cosine_out")}
            for i, (h, f, g, g_out) in enumerate(zip(hs, fs, grads, grads_out)):
                h, f, g, g_out = h.detach(), f.detach(), g.detach(), g_out.detach()
                fn, hn, gn = _norms(f), _norms(h), _norms(g)
                for key, grad, grad_norm in (("cosine", g, gn), ("cosine_out", g_out, _norms(g_out))):
                    cos = (f * grad).flatten(1).sum(1) / (fn * grad_norm)
                    ok = torch.isfinite(cos) & (fn > 0) & (grad_norm > 0)
                    sums[key][i] += cos[ok].sum().item()
                    sums["n_" + key][i] += ok.sum().item()
                sums["norm_ratio"][i] += (fn / hn).sum().item()
                sums["f_norm"][i] += fn.sum().item()
                sums["h_norm"][i] += hn.sum().item()
                sums["grad_norm"][i] += gn.sum().item()
                sums["n_examples"][i] += len(x)
    if sums is None:
        raise ValueError("block_statistics needs at least one batch")
    out = block_table(model)
    n, nc = sums["n_examples"], sums["n_cosine"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cosine"] = np.where(nc > 0, sums["cosine"] / nc, np.nan)
        nco = sums["n_cosine_out"]
        out["cosine_out"] = np.where(nco > 0, sums["cosine_out"] / nco, np.nan)
        for key in ("norm_ratio", "f_norm", "h_norm", "grad_norm"):
            out[key] = sums[key] / n
    out["n_examples"], out["n_cosine"] = n.astype(int), nc.astype(int)
    return out


def block_metrics(model, batches) -> pd.DataFrame:
    """cos(F_i(h_i), dl/dh_i) and ||F_i(h_i)|| / ||h_i|| per block, averaged over examples.

    Columns block, cosine, norm_ratio; one row per residual block (global index in
    forward order). Eval mode; per-example loss gradients (see the module docstring and
    :func:`block_statistics`).
    """
    return block_statistics(model, batches)[["block", "cosine", "norm_ratio"]]


# ---------------------------------------------------------------- drop one block, shuffle


@torch.no_grad()
def drop_block_results(model, batches) -> pd.DataFrame:
    """Loss and accuracy with block i removed (identity in place of F_i), for every i.

    One row per block plus a row with block = -1 for the intact network. Columns: block,
    stage, position, loss (mean cross-entropy), accuracy, n_examples. Eval mode. The
    forward pass up to block i is shared between all drops (cost ~ n^2/2 block passes).
    """
    items = flat_blocks(model)
    n_blocks = len(items)
    loss = np.zeros(n_blocks + 1)
    correct = np.zeros(n_blocks + 1)
    total = 0
    with model_mode(model, False):
        for x, y in batches:
            x, y = _to(model, x, y)
            logits, rec = forward_blocks(model, x, record=True)
            results = [logits]
            for k in range(n_blocks):
                h, _ = items[k][1].base_and_residual(rec["inputs"][k])
                for pool_j, block_j in items[k + 1:]:
                    if pool_j is not None:
                        h = pool_j(h)
                    h = block_j(h)
                results.append(model.head(h))
            for j, lg in enumerate(results):
                loss[j] += F.cross_entropy(lg, y, reduction="sum").item()
                correct[j] += (lg.argmax(1) == y).sum().item()
            total += len(y)
    table = block_table(model)
    rows = pd.concat([pd.DataFrame([dict(block=-1, stage=-1, position=-1)]), table], ignore_index=True)
    rows["loss"] = loss / total
    rows["accuracy"] = correct / total
    rows["n_examples"] = total
    return rows


def shuffled_orders(model, n_shuffles: int, seed: int = 0) -> list[list[int]]:
    """Random block orders: within every stage, the blocks after the first are permuted.

    The first block of a stage stays in place (it changes the representation; in a
    downsampling stage it also changes the shape).
    """
    rng = np.random.default_rng(seed)
    orders, start = [], 0
    spans = []
    for stage in model.stages:
        spans.append((start, len(stage)))
        start += len(stage)
    for _ in range(n_shuffles):
        order = []
        for first, n in spans:
            rest = list(range(first + 1, first + n))
            order += [first] + [rest[i] for i in rng.permutation(len(rest))]
        orders.append(order)
    return orders


@torch.no_grad()
def shuffle_results(model, batches, n_shuffles: int = 5, seed: int = 0) -> pd.DataFrame:
    """Loss and accuracy for `n_shuffles` random block orders (see :func:`shuffled_orders`).

    Columns: shuffle, order (blocks joined by '-'), loss, accuracy, n_examples. Eval mode.
    """
    orders = shuffled_orders(model, n_shuffles, seed)
    loss, correct, total = np.zeros(len(orders)), np.zeros(len(orders)), 0
    with model_mode(model, False):
        for x, y in batches:
            x, y = _to(model, x, y)
            for j, order in enumerate(orders):
                lg = forward_blocks(model, x, order=order)
                loss[j] += F.cross_entropy(lg, y, reduction="sum").item()
                correct[j] += (lg.argmax(1) == y).sum().item()
            total += len(y)
    return pd.DataFrame(dict(shuffle=range(len(orders)), order=["-".join(map(str, o)) for o in orders],
                             loss=loss / total, accuracy=correct / total, n_examples=total))


# ---------------------------------------------------------------- intermediate heads, borderline


@torch.no_grad()
def last_stage_logits(model, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """The final classifier applied after every block of the last stage.

    Returns (logits of shape (n_blocks_last_stage, N, classes), targets (N,)) on the CPU;
    entry j is model.head(output of block j of the last stage), so the last entry is the
    network's own output. Eval mode.
    """
    n_last = len(model.stages[-1])
    chunks, targets = [], []
    with model_mode(model, False):
        for x, y in batches:
            x = _to(model, x)
            _, rec = forward_blocks(model, x, record=True)
            chunks.append(torch.stack([model.head(h) for h in rec["outs"][-n_last:]]).cpu())
            targets.append(y.cpu())
    return torch.cat(chunks, dim=1), torch.cat(targets)


def borderline_mask(logits: torch.Tensor, y: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Borderline examples over a sequence of heads (logits of shape (K, N, classes)).

    Example n is borderline when, between two consecutive heads j and j+1, its
    prediction flips from correct to wrong or from wrong to correct while the probability
    of its true class changes by less than `threshold` (absolute, 0.1 = 10 points).
    """
    p = logits.softmax(-1).gather(-1, y.expand(logits.shape[0], -1)[..., None]).squeeze(-1)
    correct = logits.argmax(-1) == y
    flips = correct[1:] != correct[:-1]
    small = (p[1:] - p[:-1]).abs() < threshold
    return (flips & small).any(0)


def head_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """Per head (first axis of logits): mean cross-entropy, accuracy, prediction entropy (nats)."""
    logp = logits.log_softmax(-1)
    loss = -logp.gather(-1, y.expand(logits.shape[0], -1)[..., None]).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    acc = (logits.argmax(-1) == y).to(logits.dtype)
    return dict(loss=loss.mean(1).numpy(), accuracy=acc.mean(1).numpy(), entropy=entropy.mean(1).numpy())


def borderline_analysis(logits: torch.Tensor, y: torch.Tensor, last_blocks: int = 5,
                        threshold: float = 0.1) -> pd.DataFrame:
    """Loss, accuracy and entropy over the last `last_blocks` heads, per example group.

    Groups: borderline (:func:`borderline_mask` over those heads), correct (classified
    correctly by the network's output, the last head) and all. Long format: group,
    n_examples, offset (head position counted from the last head: -K+1 .. 0), metric,
    value. A group with no example gets NaN values.
    """
    logits = logits[-last_blocks:]
    k = logits.shape[0]
    groups = {"borderline": borderline_mask(logits, y, threshold),
              "correct": logits[-1].argmax(-1) == y,
              "all": torch.ones_like(y, dtype=torch.bool)}
    rows = []
    for group, mask in groups.items():
        n = int(mask.sum())
        values = head_metrics(logits[:, mask], y[mask]) if n else None
        for j in range(k):
            for metric in ("loss", "accuracy", "entropy"):
                rows.append(dict(group=group, n_examples=n, offset=j - k + 1, metric=metric,
                                 value=float(values[metric][j]) if n else np.nan))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- unrolling the last block


@torch.no_grad()
def unroll_logits(model, batches, steps: int = 20, scale: float = 1.0):
    """Apply the last block `steps` extra times, its residual scaled by `scale`.

    Step 0 is the network as trained, h' = h + F(h) through the last block; step t >= 1
    applies h <- h + scale * F(h) once more. Returns (logits (steps+1, N, classes),
    h_norm (steps+1, N): per-example ||h|| entering the head, targets (N,)), on the CPU.
    Eval mode. The last block must have an identity shortcut.
    """
    block = model.stages[-1][-1]
    if block.projection is not None:
        raise ValueError("the last block changes the representation's shape; it cannot be unrolled")
    all_logits, all_norms, targets = [], [], []
    with model_mode(model, False):
        for x, y in batches:
            x = _to(model, x)
            _, rec = forward_blocks(model, x, record=True)
            h = rec["outs"][-1]
            logits, norms = [model.head(h)], [_norms(h)]
            for _ in range(steps):
                base, f = block.base_and_residual(h)
                h = base + scale * f
                logits.append(model.head(h))
                norms.append(_norms(h))
            all_logits.append(torch.stack(logits).cpu())
            all_norms.append(torch.stack(norms).cpu())
            targets.append(y.cpu())
    return torch.cat(all_logits, 1), torch.cat(all_norms, 1), torch.cat(targets)


# ---------------------------------------------------------------- sharing diagnostics


def shared_span(model) -> int:
    """Number of top blocks per stage that share convolutions with the block below/above.

    0 for an unshared network; the largest such count over stages otherwise.
    """
    best = 0
    for stage in model.stages:
        n = 0
        for a, b in zip(stage[:-1], stage[1:]):
            if a.conv1 is b.conv1:
                n = n + 1 if n else 2
        best = max(best, n)
    return best


def init_diagnostics(model, batch, span: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Activation and gradient norms per block, BN in training mode (batch statistics).

    Meant for a network at initialisation (the first SGD step sees exactly these values);
    runs on a deep copy, so the caller's BN running statistics are untouched. `batch` is
    one (inputs, targets) pair; gradients are of the summed per-example losses.

    Returns (per_block, per_stage). per_block columns: block, stage, position, in_norm
    (||h|| entering the block), out_norm (||h + F||), f_norm, grad_in (||dL/d input||),
    grad_out (||dL/d output||), all example means. per_stage columns: stage, span,
    growth = out_norm(last block) / in_norm(first of the top `span` blocks) and
    grad_ratio r = grad_in(first of the top `span` blocks) / grad_out(last block): how
    much activations grow and gradients are amplified over the (shared) top blocks.
    `span` defaults to :func:`shared_span` or, for an unshared network, all blocks of the
    stage but the first.
    """
    model = copy.deepcopy(model)
    span = span or shared_span(model) or None
    x, y = _to(model, *batch)
    with model_mode(model, True), torch.enable_grad():
        _, rec = forward_blocks(model, x, record=True)
        logits = model.head(rec["outs"][-1])
        ins = rec["inputs"]
        loss = F.cross_entropy(logits, y, reduction="sum")
        grads = torch.autograd.grad(loss, ins + rec["outs"], allow_unused=True)
    n = len(ins)
    g_in, g_out = grads[:n], grads[n:]
    table = block_table(model)

    def mean_norm(t):
        return np.nan if t is None else _norms(t.detach()).mean().item()

    table["in_norm"] = [mean_norm(t) for t in ins]
    table["out_norm"] = [mean_norm(t) for t in rec["outs"]]
    table["f_norm"] = [mean_norm(t) for t in rec["fs"]]
    table["grad_in"] = [mean_norm(t) for t in g_in]
    table["grad_out"] = [mean_norm(t) for t in g_out]
    stages = []
    for s, stage_rows in table.groupby("stage", sort=True):
        n_blocks = len(stage_rows)
        k = min(span or n_blocks - 1, n_blocks - 1) if n_blocks > 1 else 1
        top = stage_rows.iloc[n_blocks - k:]
        first, last = top.iloc[0], stage_rows.iloc[-1]
        stages.append(dict(stage=s, span=k, growth=last["out_norm"] / first["in_norm"],
                           grad_ratio=first["grad_in"] / last["grad_out"]))
    return table, pd.DataFrame(stages)
