r"""α*, the step-size sharpness of the break-even paper (Jastrzębski et al., 2020).

With :math:`\theta` the model's current trainable parameters and :math:`\theta'` the
parameters after one SGD step, :math:`\Delta = \theta - \theta'` and

.. math::
    \alpha^* = \min\{\alpha > 0 : L(\theta - \alpha\Delta) \ge c\,L(\theta)\},

:math:`c` = ``threshold`` (1.2 in the paper), :math:`L` the example-weighted *mean* loss over
``batches``, model in eval mode (:mod:`repro.curvature.bn`). α = 1 is the step that was
taken; the paper reports α* ≈ 2 at the break-even point (the step is at the edge of
stability along the sharpest direction).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._utils import as_param_list, check_mean_loss, prepare_batches, trainable, weighted_loss
from .bn import curvature_mode


def step_sharpness_alpha(model: nn.Module, loss_fn, batches, theta_next, threshold: float = 1.2, *,
                         alpha_init: float = 1.0, rtol: float = 1e-3, alpha_min: float = 2.0**-30,
                         alpha_max: float = 2.0**30, info: dict | None = None) -> float:
    r"""Smallest α > 0 with ``L(θ − α(θ − θ')) >= threshold · L(θ)``.

    Args:
        theta_next: θ', the trainable parameters after one SGD step, as a flat vector
            (``named_parameters`` order of the parameters with ``requires_grad``), a
            list of tensors in that order, or a ``{name: tensor}`` mapping (e.g. a state
            dict of the next snapshot; extra keys such as buffers are ignored).
        threshold: the factor c (> 1 for a meaningful α*).
        alpha_init: first trial α. Bracketing doubles α upwards until the loss reaches the
            target (or halves it downwards while it still does), then bisection narrows the
            bracket [lo, hi] (f(lo) < target <= f(hi)) to ``hi - lo <= rtol * hi``.
        info: if given, filled with ``n_evals`` (loss evaluations), ``loss``,
            ``target`` and the final bracket.

    Returns:
        α* as a float: the upper end of the final bracket, so the loss at the returned α
        is at least the target. ``inf`` when the target is not reached by ``alpha_max``
        (e.g. the step direction does not increase the loss), ``0.0`` when L(θ) <= 0.
        If the loss along the line crosses the target several times, the crossing found is
        the first one on the doubling/halving grid.

    The model's parameters are never written (the line is evaluated with
    ``torch.func.functional_call``), so they are unchanged afterwards, as is every
    submodule's train/eval mode.
    """
    check_mean_loss(loss_fn)
    names, params = trainable(model)
    theta = [p.detach() for p in params]
    delta = [t - n for t, n in zip(theta, as_param_list(theta_next, names, params))]
    batches, weights = prepare_batches(batches, params[0].device, params[0].dtype)
    n_evals = 0

    def f(alpha: float) -> float:
        nonlocal n_evals
        n_evals += 1
        point = [t - alpha * d for t, d in zip(theta, delta)]
        return weighted_loss(model, loss_fn, batches, weights, point, names)

    with curvature_mode(model), torch.no_grad():
        loss0 = weighted_loss(model, loss_fn, batches, weights)
        target = threshold * loss0
        result = None
        lo = hi = alpha_init
        if loss0 <= 0:
            result = 0.0
        elif f(alpha_init) >= target:        # bracket downwards
            lo = alpha_init / 2
            while lo > alpha_min and f(lo) >= target:
                hi, lo = lo, lo / 2
            if lo <= alpha_min:
                lo = 0.0
        else:                                 # bracket upwards
            hi = 2 * alpha_init
            while f(hi) < target:
                lo, hi = hi, 2 * hi
                if hi > alpha_max:
                    result = math.inf
                    break
        if result is None:
            while hi - lo > rtol * hi:
                mid = 0.5 * (lo + hi)
                if f(mid) >= target:
                    hi = mid
                else:
                    lo = mid
            result = hi
    if info is not None:
        info.update(n_evals=n_evals, loss=loss0, target=target, bracket=(lo, hi))
    return result
