r"""Spectrum of the gradient covariance K through the small Gram matrix.

Given M gradients :math:`g_1,\dots,g_M` — one per element of ``batches``,
:math:`g_m = \nabla_\theta\,\texttt{loss\_fn}(f_\theta(X_m), y_m)`, the gradient of the
*mean* loss of batch m (a per-example gradient when every batch holds one example) — the
object is

.. math::
    K = \frac{1}{M - \mathrm{ddof}} \sum_{m=1}^{M} (g_m - \bar g)(g_m - \bar g)^\top,
    \qquad \bar g = \frac1M \sum_m g_m ,

(``ddof=0`` by default: the 1/M normalisation of the break-even paper's K; ``ddof=1`` gives
the unbiased 1/(M−1) covariance; :func:`covariance_from_gram` says which quantity each is).
K is P×P, but with :math:`\Phi = [g_1,\dots,g_M]^\top`
(M×P), the centring matrix :math:`C = I - \tfrac1M \mathbf 1\mathbf 1^\top` and the Gram
matrix :math:`G = \Phi\Phi^\top`, the non-zero eigenvalues of K are those of the M×M matrix

.. math::  G_c = C\,G\,C / (M - \mathrm{ddof}),

which is eigendecomposed in float64 (``torch.linalg.eigvalsh``/``eigh``).
:math:`\mathrm{Tr}(K) = \mathrm{Tr}(G_c)`. After centring the rank is at most M−1, so the
smallest non-zero eigenvalue :math:`\lambda_*` is the (M−1)-th largest (if P < M−1 the rank
is lower still and that eigenvalue is ~0). The eigenvalues are returned raw: the null
direction and round-off can give values of order ±1e-16·λ₁, including tiny negatives.

For mini-batches of equal size S drawn from the data, K built from mini-batch gradients
estimates (1/S)·(per-example covariance) — the break-even paper's "L = 25 batches of 128".

The model is in eval mode (:mod:`repro.curvature.bn`), so each gradient depends only on its
own batch. Methods to get G:

``"auto"``: "loop" when the batches hold >= LOOP_MIN_BATCH (16) examples on average (each
    gradient is then already an efficient batched backward pass), else "gram" when the
    layers allow it, else "vmap" (one-example batches) or "loop". 16 is the measured
    crossover (benchmarks/gram_crossover.py, docs/PERFORMANCE.md "Paper D"): "gram" is
    2-2.5x faster for single examples and still faster up to 8-12 examples per batch;
    from 16 "loop" is as fast or faster (1.4-2x from 24, 1.5-1.7x at the pipeline's 128).
``"gram"`` (per-example and small-batch gradients; needs every trainable parameter in an
    ``nn.Linear``, ``nn.Conv2d`` (zero padding) or eval-mode ``nn.BatchNorm1d/2d`` with
    running statistics): one forward and one input-gradient backward over chunks of
    concatenated batches, capturing each layer's input A and output gradient B. Per-example
    Linear gradients are outer products b aᵀ, so their Gram is
    :math:`(AA^\top + 1)\odot(BB^\top)` without ever forming a gradient; Conv2d gradients
    are formed one layer at a time (``vmap`` over ATen's weight-gradient kernel), BN
    gradients from the normalised input, and each layer's Gram is added to G. Memory: the
    activations of one chunk plus one layer's gradients; when the data spans several chunks,
    M × (conv + BN parameters) floats and the Linear layers' inputs and output gradients.
``"vmap"`` (generic per-example fallback): ``torch.func.vmap`` over ``torch.func.grad``
    with ``functional_call``, chunked; stores Φ (M × P).
``"loop"``: one ``torch.autograd.grad`` per batch; stores Φ. The generic fallback for
    batches of several examples (and the reference).

Assumption of "gram": in eval mode the model treats the examples of a batch independently
(true for standard layers; false e.g. for attention across the batch dimension).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import blas
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ._utils import check_mean_loss, flatten, prepare_batches, trainable
from .bn import curvature_mode
from .hvp import _grad

GRAM_METHODS = ("auto", "gram", "vmap", "loop")
SYRK_MIN_ROWS = 128     # Gram matrices with this many gradients use BLAS syrk on the CPU (_sym_gram)
UNFOLD_MAX_POSITIONS = 64   # per-example conv weight gradients by im2col + GEMM up to this many output positions
NARROW_COLUMNS = 4096  # gradient blocks narrower than this share one Gram product (_NarrowBlocks)
_SYRK = {torch.float32: blas.ssyrk, torch.float64: blas.dsyrk}
LOOP_MIN_BATCH = 16     # "auto" uses "loop" from this many examples per batch on average (measured)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def grad_covariance_eigs(model: nn.Module, loss_fn, batches, k: int | None = None, *,
                         return_eigenvectors: bool = False, method: str = "auto",
                         chunk_size: int = 512, ddof: int = 0, info: dict | None = None) -> dict:
    r"""Eigenvalues (descending) and trace of the gradient covariance K of ``batches``.

    Args:
        batches: list of M ``(inputs, targets)``; one gradient per element.
        k: number of eigenvalues returned (``None``: all M). ``trace`` and ``lambda_star``
            always come from the full spectrum.
        return_eigenvectors: also return the top-k eigenvectors of K in parameter space,
            :math:`v_j = \sum_m (g_m - \bar g)\,u_{jm} / \|\cdot\|` (u_j the Gram
            eigenvector), as a (P, k) tensor in the parameters' dtype/device, flattened in
            ``named_parameters`` order of the trainable parameters. "loop"/"vmap" form them
            from the stored gradients; "gram" stores none and spends one extra forward and
            k backward passes per chunk (so ask for a small k).
        method: "auto" | "gram" | "vmap" | "loop" (see the module docstring).
        chunk_size: examples per forward pass of the "gram" and "vmap" methods.
        ddof: normalisation 1/(M - ddof): 0 is the K of DESIGN.md, 1 the unbiased
            estimate paper D measures (:func:`covariance_from_gram`).

    Returns:
        dict with ``eigs`` (1-D float64 CPU tensor, descending, length k or M),
        ``trace`` (float, Tr K), ``lambda_star`` (float, the (M−1)-th largest eigenvalue;
        nan if M < 2), ``n_gradients`` (M), ``method`` (used) and, if asked,
        ``eigenvectors``.
    """
    M = len(batches)
    _check_count(M, ddof)
    with curvature_mode(model):
        G, used, phi = gradient_gram(model, loss_fn, batches, method=method, chunk_size=chunk_size)
        spectrum = covariance_from_gram(G, ddof=ddof, eigenvectors=return_eigenvectors)
        n_top = M if k is None else min(k, M)
        out = dict(eigs=spectrum["eigs"][:n_top].clone(), trace=spectrum["trace"],
                   lambda_star=spectrum["lambda_star"], n_gradients=M, method=used)
        if return_eigenvectors:
            U = spectrum["gram_eigenvectors"][:, :n_top]
            U = U - U.mean(0, keepdim=True)      # Σ_m (g_m − ḡ) u_m = Σ_m g_m (u_m − ū)
            if phi is not None:
                V = phi.T @ U.to(phi.dtype)
            else:
                V = _weighted_gradients(model, loss_fn, batches, U, chunk_size)
            out["eigenvectors"] = V / V.norm(dim=0, keepdim=True).clamp_min(torch.finfo(V.dtype).tiny)
    if info is not None:
        info.update(method=used, n_gradients=M)
    return out


def _check_count(M: int, ddof: int) -> None:
    if M - ddof < 1:
        raise ValueError(f"need more than ddof={ddof} gradients, got {M}")


def _centring(M: int) -> Tensor:
    return torch.eye(M, dtype=torch.float64) - 1.0 / M


def covariance_from_gram(gram: Tensor, ddof: int = 0, eigenvectors: bool = False) -> dict:
    r"""Spectrum of :math:`K = \frac{1}{M-\mathrm{ddof}}\sum_m (g_m-\bar g)(g_m-\bar g)^\top`
    from the uncentred Gram matrix :math:`G = \Phi\Phi^\top` (M×M) of M gradients.

    The one place where K's centring and normalisation are written (the module docstring
    gives the algebra): the eigenvalues are those of :math:`G_c = C G C/(M-\mathrm{ddof})`,
    symmetrised and eigendecomposed in float64. Which K ``ddof`` gives:

    - ``ddof=0`` (1/M): the covariance of the M given gradients themselves, the break-even
      paper's :math:`K = \frac1N\sum_i (g_i-g)(g_i-g)^\top` when the gradients are the
      whole set (DESIGN.md's contract of :func:`grad_covariance_eigs`).
    - ``ddof=1`` (1/(M−1)): the unbiased estimate of that covariance from M *sampled*
      gradients; paper D's measured λ₁ᴷ, λ*ᴷ and Tr(K) (:mod:`repro.breakeven.measure`,
      25 sampled mini-batch gradients) use it.

    Returns a dict: ``eigs`` (all M eigenvalues of G_c, float64, descending, raw: the null
    direction gives ~0 or tiny negatives), ``trace`` (Tr K), ``lambda_star`` (the
    (M−1)-th largest, nan if M < 2), ``n_gradients`` (M), ``ddof`` and, with
    ``eigenvectors``, ``gram_eigenvectors`` (M×M, column j the unit eigenvector u_j of G_c
    belonging to ``eigs[j]``). ``eigenvectors=False`` uses ``eigvalsh`` (no vectors).
    """
    G = gram.to(torch.float64)
    M = G.shape[0]
    _check_count(M, ddof)
    # C G C without the two M×M×M products: G_ij − mean_j G_ij − mean_i G_ij + mean G
    Gc = (G - G.mean(0, keepdim=True) - G.mean(1, keepdim=True) + G.mean()) / (M - ddof)
    Gc = 0.5 * (Gc + Gc.T)
    if eigenvectors:
        vals, vecs = torch.linalg.eigh(Gc)
    else:
        vals = torch.linalg.eigvalsh(Gc)
    eigs = vals.flip(0)
    out = dict(eigs=eigs, trace=float(torch.trace(Gc)), lambda_star=float(eigs[M - 2]) if M >= 2 else math.nan,
               n_gradients=M, ddof=ddof)
    if eigenvectors:
        out["gram_eigenvectors"] = vecs.flip(1)
    return out


def projections_on_top_eigenvectors(gram: Tensor, spectrum: dict, n_top: int) -> Tensor:
    r""":math:`v_j^\top g_m` for the top ``n_top`` unit eigenvectors :math:`v_j` of K and
    the raw (uncentred) gradients :math:`g_m`, as an (n_top, M) float64 tensor, from G alone.

    ``spectrum`` is :func:`covariance_from_gram` of the same ``gram`` with
    ``eigenvectors=True``. An eigenvector :math:`u_j` of :math:`G_c` with eigenvalue
    :math:`\lambda_j > 0` gives the unit eigenvector
    :math:`v_j = \Phi^\top C u_j/\sqrt{(M-\mathrm{ddof})\lambda_j}` of K, so
    :math:`v_j^\top g_m = (u_j^\top C G)_m/\sqrt{(M-\mathrm{ddof})\lambda_j}`: no
    parameter-space vector is formed. ``n_top`` must count only eigenvalues > 0.
    """
    G = gram.to(torch.float64)
    M = G.shape[0]
    C = _centring(M)
    U = spectrum["gram_eigenvectors"][:, :n_top]
    return (U.T @ C @ G) / torch.sqrt((M - spectrum["ddof"]) * spectrum["eigs"][:n_top])[:, None]


def gradient_gram(model: nn.Module, loss_fn, batches, method: str = "auto",
                  chunk_size: int = 512) -> tuple[Tensor, str, Tensor | None]:
    r"""Uncentred Gram matrix :math:`G_{mm'} = \langle g_m, g_{m'}\rangle` (float64, CPU).

    Returns ``(G, method_used, Phi)`` where ``Phi`` (M × P, the gradients as rows) is
    returned by the "vmap" and "loop" methods and ``None`` by "gram". The model is used in
    its current mode; the public functions call this inside ``curvature_mode``.
    """
    if method not in GRAM_METHODS:
        raise ValueError(f"method must be one of {GRAM_METHODS}, got {method!r}")
    check_mean_loss(loss_fn)
    names, params = trainable(model)
    batches, _ = prepare_batches(batches, params[0].device, params[0].dtype)
    per_example = all(len(x) == 1 for x, _ in batches)
    if method == "auto" and sum(len(x) for x, _ in batches) >= LOOP_MIN_BATCH * len(batches):
        method = "loop"     # large batches: one ordinary backward each is as fast and simpler
    if method in ("auto", "gram"):
        layers = _supported_layers(model, params)
        if layers is not None:
            return _gram_by_layers(model, loss_fn, batches, layers, per_example, chunk_size), "gram", None
        if method == "gram":
            raise ValueError("method='gram' needs every trainable parameter in an nn.Linear, nn.Conv2d "
                             "(zero padding) or eval-mode BatchNorm with running statistics")
        method = "vmap" if per_example else "loop"
    if method == "vmap":
        phi = _per_example_vmap(model, loss_fn, batches, names, params, chunk_size)
    else:
        with torch.enable_grad():
            phi = torch.stack([flatten(_grad(loss_fn(model(x), y), params)) for x, y in batches])
    return _sym_gram(phi).to("cpu", torch.float64), method, phi


# ---------------------------------------------------------------------- generic paths


def _per_example_vmap(model, loss_fn, batches, names, params, chunk_size) -> Tensor:
    if not all(len(x) == 1 for x, _ in batches):
        raise ValueError("method='vmap' computes per-example gradients: every batch must hold one example")
    p0 = tuple(p.detach() for p in params)

    def loss_one(ps, x, y):
        return loss_fn(functional_call(model, dict(zip(names, ps)), (x.unsqueeze(0),)), y.unsqueeze(0))

    per_ex = vmap(grad(loss_one), in_dims=(None, 0, 0))
    rows = []
    for chunk in _chunks(batches, chunk_size):
        x = torch.cat([b[0] for b in chunk])
        y = torch.cat([b[1] for b in chunk])
        g = per_ex(p0, x, y)
        rows.append(torch.cat([t.reshape(len(x), -1) for t in g], dim=1))
    return torch.cat(rows)


@torch.enable_grad()
def _weighted_gradients(model, loss_fn, batches, W: Tensor, chunk_size: int) -> Tensor:
    """Columns Σ_m W[m, j] g_m (P × J): one forward and J backward passes per chunk."""
    names, params = trainable(model)
    batches, _ = prepare_batches(batches, params[0].device, params[0].dtype)
    W = W.to(device=params[0].device, dtype=params[0].dtype)
    out = torch.zeros(sum(p.numel() for p in params), W.shape[1], device=W.device, dtype=W.dtype)
    m0 = 0
    for chunk in _chunks(batches, chunk_size):
        losses = _segment_losses(model, loss_fn, chunk)
        for j in range(W.shape[1]):
            obj = (losses * W[m0:m0 + len(chunk), j]).sum()
            out[:, j] += flatten(_grad(obj, params, retain_graph=j + 1 < W.shape[1])).detach()
        m0 += len(chunk)
    return out


def _chunks(batches, chunk_size):
    """Consecutive groups of whole batches with at most chunk_size examples (>= 1 batch)."""
    chunk, n = [], 0
    for b in batches:
        if chunk and n + len(b[0]) > chunk_size:
            yield chunk
            chunk, n = [], 0
        chunk.append(b)
        n += len(b[0])
    if chunk:
        yield chunk


def _segment_losses(model, loss_fn, chunk, out=None) -> Tensor:
    """Vector of the mean losses of the batches in ``chunk`` from one concatenated forward."""
    if out is None:
        out = model(torch.cat([b[0] for b in chunk]))
    if all(len(x) == 1 for x, _ in chunk):      # per-example: one batched call, not one per example
        y = torch.cat([b[1] for b in chunk])
        try:
            return vmap(lambda o, t: loss_fn(o[None], t[None]))(out, y)
        except RuntimeError:                     # a loss vmap cannot batch: the loop below
            pass
    losses, s = [], 0
    for x, y in chunk:
        losses.append(loss_fn(out[s:s + len(x)], y))
        s += len(x)
    return torch.stack(losses)


# ---------------------------------------------------------------------- layer-wise Gram


def _conv_padding(m: nn.Conv2d):
    if m.padding_mode != "zeros":
        return None
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return (0, 0)
        pads = []
        for k, d in zip(m.kernel_size, m.dilation):   # "same" (stride 1)
            total = d * (k - 1)
            if total % 2:
                return None
            pads.append(total // 2)
        return tuple(pads)
    return tuple(m.padding)


def _supported_layers(model: nn.Module, params) -> dict | None:
    """{module: (weight trainable, bias trainable)} if every trainable parameter is covered."""
    wanted = {id(p) for p in params}
    covered: dict[int, int] = {}
    layers = {}
    for m in model.modules():
        own = [(n, p) for n, p in m.named_parameters(recurse=False) if id(p) in wanted]
        if not own:
            continue
        if isinstance(m, nn.Linear):
            ok = True
        elif isinstance(m, nn.Conv2d):
            ok = _conv_padding(m) is not None
        elif isinstance(m, _BN):
            ok = m.affine and m.track_running_stats and m.running_mean is not None and not m.training
        else:
            ok = False
        if not ok or any(n not in ("weight", "bias") for n, _ in own):
            return None
        for _, p in own:
            covered[id(p)] = covered.get(id(p), 0) + 1
        names = {n for n, _ in own}
        layers[m] = ("weight" in names, "bias" in names)
    if set(covered) != wanted or any(c > 1 for c in covered.values()):
        return None          # uncovered parameters, or one parameter shared by two modules
    return layers


def _capture_forward(model, layers, x, clone: bool):
    records: dict[nn.Module, list] = {m: [] for m in layers}

    def hook(m, inp, out):
        records[m].append((inp[0].detach(), out, out._version))
        return out.clone() if clone else None

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        y = model(x)
    finally:
        for h in handles:
            h.remove()
    return y, records


def _gram_by_layers(model, loss_fn, batches, layers, per_example: bool, chunk_size: int) -> Tensor:
    M = len(batches)
    chunks = list(_chunks(batches, chunk_size))
    single = len(chunks) == 1
    G = torch.zeros(M, M, dtype=torch.float64)
    stored: dict[nn.Module, list] = {m: [] for m in layers}   # per chunk features (multi-chunk)
    kinds: dict[nn.Module, str] = {}
    narrow = _NarrowBlocks(G)
    for chunk in chunks:
        x = torch.cat([b[0] for b in chunk])
        sizes = [len(b[0]) for b in chunk]
        with torch.enable_grad():
            out, rec = _capture_forward(model, layers, x, clone=False)
            if any(o._version != v for r in rec.values() for _, o, v in r):   # in-place op downstream
                out, rec = _capture_forward(model, layers, x, clone=True)
            objective = _segment_losses(model, loss_fn, chunk, out).sum()
            flat = [(m, i) for m, r in rec.items() for i in range(len(r))]
            grads = torch.autograd.grad(objective, [rec[m][i][1] for m, i in flat], allow_unused=True)
        gout: dict[nn.Module, list] = {m: [] for m in layers}
        for (m, i), g in zip(flat, grads):
            gout[m].append((rec[m][i][0], g))
        del rec, out, objective, grads
        for m in layers:
            calls = [(a, g) for a, g in gout[m] if g is not None]
            gout[m] = None
            if m not in kinds:
                if not calls:
                    kinds[m] = "phi"
                lin2d = isinstance(m, nn.Linear) and len(calls) == 1 and calls[0][0].dim() == 2
                kinds.setdefault(m, "ab" if (lin2d and per_example) else "phi")
            if kinds[m] == "ab" and not calls:
                A = torch.zeros(len(x), m.in_features, device=x.device, dtype=m.weight.dtype)
                calls = [(A, torch.zeros(len(x), m.out_features, device=x.device, dtype=m.weight.dtype))]
            feat = _features(m, layers[m], calls, kinds[m], sizes, len(x))
            if not single:
                stored[m].append(feat)
            elif kinds[m] == "phi":
                narrow.add(feat)
            else:
                G += _gram_of([feat], kinds[m])
    if single:
        narrow.flush()
    else:
        for m in layers:
            G += _gram_of(stored[m], kinds[m])
            stored[m] = None
    return G


class _NarrowBlocks:
    """Adds the Gram of gradient blocks to G, gathering narrow blocks (fewer than
    NARROW_COLUMNS columns: biases, BN, small convolutions) into one product: each Gram
    costs O(M^2) beyond its flops (syrk's output, the mirror, float64 conversion), which
    dominated for nets of many small layers (cProfile, BN-CNN: 33 blocks of 4-576 columns).
    Holds at most NARROW_COLUMNS columns x M rows of one chunk."""

    def __init__(self, G: Tensor):
        self.G, self.parts, self.width = G, [], 0

    def add(self, blocks: list[Tensor]) -> None:
        for b in blocks:
            if b.shape[1] >= NARROW_COLUMNS:
                self.G += _sym_gram(b).to("cpu", torch.float64)
                continue
            self.parts.append(b)
            self.width += b.shape[1]
            if self.width >= NARROW_COLUMNS:
                self.flush()

    def flush(self) -> None:
        if self.parts:
            self.G += _sym_gram(torch.cat(self.parts, dim=1)).to("cpu", torch.float64)
        self.parts, self.width = [], 0


def _sym_gram(phi: Tensor, blocks: int = 4, syrk: bool = True) -> Tensor:
    """phi @ phi.T computing each entry of the symmetric result once.

    On the CPU (float32/float64, from SYRK_MIN_ROWS rows) BLAS ``?syrk`` through SciPy: half
    the flops of a product, and on the Fortran view of phi (no copy) ~30% less CPU than the
    4-block triangle below for the per-example Gram of 512 examples (cProfile, 2.3k-205k
    columns; docs/PERFORMANCE.md "Curvature"). Elsewhere the upper block triangle of
    ``blocks`` x ``blocks`` products (10/16 of the flops for 4 blocks) from 128 rows per
    block. Fewer rows (e.g. paper D's 25 mini-batch gradients): one product.
    """
    n = phi.shape[0]
    if syrk and n >= SYRK_MIN_ROWS and phi.device.type == "cpu" and phi.dtype in _SYRK:
        a = phi.detach().contiguous().numpy()           # C order (n, P): a.T is Fortran order (P, n)
        upper = torch.from_numpy(_SYRK[phi.dtype](1.0, a.T, trans=1))   # a a^T, upper triangle
        return torch.triu(upper) + torch.triu(upper, 1).T
    if n < 128 * blocks:
        return phi @ phi.T
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    G = torch.empty(n, n, device=phi.device, dtype=phi.dtype)
    for i in range(blocks):
        a = phi[edges[i]:edges[i + 1]]
        for j in range(i, blocks):
            g = a @ phi[edges[j]:edges[j + 1]].T
            G[edges[i]:edges[i + 1], edges[j]:edges[j + 1]] = g
            if j != i:
                G[edges[j]:edges[j + 1], edges[i]:edges[i + 1]] = g.T
    return G


def _gram_of(feats: list, kind: str) -> Tensor:
    if kind == "ab":
        A = torch.cat([f[0] for f in feats])
        B = torch.cat([f[1] for f in feats])
        w, b = feats[0][2]
        GB = _sym_gram(B)
        GA = (_sym_gram(A) if w else torch.zeros_like(GB)) + (1.0 if b else 0.0)
        return (GA * GB).to("cpu", torch.float64)
    G = None
    for parts in zip(*feats):                 # one parameter tensor at a time, all chunks
        phi = parts[0] if len(parts) == 1 else torch.cat(parts)
        g = _sym_gram(phi)
        G = g if G is None else G + g
    return G.to("cpu", torch.float64)


def _segment_sum(t: Tensor, sizes: list[int]) -> Tensor:
    """Sum rows of t (n × d) within consecutive segments of the given sizes (each >= 1: as
    many segments as rows means one row each, an O(1) test instead of a pass over sizes)."""
    if len(sizes) == len(t):
        return t
    idx = torch.repeat_interleave(torch.arange(len(sizes), device=t.device),
                                  torch.tensor(sizes, device=t.device))
    return torch.zeros(len(sizes), t.shape[1], device=t.device, dtype=t.dtype).index_add_(0, idx, t)


def _outer_sums(B3: Tensor, U3: Tensor, sizes: list[int], max_elems: int = 2**25) -> Tensor:
    """Per-group Σ_{i in group, t} b_it u_itᵀ, flattened: B3 (n, o, T), U3 (n, i, T) -> (groups, o*i)."""
    n, o, T = B3.shape
    i_dim = U3.shape[1]
    if len(sizes) == n:                       # one example per group (sizes are >= 1)
        step = max(1, max_elems // max(1, o * i_dim))
        return torch.cat([torch.bmm(B3[s:s + step], U3[s:s + step].transpose(1, 2)).reshape(-1, o * i_dim)
                          for s in range(0, n, step)])
    rows, s = [], 0
    for size in sizes:
        b = B3[s:s + size].transpose(0, 1).reshape(o, -1)
        u = U3[s:s + size].transpose(0, 1).reshape(i_dim, -1)
        rows.append((b @ u.T).reshape(-1))
        s += size
    return torch.stack(rows)


def _conv_weight_grads(m: nn.Conv2d, A: Tensor, B: Tensor, sizes: list[int], max_elems: int = 2**25) -> Tensor:
    """Per-group weight gradients of a Conv2d, (groups, weight.numel()).

    ATen's ``convolution_backward`` (weight gradient only) on each group's examples; for
    one-example groups ``torch.func.vmap`` over it, whose batching rule runs one grouped
    convolution: as fast as the summed weight gradient of an ordinary backward pass and
    several times faster than im2col + bmm on CPU.
    """
    w = m.weight.detach()
    pad = list(_conv_padding(m))

    def wgrad(a, b):
        return torch.ops.aten.convolution_backward(
            b, a, w, None, list(m.stride), pad, list(m.dilation), False, [0, 0], m.groups,
            [False, True, False])[1]

    if len(sizes) != len(A):                  # groups of several examples (sizes are >= 1)
        rows, s = [], 0
        for size in sizes:
            rows.append(wgrad(A[s:s + size], B[s:s + size]).reshape(-1))
            s += size
        return torch.stack(rows)
    if m.groups == 1 and B[0, 0].numel() <= UNFOLD_MAX_POSITIONS:
        return _conv_weight_grads_unfold(m, A, B, pad, max_elems)
    per_ex = vmap(lambda a, b: wgrad(a[None], b[None]))
    step = max(1, max_elems // max(1, w.numel() + A[0].numel()))
    if step >= len(A):
        return per_ex(A, B).reshape(len(A), -1)
    return torch.cat([per_ex(A[s:s + step], B[s:s + step]).reshape(-1, w.numel())
                      for s in range(0, len(A), step)])


def _conv_weight_grads_unfold(m: nn.Conv2d, A: Tensor, B: Tensor, pad, max_elems: int) -> Tensor:
    """Per-example weight gradients of a Conv2d with few output positions T: im2col of the
    input (n, C_in k_h k_w, T) and one (C_out x T) @ (T x C_in k_h k_w) product per example.

    Why: for small maps vmap's grouped convolution ran 2.5-12.8x slower than the summed weight
    gradient (ResNet's 64-channel layers at 7x7: 0.16 s vs 0.013 s, 512 examples), and so did
    torch.bmm on the CPU (inner dimension T); NumPy's stacked matmul (one BLAS GEMM per example)
    took 0.05 s with the im2col (docs/PERFORMANCE.md "Curvature").
    """
    n, out_ch = len(A), B.shape[1]
    cols = A.shape[1] * math.prod(m.kernel_size)
    step = max(1, max_elems // max(1, cols * (B[0, 0].numel() + out_ch)))
    rows = []
    for s in range(0, n, step):
        U = torch.nn.functional.unfold(A[s:s + step], m.kernel_size, m.dilation, pad, m.stride)   # (b, cols, T)
        Bs = B[s:s + step].reshape(len(U), out_ch, -1)                                          # (b, C_out, T)
        if A.device.type == "cpu" and A.dtype in _SYRK:
            g = torch.from_numpy(np.matmul(Bs.detach().contiguous().numpy(), U.transpose(1, 2).numpy()))
        else:
            g = torch.bmm(Bs, U.transpose(1, 2))
        rows.append(g.reshape(len(U), -1))
    return rows[0] if len(rows) == 1 else torch.cat(rows)


def _features(m: nn.Module, trainable_wb, calls, kind: str, sizes: list[int], n: int):
    """Per-group gradient features of module m over one chunk (summed over its calls).

    "ab": (A, B, (weight on, bias on)) for the Linear Gram trick; "phi": a list of
    (groups × numel) gradient blocks, one per trainable parameter tensor.
    """
    w_on, b_on = trainable_wb
    if not calls:       # the layer's output does not reach the loss: zero gradients
        d = (m.weight.numel() if w_on else 0) + (m.bias.numel() if b_on else 0)
        return [torch.zeros(len(sizes), d, device=m.weight.device, dtype=m.weight.dtype)]
    if kind == "ab":
        (A, B), = calls
        return (A if w_on else A[:, :0], B, (w_on, b_on))
    total = None
    for A, B in calls:
        parts = []
        if isinstance(m, nn.Linear):
            A3 = A.reshape(n, -1, A.shape[-1]).transpose(1, 2)          # (n, in, T)
            B3 = B.reshape(n, -1, B.shape[-1]).transpose(1, 2)          # (n, out, T)
            if w_on:
                parts.append(_outer_sums(B3, A3, sizes))
            if b_on:
                parts.append(_segment_sum(B3.sum(2), sizes))
        elif isinstance(m, nn.Conv2d):
            if w_on:
                parts.append(_conv_weight_grads(m, A, B, sizes))
            if b_on:
                parts.append(_segment_sum(B.sum((2, 3)), sizes))
        else:   # BatchNorm in eval mode: y = γ x̂ + β, x̂ from the running statistics
            shape = (1, -1) + (1,) * (A.dim() - 2)
            xhat = (A - m.running_mean.view(shape)) * torch.rsqrt(m.running_var.view(shape) + m.eps)
            dims = tuple(range(2, A.dim()))
            if w_on:
                parts.append(_segment_sum((B * xhat).sum(dims) if dims else B * xhat, sizes))
            if b_on:
                parts.append(_segment_sum(B.sum(dims) if dims else B, sizes))
        total = parts if total is None else [t + p for t, p in zip(total, parts)]
    return total
