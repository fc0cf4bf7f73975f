r"""Top eigenvalues of the loss Hessian by Lanczos on Hessian-vector products.

The matrix is :math:`H = \nabla^2_\theta L(\theta)` of the example-weighted *mean* loss
:math:`L = \sum_b (n_b/N)\,\bar\ell_b` over all examples in ``batches`` (see
:mod:`repro.curvature.hvp`), with respect to the trainable parameters, the model in eval
mode (:mod:`repro.curvature.bn`). Eigenvalues are computed by SciPy's ARPACK
(``scipy.sparse.linalg.eigsh(which="LA")``, implicitly restarted Lanczos) on a
``LinearOperator`` that calls Hessian-vector products; no eigensolver is written here.
By default eigsh is watched by :class:`repro.curvature.ritz.RitzMonitor`, which applies
ARPACK's acceptance test (true residual ≤ tol·|θ|) to the Rayleigh–Ritz pairs of every
vector eigsh has multiplied, after each product, and ends the call as soon as it passes:
ARPACK itself tests only when its basis is full (at least ncv+1 products).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor, nn

from ._utils import trainable
from .bn import curvature_mode
from .hvp import HessianVectorProduct
from .ritz import Converged, RitzMonitor

MONITOR_BYTES = 2**28   # vectors and products the per-product test may keep (float64), then compressed


def default_ncv(k: int) -> int:
    """Lanczos basis size for eigsh: max(2k+1, 6).

    ARPACK tests convergence only once its basis is full, so a call costs at least ncv+1
    products: eigsh's own default, max(2k+1, 20), never costs fewer than 21. A small basis
    is cheap when the top eigenvalue is well separated (trained networks, warm starts) but
    restarts too often when it is not (random init). Measured with k=1, tol=1e-4, summed
    over BN-CNN, SimpleCNN and a pre-activation ResNet at random init and after 100 SGD
    steps (docs/PERFORMANCE.md, "eigsh basis size"): ncv=3: 122 products, 4: 94, 5: 90,
    6: 78, 8: 82, 12: 90. For k=5, 2k+1 = 11 was the cheapest (148 vs 160 at 16, 153 at 20).
    """
    return max(2 * k + 1, 6)


def hessian_eigs(model: nn.Module, loss_fn, batches, k: int = 1, tol: float = 1e-4, *,
                 return_eigenvectors: bool = False, v0: Tensor | None = None,
                 ncv: int | None = None, maxiter: int = 1000, seed: int = 0,
                 hvp: str = "auto", start: str = "gradient", check_every_product: bool = True,
                 info: dict | None = None):
    r"""The ``k`` largest (algebraic) eigenvalues of the Hessian of the mean loss.

    Args:
        model, loss_fn, batches: the module, a mean-reduced loss and a list of
            ``(inputs, targets)``; the loss is the example-weighted mean over all batches.
        k: number of eigenvalues (``which="LA"``: largest algebraic, so negative
            curvature is never returned in place of a positive top eigenvalue).
        tol: ARPACK's relative tolerance: a Ritz pair is accepted when its residual
            :math:`\|Hx-\theta x\| \le \mathrm{tol}\cdot|\theta|`. The eigenvalue error is
            bounded by the residual (in practice far smaller, ~ residual²/gap).
        return_eigenvectors: also return the eigenvectors.
        v0: warm start, a flat parameter-space vector (e.g. the previous top eigenvector
            along a trajectory); overrides ``start``.
        start: starting vector when ``v0`` is None. "gradient" (default): the unit
            gradient of the mean loss plus a unit standard normal vector from ``seed``
            (the gradient lies mostly in the top eigenspace and is free with the cached
            HVP graph: one product fewer to the same tolerance, docs/PERFORMANCE.md; the
            random half keeps every direction in the Krylov space). "random": the standard
            normal vector alone.
        ncv: Lanczos basis size (default :func:`default_ncv`).
        maxiter: cap on ARPACK's restart iterations (default 1000; SciPy's own default,
            10·dim, can run for hours when ``tol`` is below what the parameters' dtype can
            resolve: float32 products limit the residual to ~1e-7·|λ|, so keep tol >= 1e-6
            there). Not converging raises ``scipy.sparse.linalg.ArpackNoConvergence``.
        hvp: Hessian-vector product method (:data:`repro.curvature.hvp.HVP_METHODS`).
        check_every_product: apply the tolerance test after every product to the
            Rayleigh–Ritz pairs of all vectors eigsh has multiplied (:mod:`.ritz`; same
            test as ARPACK's, on true residuals) and stop as soon as it passes. False:
            ARPACK's own stopping only (at least ncv+1 products).
        info: if given, filled with ``n_products`` (Hessian-vector products used),
            ``hvp`` (method used), ``ncv``, ``dim``, ``cache_bytes_estimate`` and
            ``stopped_by`` ("ritz" when the per-product test ended the call, else "arpack").

    Returns:
        ``eigs``: 1-D float64 CPU tensor, descending. With ``return_eigenvectors``:
        ``(eigs, vecs)``, ``vecs`` of shape ``(dim, k)`` in the parameters' dtype and
        device, unit norm, column ``i`` belonging to ``eigs[i]``, flattened in
        ``named_parameters`` order of the trainable parameters.
    """
    n = sum(p.numel() for p in trainable(model)[1])
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for a {n}-parameter model, got {k}")
    ncv = min(n, default_ncv(k) if ncv is None else ncv)
    if start not in ("gradient", "random"):
        raise ValueError(f"start must be 'gradient' or 'random', got {start!r}")
    if v0 is not None:
        v0 = v0.detach().to("cpu", torch.float64).reshape(-1).numpy()
        if v0.shape[0] != n:
            raise ValueError(f"v0 has {v0.shape[0]} entries, the model {n} trainable parameters")
    with curvature_mode(model):
        op = HessianVectorProduct(model, loss_fn, batches, method=hvp)
        linop, stopped_by = op.as_linear_operator(), "arpack"
        if check_every_product:
            monitor = RitzMonitor(linop.matvec, k, tol, max_vectors=int(MONITOR_BYTES // (16 * n)))
            linop = LinearOperator(linop.shape, matvec=monitor, dtype=np.float64)
        try:
            if v0 is None:
                v0 = _start_vector(op, n, seed, start)
            vals, vecs = eigsh(linop, k=k, which="LA", tol=tol, ncv=ncv, v0=v0, maxiter=maxiter,
                               return_eigenvectors=True)
        except Converged as done:
            vals, vecs, stopped_by = done.values, done.vectors, "ritz"
        finally:
            op.release()
            if info is not None:
                info.update(n_products=op.n_products, hvp=op.method, ncv=ncv, dim=n,
                            cache_bytes_estimate=op.cache_bytes_estimate)
        if info is not None:
            info["stopped_by"] = stopped_by
    order = np.argsort(vals)[::-1]
    eigs = torch.from_numpy(np.ascontiguousarray(vals[order]))
    if not return_eigenvectors:
        return eigs
    p = op.params[0]
    return eigs, torch.from_numpy(np.ascontiguousarray(vecs[:, order])).to(device=p.device, dtype=p.dtype)


def _start_vector(op: HessianVectorProduct, n: int, seed: int, start: str) -> np.ndarray:
    """Unit random vector from ``seed``, plus the unit mean-loss gradient for "gradient"."""
    r = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    r /= r.norm()
    if start == "gradient":
        g = op.mean_gradient().to("cpu", torch.float64)
        norm = g.norm()
        if torch.isfinite(norm) and norm > 0:
            r += g / norm
    return r.numpy()
