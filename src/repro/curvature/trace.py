r"""Tr(H) by Hutchinson's estimator with Rademacher probes.

:math:`\mathrm{Tr}(H) = \mathbb{E}_v[v^\top H v]` for :math:`v` with i.i.d. ±1 entries, where
:math:`H` is the Hessian of the example-weighted *mean* loss over ``batches`` (see
:mod:`repro.curvature.hvp`), model in eval mode. The estimate is the sample mean of
:math:`v_i^\top H v_i` and its standard error the sample standard deviation (ddof=1) over
:math:`\sqrt{n}`. Early stopping uses only the standard error (never the relative change of
the running mean, which can stall long before the estimate is accurate).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bn import curvature_mode
from .hvp import HessianVectorProduct


def hessian_trace(model: nn.Module, loss_fn, batches, n_probes: int = 100, *,
                  rtol: float | None = 1e-2, min_probes: int = 10, seed: int | None = 0,
                  generator: torch.Generator | None = None, hvp: str = "auto",
                  info: dict | None = None) -> tuple[float, float]:
    r"""Hutchinson estimate of :math:`\mathrm{Tr}(\nabla^2_\theta L)` and its standard error.

    Args:
        n_probes: maximum number of Rademacher probes (one Hessian-vector product each).
        rtol: stop as soon as ``stderr <= rtol * |estimate|`` after at least
            ``min_probes`` probes; ``None`` always uses ``n_probes``.
        seed / generator: probes come from ``generator`` if given (it must live on the
            parameters' device), else from a new generator seeded with ``seed``.
        hvp: Hessian-vector product method; info: filled with ``n_probes`` used,
            ``n_products`` and ``hvp``.

    Returns:
        ``(estimate, stderr)`` as floats (stderr is ``nan`` for a single probe).
    """
    if n_probes < 1:
        raise ValueError("n_probes must be >= 1")
    with curvature_mode(model):
        op = HessianVectorProduct(model, loss_fn, batches, method=hvp)
        if generator is None:
            generator = torch.Generator(device=op.device)
            if seed is not None:
                generator.manual_seed(seed)
            else:
                generator.seed()
        samples: list[float] = []
        try:
            for i in range(n_probes):
                v = torch.randint(0, 2, (op.dim,), generator=generator, device=op.device).to(op.dtype)
                v.mul_(2).sub_(1)
                samples.append(float(torch.dot(v, op(v))))
                n = len(samples)
                if rtol is not None and n >= max(min_probes, 2):
                    mean, se = _mean_se(samples)
                    if se <= rtol * abs(mean):
                        break
        finally:
            op.release()
            if info is not None:
                info.update(n_probes=len(samples), n_products=op.n_products, hvp=op.method)
    return _mean_se(samples)


def _mean_se(samples: list[float]) -> tuple[float, float]:
    n = len(samples)
    mean = sum(samples) / n
    if n < 2:
        return mean, float("nan")
    var = sum((s - mean) ** 2 for s in samples) / (n - 1)
    return mean, math.sqrt(var / n)
