"""Loss and accuracy along the straight line between two trained models (paper B).

For two models with the same architecture and parameters theta_1, theta_2 we evaluate

    theta(alpha) = (1 - alpha) * theta_1 + alpha * theta_2,      alpha in [-1, 2]

so alpha = 0 is model 1, alpha = 1 is model 2, and alpha < 0 / alpha > 1 extrapolates
beyond each end (Goodfellow et al. 2015; Jastrzebski et al. 2018, Fig. 2). Every
floating-point parameter is interpolated. The loss at each alpha is the mean
cross-entropy over all examples of a split (example-weighted, computed in batches),
accuracy the fraction of argmax hits; both with the model in eval mode.

Batch normalisation policy (stated, because interpolated weights do not come with
matching statistics):

* ``"recompute"`` (default): the running mean/variance of every BN layer are reset and
  recomputed at each alpha from training data (`bn_batches`; only the BN layers in train
  mode, no gradients), then the model is evaluated in eval mode. The running mean becomes
  the exact mean over all examples of `bn_batches` (batch means weighted by batch size);
  the running variance the example-weighted mean of the per-batch (unbiased) variances,
  as ``torch.optim.swa_utils.update_bn`` does (exact for a single batch). This gives each
  interpolated network the statistics it would have had, also when extrapolating.
* ``"interpolate"``: the running statistics are interpolated like the weights (running
  variances clamped at 0 when extrapolation makes them negative) and the model is
  evaluated in eval mode with them.

Integer buffers (BN's ``num_batches_tracked``) are copied from model 1. Models without
BN ignore the policy. The models are never modified; work happens on a copy, on the
device of model 1.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

BN_POLICIES = ("recompute", "interpolate")
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def alphas_grid(start: float = -1.0, stop: float = 2.0, num: int = 31) -> list[float]:
    """`num` evenly spaced alphas from start to stop (both included), rounded to 1e-9."""
    return [round(float(a), 9) for a in np.linspace(start, stop, num)]


def interpolate_state(state_1: dict, state_2: dict, alpha: float) -> dict:
    """(1 - alpha) * state_1 + alpha * state_2 for floating tensors; others from state_1.

    alpha = 0 and alpha = 1 return exact copies of state_1 / state_2's floating tensors."""
    if state_1.keys() != state_2.keys():
        missing = sorted(set(state_1) ^ set(state_2))
        raise ValueError(f"the two models have different parameters/buffers: {missing[:5]}")
    out = {}
    for key, a in state_1.items():
        b = state_2[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes differ between the models ({tuple(a.shape)} vs {tuple(b.shape)})")
        if a.is_floating_point():
            b = b.to(a.device, a.dtype)
            # the endpoints are the models themselves, bit for bit (also when one is non-finite)
            out[key] = a.clone() if alpha == 0 else b.clone() if alpha == 1 else (1.0 - alpha) * a + alpha * b
        else:
            out[key] = a.clone()
    return out


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN_TYPES) for m in model.modules())


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches) -> None:
    """Reset every BN layer's running stats and recompute them from `batches` (list of
    (x, y)), weighting each batch by its number of examples; only BN layers run in train
    mode; ends in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, _BN_TYPES)]
    if not bns:
        return
    if not batches:
        raise ValueError("BN policy 'recompute' needs training batches (bn_batches)")
    model.eval()
    momenta = []
    for m in bns:
        momenta.append(m.momentum)
        m.reset_running_stats()
        m.train()
    seen = 0
    try:
        for x, _ in batches:
            # running <- (1 - n/(seen+n)) running + n/(seen+n) batch_stat: an example-weighted mean
            seen += len(x)
            for m in bns:
                m.momentum = len(x) / seen
            model(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()


@torch.no_grad()
def evaluate_split(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over all of (x, y), example-weighted, eval mode.

    Non-finite outputs make both numbers NaN (the caller records them as missing): an
    argmax over NaN logits is not an accuracy."""
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        if not torch.isfinite(logits).all():
            return math.nan, math.nan
        loss_sum += F.cross_entropy(logits.double(), y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
    loss = loss_sum / len(x)
    return (loss, correct / len(x)) if math.isfinite(loss) else (math.nan, math.nan)


def interpolation_curve(model_1: nn.Module, model_2: nn.Module, splits: dict, alphas=None,
                        bn: str = "recompute", bn_batches=None, batch_size: int = 1000) -> pd.DataFrame:
    """Loss and accuracy of theta(alpha) on every split.

    splits: {"train": (x, y), "test": (x, y)} on the device of model_1.
    Returns a tidy frame: alpha, split, metric ("loss" | "accuracy"), value, note
    (note says why a value is missing, e.g. a non-finite loss far out on the line).
    """
    if bn not in BN_POLICIES:
        raise ValueError(f"bn policy must be one of {BN_POLICIES}, got {bn!r}")
    alphas = alphas_grid() if alphas is None else [float(a) for a in alphas]
    device = next(model_1.parameters()).device
    state_1 = {k: v.detach().to(device) for k, v in model_1.state_dict().items()}
    state_2 = {k: v.detach().to(device) for k, v in model_2.state_dict().items()}
    work = copy.deepcopy(model_1).to(device).eval()
    uses_bn = has_batch_norm(work)
    rows = []
    for alpha in alphas:
        state = interpolate_state(state_1, state_2, alpha)
        if uses_bn and bn == "interpolate":
            for key, value in state.items():
                if key.endswith("running_var"):
                    value.clamp_(min=0.0)
        work.load_state_dict(state)
        if uses_bn and bn == "recompute":
            recompute_bn_stats(work, bn_batches)
        work.eval()
        for split, (x, y) in splits.items():
            loss, acc = evaluate_split(work, x, y, batch_size)
            note = "" if math.isfinite(loss) else "non-finite network output at this alpha"
            rows.append(dict(alpha=alpha, split=split, metric="loss", value=loss, note=note))
            rows.append(dict(alpha=alpha, split=split, metric="accuracy", value=acc, note=note))
    return pd.DataFrame(rows, columns=["alpha", "split", "metric", "value", "note"])
