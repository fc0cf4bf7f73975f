"""Exactness tests of repro.curvature against dense matrices on tiny float64 models.

References are built independently of the library: the full Hessian with torch.func.hessian
of the loss of the *concatenated* data as a function of one flat parameter vector, the
gradient covariance K from an explicit loop with one backward pass per batch, then dense
eigendecompositions.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from repro.curvature import (
    HessianVectorProduct,
    covariance_from_gram,
    curvature_mode,
    grad_covariance_eigs,
    hessian_eigs,
    hessian_trace,
    projections_on_top_eigenvectors,
    step_sharpness_alpha,
)

DT = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread is fastest and immune to a busy shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- tiny models


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN affine parameters and running statistics (eval differs from train)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen, dtype=DT))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen, dtype=DT))
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=gen, dtype=DT))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen, dtype=DT))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 7), nn.Tanh(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)).to(DT)


class SmallCNN(nn.Module):
    """conv(same)-BN-ReLU-conv(valid)-BN-ReLU-linear on 1x6x6 inputs."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(inplace=inplace),
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace),
        )
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def small_cnn(inplace: bool = False) -> nn.Module:
    torch.manual_seed(1)
    model = SmallCNN(inplace).to(DT)
    _randomise_bn(model, torch.Generator().manual_seed(11))
    return model


class PreActResidual(nn.Module):
    """stem conv, then a pre-activation block BN-ReLU-conv-BN-ReLU-conv applied twice with
    shared weights (h <- h + F(h), two steps), then BN-ReLU-avgpool-linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.bn1, self.bn2, self.bn_head = nn.BatchNorm2d(3), nn.BatchNorm2d(3), nn.BatchNorm2d(3)
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(3, 3, 3, padding="same", bias=False)
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        h = self.stem(x)
        for _ in range(2):
            h = h + self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(h))))))
        return self.fc(torch.relu(self.bn_head(h)).mean(dim=(2, 3)))


def preact() -> nn.Module:
    torch.manual_seed(2)
    model = PreActResidual().to(DT)
    _randomise_bn(model, torch.Generator().manual_seed(12))
    return model


def data(model_name: str, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shape = (n, 6) if model_name == "mlp" else (n, 1, 6, 6)
    return torch.randn(shape, generator=gen, dtype=DT), torch.randint(0, 3, (n,), generator=gen)


MODELS = {"mlp": mlp, "cnn": small_cnn, "preact": preact}


def split(X, Y, sizes):
    out, s = [], 0
    for k in sizes:
        out.append((X[s:s + k], Y[s:s + k]))
        s += k
    assert s == len(X)
    return out


# ----------------------------------------------------------------------------- dense references


def trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def dense_hessian(model, loss_fn, X, Y) -> torch.Tensor:
    """Hessian of loss_fn(model(X), Y) on the concatenated data, eval mode, flat parameters."""
    named = trainable(model)
    shapes = [p.shape for _, p in named]
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(flat):
        ps, s = {}, 0
        for (n, _), sh in zip(named, shapes):
            ps[n] = flat[s:s + sh.numel()].view(sh)
            s += sh.numel()
        return loss_fn(functional_call(model, ps, (X,)), Y)

    was = model.training
    model.eval()
    try:
        return torch.func.hessian(f)(theta)
    finally:
        model.train(was)


@functools.lru_cache(maxsize=None)
def ref_hessian(name: str, n: int = 12, seed: int = 0) -> torch.Tensor:
    """Dense Hessian of MODELS[name]() on data(name, n, seed), computed once per session."""
    X, Y = data(name, n, seed)
    return dense_hessian(MODELS[name](), CE, X, Y)


def loop_gradients(model, loss_fn, batches) -> torch.Tensor:
    """One backward pass per batch (eval mode); rows are the flat gradients."""
    was = model.training
    model.eval()
    rows = []
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for _, p in trainable(model)]))
    model.zero_grad(set_to_none=True)
    model.train(was)
    return torch.stack(rows)


def dense_K(model, loss_fn, batches) -> torch.Tensor:
    g = loop_gradients(model, loss_fn, batches)
    c = g - g.mean(0)
    return c.T @ c / len(batches)


def rel(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max() / torch.as_tensor(b).abs().max())


CE = nn.CrossEntropyLoss()


# ----------------------------------------------------------------------------- Hessian


@pytest.mark.parametrize("name", ["mlp", "cnn", "preact"])
def test_hessian_eigs_match_dense(name):
    model = MODELS[name]()
    model.train()                              # the library must switch to eval itself
    X, Y = data(name, 12)
    H = ref_hessian(name)
    ref = torch.linalg.eigvalsh(H).flip(0)[:3]
    info = {}
    eigs = hessian_eigs(model, CE, split(X, Y, [5, 5, 2]), k=3, tol=1e-10, info=info)
    assert eigs.shape == (3,) and torch.all(eigs[:-1] >= eigs[1:])
    assert rel(eigs, ref) <= 1e-6, (eigs, ref)
    assert info["n_products"] > 0 and info["hvp"] in ("cached", "fwdrev")


def test_default_tolerance_bounds_the_error():
    model = small_cnn()
    X, Y = data("cnn", 12)
    ref = torch.linalg.eigvalsh(ref_hessian("cnn")).max()
    eig = hessian_eigs(model, CE, [(X, Y)])             # tol=1e-4 (residual), k=1
    assert abs(float(eig[0]) - float(ref)) <= 1e-4 * abs(float(ref))


def test_unequal_batches_weigh_by_examples():
    """Hessian of batches [7, 4, 1] == Hessian of the concatenated 12 examples."""
    model = mlp()
    X, Y = data("mlp", 12)
    H = ref_hessian("mlp")
    batches = split(X, Y, [7, 4, 1])
    ref = torch.linalg.eigvalsh(H).flip(0)[:2]
    assert rel(hessian_eigs(model, CE, batches, k=2, tol=1e-10), ref) <= 1e-6
    v = torch.randn(H.shape[0], dtype=DT, generator=torch.Generator().manual_seed(3))
    for method in ("cached", "fwdrev", "double_backward"):
        with curvature_mode(model):
            hv = HessianVectorProduct(model, CE, batches, method=method)(v)
        assert rel(hv, H @ v) <= 1e-10, method
    # the data can tell example weighting from batch-count weighting
    with curvature_mode(model):
        hv_count = sum(HessianVectorProduct(model, CE, [b])(v) for b in batches) / 3
    assert rel(hv_count, H @ v) > 1e-2


def test_eigenvectors_and_warm_start():
    model = preact()
    X, Y = data("preact", 12)
    H = ref_hessian("preact")
    eigs, vecs = hessian_eigs(model, CE, [(X, Y)], k=2, tol=1e-10, return_eigenvectors=True)
    assert vecs.shape == (H.shape[0], 2)
    for i in range(2):
        assert torch.linalg.norm(H @ vecs[:, i] - eigs[i] * vecs[:, i]) <= 1e-7 * abs(float(eigs[0]))
        assert abs(float(vecs[:, i].norm()) - 1) < 1e-10
    cold, warm = {}, {}
    hessian_eigs(model, CE, [(X, Y)], k=1, tol=1e-6, info=cold)
    hessian_eigs(model, CE, [(X, Y)], k=1, tol=1e-6, v0=vecs[:, 0], info=warm)
    assert warm["n_products"] < cold["n_products"]


@pytest.mark.parametrize("start", ["gradient", "random"])
@pytest.mark.parametrize("check", [True, False])
def test_every_start_and_stopping_rule_meets_the_tolerance(start, check):
    """Gradient and random starts, per-product Ritz test and ARPACK's own: each returned
    pair has a true residual within tol against the dense Hessian, and the eigenvalues
    match the dense ones."""
    model = small_cnn()
    X, Y = data("cnn", 12)
    H = ref_hessian("cnn")
    ref = torch.linalg.eigvalsh(H).flip(0)[:2]
    info = {}
    eigs, vecs = hessian_eigs(model, CE, split(X, Y, [5, 7]), k=2, tol=1e-8, start=start,
                              check_every_product=check, return_eigenvectors=True, info=info)
    assert rel(eigs, ref) <= 1e-6, (eigs, ref)
    for i in range(2):
        assert torch.linalg.norm(H @ vecs[:, i] - eigs[i] * vecs[:, i]) <= 1e-6 * abs(float(eigs[i]))
    assert info["stopped_by"] in (("ritz", "arpack") if check else ("arpack",))


def test_per_product_test_stops_before_arpack():
    """The Ritz test ends the call before ARPACK's first full-basis test (ncv+1 products)
    at the same tolerance, and its answer is within that tolerance of the dense one."""
    model = preact()
    X, Y = data("preact", 12)
    top = float(torch.linalg.eigvalsh(ref_hessian("preact")).max())
    ritz, arpack = {}, {}
    e1 = hessian_eigs(model, CE, [(X, Y)], tol=1e-2, ncv=12, info=ritz)
    e2 = hessian_eigs(model, CE, [(X, Y)], tol=1e-2, ncv=12, check_every_product=False, info=arpack)
    assert ritz["stopped_by"] == "ritz" and ritz["n_products"] < arpack["n_products"]
    for e in (e1, e2):
        assert abs(float(e[0]) - top) <= 1e-2 * top


def test_ritz_monitor_compresses_and_stays_exact():
    """A monitor holding only 3 vectors (compressed to its Ritz pair when full), fed power
    iterates of a dense symmetric matrix, still stops with a pair whose true residual
    passes the test."""
    import numpy as np

    from repro.curvature.ritz import Converged, RitzMonitor

    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    A = (Q * np.append(np.linspace(-1, 5, 59), 10.0)) @ Q.T
    mon = RitzMonitor(lambda v: A @ v, k=1, tol=1e-6, max_vectors=3)
    v = rng.standard_normal(60)
    with pytest.raises(Converged) as done:
        for _ in range(200):
            v = mon(v)
            v /= np.linalg.norm(v)
    u, theta = done.value.vectors[:, 0], done.value.values[0]
    assert len(mon.V) <= 3
    assert np.linalg.norm(A @ u - theta * u) <= 1e-6 * abs(theta)
    assert abs(theta - 10) <= 1e-6 * 10


def test_hessian_eigs_agree_with_curvlinops():
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import eigsh

    model = small_cnn()
    X, Y = data("cnn", 12, seed=5)
    batches = split(X, Y, [5, 5, 2])
    model.eval()
    params = [p for _, p in trainable(model)]
    op = HessianLinearOperator(model, CE, params, batches, check_deterministic=False).to_scipy()
    ref = torch.from_numpy(eigsh(op, k=2, which="LA", tol=1e-9)[0].copy()).flip(0)
    model.train()
    ours = hessian_eigs(model, CE, batches, k=2, tol=1e-9)
    assert rel(ours, ref) <= 1e-6, (ours, ref)


# ----------------------------------------------------------------------------- trace


def test_hutchinson_within_three_standard_errors():
    model = small_cnn()
    X, Y = data("cnn", 12)
    H = ref_hessian("cnn")
    exact = float(torch.trace(H))
    # Rademacher: Var(vᵀHv) = 2(‖H‖_F² − Σ H_ii²)
    sd = math.sqrt(2 * (float((H ** 2).sum()) - float((torch.diagonal(H) ** 2).sum())))
    n = 60
    for seed in range(4):
        est, se = hessian_trace(model, CE, [(X, Y)], n_probes=n, rtol=None, seed=seed)
        assert abs(est - exact) <= 3 * se, (seed, est, exact, se)
        assert 0.6 < se * math.sqrt(n) / sd < 1.5            # the standard error is the right size
    a = hessian_trace(model, CE, [(X, Y)], n_probes=5, rtol=None, seed=1)
    b = hessian_trace(model, CE, [(X, Y)], n_probes=5, rtol=None, generator=torch.Generator().manual_seed(1))
    assert a == b


def test_hutchinson_stops_on_standard_error():
    model = mlp()
    X, Y = data("mlp", 10)
    info = {}
    est, se = hessian_trace(model, CE, [(X, Y)], n_probes=500, rtol=0.5, min_probes=7, info=info)
    assert info["n_probes"] < 500 and info["n_probes"] >= 7
    assert se <= 0.5 * abs(est)
    info = {}
    _, se2 = hessian_trace(model, CE, [(X, Y)], n_probes=12, rtol=1e-9, min_probes=7, info=info)
    assert info["n_probes"] == 12


# ----------------------------------------------------------------------------- gradient covariance


@pytest.mark.parametrize("name", ["mlp", "cnn", "preact"])
@pytest.mark.parametrize("method", ["auto", "vmap", "loop"])
def test_per_example_covariance_matches_loop(name, method):
    model = MODELS[name]()
    model.train()
    X, Y = data(name, 14, seed=4)
    batches = split(X, Y, [1] * 14)
    K = dense_K(model, CE, batches)
    ref = torch.linalg.eigvalsh(K).flip(0)
    out = grad_covariance_eigs(model, CE, batches, method=method)
    if method == "auto":
        assert out["method"] == "gram"
    eigs = out["eigs"]
    assert eigs.shape == (14,) and torch.all(eigs[:-1] >= eigs[1:])
    assert rel(eigs, ref[:14]) <= 1e-6
    assert abs(out["trace"] - float(torch.trace(K))) <= 1e-6 * float(torch.trace(K))
    assert abs(out["lambda_star"] - float(ref[12])) <= 1e-6 * float(ref[12])     # (M-1)-th largest
    assert float(ref[13]) < 1e-10 * float(ref[0])                                 # rank M-1


@pytest.mark.parametrize("name", ["cnn", "preact"])
@pytest.mark.parametrize("narrow, unfold", [(8, 0), (4096, 10**6)])
def test_per_example_covariance_through_syrk_and_grouped_blocks(name, narrow, unfold, monkeypatch):
    """Enough examples for the BLAS syrk Gram (SYRK_MIN_ROWS), with the parameter blocks
    grouped into shared products (default width) or each wide enough for its own (8), and the
    conv weight gradients by vmap (unfold 0) or by im2col + GEMM (every layer): the spectrum
    of the explicit per-example gradients either way."""
    from repro.curvature import gradient_covariance as gcov
    monkeypatch.setattr(gcov, "NARROW_COLUMNS", narrow)
    monkeypatch.setattr(gcov, "UNFOLD_MAX_POSITIONS", unfold)
    model = MODELS[name]()
    M = gcov.SYRK_MIN_ROWS + 2
    X, Y = data(name, M, seed=5)
    batches = split(X, Y, [1] * M)
    K = dense_K(model, CE, batches)
    ref = torch.linalg.eigvalsh(K).flip(0)
    out = grad_covariance_eigs(model, CE, batches, k=5)
    assert out["method"] == "gram"
    assert rel(out["eigs"], ref[:5]) <= 1e-6
    assert abs(out["trace"] - float(torch.trace(K))) <= 1e-6 * float(torch.trace(K))


@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 1, 1), (2, 0, 2)])
def test_conv_weight_grads_by_unfold_equal_explicit_per_example_gradients(stride, padding, dilation):
    """im2col + GEMM per-example weight gradients, in chunks of 2 examples, against one
    autograd call per example (float64)."""
    from repro.curvature.gradient_covariance import _conv_weight_grads_unfold
    gen = torch.Generator().manual_seed(6)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, dilation=dilation, bias=False).double()
    A = torch.randn(5, 3, 9, 9, generator=gen, dtype=DT)
    out = conv(A)
    B = torch.randn(out.shape, generator=gen, dtype=DT)
    got = _conv_weight_grads_unfold(conv, A, B, conv.padding, max_elems=2 * 27 * (out[0, 0].numel() + 4))
    ref = torch.stack([torch.autograd.grad((conv(A[i:i + 1]) * B[i:i + 1]).sum(), conv.weight)[0].reshape(-1)
                       for i in range(5)])
    assert got.shape == ref.shape and torch.allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["cnn", "preact"])
def test_minibatch_covariance_and_chunking(name):
    """g_m = mean gradient of batch m (unequal sizes), several chunks of batches."""
    model = MODELS[name]()
    X, Y = data(name, 20, seed=6)
    batches = split(X, Y, [3, 3, 5, 2, 4, 3])
    K = dense_K(model, CE, batches)
    ref = torch.linalg.eigvalsh(K).flip(0)
    for chunk in (4, 512):
        out = grad_covariance_eigs(model, CE, batches, k=3, chunk_size=chunk)
        assert out["method"] == "gram" and out["eigs"].shape == (3,)
        assert rel(out["eigs"], ref[:3]) <= 1e-6
        assert abs(out["trace"] - float(torch.trace(K))) <= 1e-6 * float(torch.trace(K))
        assert abs(out["lambda_star"] - float(ref[4])) <= 1e-6 * float(ref[4])
    unbiased = grad_covariance_eigs(model, CE, batches, ddof=1)
    assert abs(unbiased["trace"] - float(torch.trace(K)) * 6 / 5) <= 1e-6 * float(torch.trace(K))


@pytest.mark.parametrize("ddof", [0, 1])
def test_covariance_from_gram_matches_dense_covariance(ddof):
    """K = 1/(M - ddof) Σ (g - ḡ)(g - ḡ)ᵀ formed densely from explicit gradients (P > M),
    its spectrum, trace, λ_* and the projections of the raw gradients on its eigenvectors."""
    gen = torch.Generator().manual_seed(11)
    M, P = 7, 12
    phi = torch.randn(M, P, generator=gen, dtype=DT) + torch.randn(P, generator=gen, dtype=DT)
    centred = phi - phi.mean(0, keepdim=True)
    K = sum(torch.outer(g, g) for g in centred) / (M - ddof)
    vals, vecs = torch.linalg.eigh(K)
    vals, vecs = vals.flip(0), vecs.flip(1)
    out = covariance_from_gram(phi @ phi.T, ddof=ddof, eigenvectors=True)
    assert out["eigs"].shape == (M,) and rel(out["eigs"][:M - 1], vals[:M - 1]) <= 1e-10
    assert abs(out["eigs"][M - 1]) <= 1e-10 * vals[0]                            # rank M-1 after centring
    assert abs(out["trace"] - float(torch.trace(K))) <= 1e-10 * float(torch.trace(K))
    assert abs(out["lambda_star"] - float(vals[M - 2])) <= 1e-10 * float(vals[M - 2])
    assert rel(covariance_from_gram(phi @ phi.T, ddof=ddof)["eigs"], out["eigs"]) <= 1e-12  # eigvalsh path
    proj = projections_on_top_eigenvectors(phi @ phi.T, out, 3)
    dense = vecs[:, :3].T @ phi.T                                  # v_jᵀ g_m, eigenvector signs free
    assert rel(proj.abs(), dense.abs()) <= 1e-10
    with pytest.raises(ValueError):
        covariance_from_gram(torch.ones(1, 1), ddof=1)


def test_auto_switches_to_loop_at_the_measured_batch_size():
    """auto: "gram" below LOOP_MIN_BATCH examples per batch, "loop" from it; the same K
    (float64, against the dense covariance) either way."""
    from repro.curvature.gradient_covariance import LOOP_MIN_BATCH

    model = MODELS["cnn"]()
    for size, expected in ((LOOP_MIN_BATCH - 1, "gram"), (LOOP_MIN_BATCH, "loop")):
        X, Y = data("cnn", 3 * size, seed=8)
        batches = split(X, Y, [size] * 3)
        K = dense_K(model, CE, batches)
        out = grad_covariance_eigs(model, CE, batches)
        assert out["method"] == expected
        assert rel(out["eigs"][:2], torch.linalg.eigvalsh(K).flip(0)[:2]) <= 1e-8
        assert abs(out["trace"] - float(torch.trace(K))) <= 1e-8 * float(torch.trace(K))


def test_per_example_gram_across_chunks_and_inplace_relu():
    model = small_cnn(inplace=True)
    X, Y = data("cnn", 11, seed=7)
    batches = split(X, Y, [1] * 11)
    ref = torch.linalg.eigvalsh(dense_K(model, CE, batches)).flip(0)
    for chunk in (3, 512):
        out = grad_covariance_eigs(model, CE, batches, chunk_size=chunk, method="gram")
        assert rel(out["eigs"], ref[:11]) <= 1e-6, chunk


def test_covariance_eigenvectors():
    model = preact()
    X, Y = data("preact", 9, seed=8)
    batches = split(X, Y, [1] * 9)
    K = dense_K(model, CE, batches)
    for method in ("gram", "loop"):
        out = grad_covariance_eigs(model, CE, batches, k=3, return_eigenvectors=True, method=method)
        V = out["eigenvectors"]
        assert V.shape == (K.shape[0], 3)
        for i in range(3):
            lam = out["eigs"][i]
            assert abs(float(V[:, i].norm()) - 1) < 1e-10
            assert torch.linalg.norm(K @ V[:, i] - lam * V[:, i]) <= 1e-8 * float(out["eigs"][0])


def test_block_triangular_gram():
    from repro.curvature.gradient_covariance import _sym_gram
    phi = torch.randn(601, 37, dtype=DT, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_sym_gram(phi), phi @ phi.T, rtol=1e-12, atol=1e-12)
    assert torch.allclose(_sym_gram(phi, syrk=False), phi @ phi.T, rtol=1e-12, atol=1e-12)   # 4-block triangle


@pytest.mark.parametrize("rows", [128, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_syrk_gram_is_the_full_symmetric_product(rows, dtype):
    """BLAS syrk fills one triangle; _sym_gram returns the whole symmetric matrix, from a
    non-contiguous input too, in the input's dtype."""
    from repro.curvature.gradient_covariance import _sym_gram
    phi = torch.randn(45, rows, dtype=dtype, generator=torch.Generator().manual_seed(1)).T   # (rows, 45), strided
    G = _sym_gram(phi)
    ref = phi.double() @ phi.double().T
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert G.dtype == dtype and G.shape == (rows, rows) and torch.equal(G, G.T)
    assert torch.allclose(G.double(), ref, rtol=tol, atol=tol * float(ref.abs().max()))


def test_unsupported_layer_falls_back_to_vmap():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 3)).to(DT)
    X, Y = data("mlp", 8)
    batches = split(X, Y, [1] * 8)
    ref = torch.linalg.eigvalsh(dense_K(model, CE, batches)).flip(0)
    out = grad_covariance_eigs(model, CE, batches)
    assert out["method"] == "vmap"
    assert rel(out["eigs"], ref[:8]) <= 1e-6
    with pytest.raises(ValueError):
        grad_covariance_eigs(model, CE, batches, method="gram")


def test_frozen_parameters_are_excluded():
    model = small_cnn()
    model.features[0].weight.requires_grad_(False)
    model.fc.bias.requires_grad_(False)
    X, Y = data("cnn", 8, seed=9)
    batches = split(X, Y, [1] * 8)
    ref = torch.linalg.eigvalsh(dense_K(model, CE, batches)).flip(0)
    assert rel(grad_covariance_eigs(model, CE, batches)["eigs"], ref[:8]) <= 1e-6
    # the Hessian w.r.t. the trainable parameters is a principal submatrix of the full one
    keep = torch.cat([torch.full((p.numel(),), p.requires_grad) for p in model.parameters()])
    H = ref_hessian("cnn")[keep][:, keep]
    X, Y = data("cnn", 12)
    assert rel(hessian_eigs(model, CE, [(X, Y)], k=1, tol=1e-10), torch.linalg.eigvalsh(H)[-1:]) <= 1e-6


class WithUnused(nn.Module):
    """An MLP plus a layer the forward pass never uses (its Hessian rows and gradients are 0)."""

    def __init__(self):
        super().__init__()
        self.net = mlp()
        self.unused = nn.Linear(2, 2).to(DT)

    def forward(self, x):
        return self.net(x)


def test_unused_parameters_count_as_zero():
    model = WithUnused()
    X, Y = data("mlp", 12)
    H = ref_hessian("mlp")
    eigs = hessian_eigs(model, CE, split(X, Y, [6, 6]), k=2, tol=1e-10)
    assert rel(eigs, torch.linalg.eigvalsh(H).flip(0)[:2]) <= 1e-6
    for method in ("fwdrev", "double_backward"):
        assert rel(hessian_eigs(model, CE, [(X, Y)], k=1, tol=1e-10, hvp=method), eigs[:1]) <= 1e-6
    batches = split(X, Y, [1] * 12)
    ref = torch.linalg.eigvalsh(dense_K(model.net, CE, batches)).flip(0)
    for method in ("gram", "vmap", "loop"):
        out = grad_covariance_eigs(model, CE, batches, k=3, method=method, return_eigenvectors=True)
        assert rel(out["eigs"], ref[:3]) <= 1e-6, method
        assert out["eigenvectors"][-6:].abs().max() == 0          # the unused layer's coordinates


# ----------------------------------------------------------------------------- α*


def quadratic_problem(seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(20, 4, generator=gen, dtype=DT)
    y = torch.randn(20, 1, generator=gen, dtype=DT)
    model = nn.Linear(4, 1, bias=False).to(DT)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 4, generator=gen, dtype=DT))
    return model, X, y


@pytest.mark.parametrize("lr", [0.05, 1.5])
def test_alpha_star_on_a_quadratic(lr):
    """L(w − αΔ) = aα² − bα + c in closed form; α* = (b + sqrt(b² + 4a(c_thr − 1)c)) / 2a."""
    model, X, y = quadratic_problem()
    mse = nn.MSELoss()
    w = model.weight.detach().clone()
    loss = mse(model(X), y)
    (g,) = torch.autograd.grad(loss, model.weight)
    w_next = w - lr * g
    d = (X @ (w - w_next).T).squeeze(1)
    r = (X @ w.T - y).squeeze(1)
    a, b, c = float((d ** 2).mean()), float(2 * (r * d).mean()), float(loss.detach())
    thr = 1.2
    exact = (b + math.sqrt(b * b + 4 * a * (thr - 1) * c)) / (2 * a)
    info = {}
    alpha = step_sharpness_alpha(model, mse, split(X, y, [8, 8, 4]), w_next.reshape(-1), threshold=thr,
                                 rtol=1e-8, info=info)
    assert abs(alpha - exact) <= 1e-7 * exact, (alpha, exact)
    assert torch.equal(model.weight.detach(), w)
    assert (exact < 1) == (lr == 1.5)                   # both bracketing directions are exercised
    # a list of tensors and a name->tensor mapping mean the same θ'
    assert step_sharpness_alpha(model, mse, [(X, y)], [w_next], threshold=thr, rtol=1e-8) == pytest.approx(alpha)
    assert step_sharpness_alpha(model, mse, [(X, y)], {"weight": w_next}, threshold=thr,
                                rtol=1e-8) == pytest.approx(alpha)


def test_alpha_star_infinite_when_loss_never_reaches_target():
    model, X, y = quadratic_problem(1)
    w = model.weight.detach().clone()
    # θ' = θ: the line is constant, the loss never grows
    assert step_sharpness_alpha(model, nn.MSELoss(), [(X, y)], w.reshape(-1), alpha_max=2.0**10) == math.inf


# ----------------------------------------------------------------------------- BN policy


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = small_cnn()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.body(x))


def _snapshot(model):
    return ({n: m.training for n, m in model.named_modules()},
            {k: v.clone() for k, v in model.state_dict().items()})


def _assert_unchanged(model, snap):
    modes, state = snap
    assert {n: m.training for n, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_modes_parameters_and_buffers_restored():
    model = Mixed().to(DT)
    model.train()
    model.body.features[1].eval()                       # a frozen BN inside a training model
    snap = _snapshot(model)
    X, Y = data("cnn", 12)
    batches = split(X, Y, [8, 4])
    per_ex = split(X, Y, [1] * 12)
    # dropout is off and BN uses running statistics: the result equals the eval-mode reference
    ref = torch.linalg.eigvalsh(ref_hessian("cnn"))[-1]
    assert rel(hessian_eigs(model, CE, batches, tol=1e-10), ref.reshape(1)) <= 1e-6
    _assert_unchanged(model, snap)
    hessian_trace(model, CE, batches, n_probes=3)
    _assert_unchanged(model, snap)
    grad_covariance_eigs(model.body, CE, per_ex, return_eigenvectors=True, k=2)
    _assert_unchanged(model, snap)
    grad_covariance_eigs(model, CE, per_ex, method="vmap")
    _assert_unchanged(model, snap)
    theta_next = [p.detach() + 0.01 for p in model.parameters()]
    step_sharpness_alpha(model, CE, batches, theta_next)
    _assert_unchanged(model, snap)


def test_modes_restored_on_exception():
    model = Mixed().to(DT)
    model.train()
    model.body.fc.eval()
    snap = _snapshot(model)
    X, Y = data("cnn", 4)
    calls = {"n": 0}

    class Boom(nn.CrossEntropyLoss):
        def forward(self, out, y):
            calls["n"] += 1
            if calls["n"] > 1:
                raise RuntimeError("boom")
            return super().forward(out, y)

    for fn in (lambda: hessian_eigs(model, Boom(), split(X, Y, [2, 2]), hvp="fwdrev"),
               lambda: hessian_trace(model, Boom(), split(X, Y, [2, 2]), hvp="double_backward"),
               lambda: step_sharpness_alpha(model, Boom(), [(X, Y)], [p + 1 for p in model.parameters()]),
               lambda: grad_covariance_eigs(model, Boom(), split(X, Y, [1] * 4), method="loop")):
        calls["n"] = 0
        with pytest.raises(RuntimeError, match="boom"):
            fn()
        _assert_unchanged(model, snap)


def test_rejects_sum_reduced_loss():
    model = mlp()
    X, Y = data("mlp", 4)
    with pytest.raises(ValueError, match="mean"):
        hessian_eigs(model, nn.CrossEntropyLoss(reduction="sum"), [(X, Y)])


def test_works_inside_no_grad():
    model = mlp()
    X, Y = data("mlp", 12)
    with torch.no_grad():
        e = hessian_eigs(model, CE, [(X, Y)], tol=1e-10)
        out = grad_covariance_eigs(model, CE, split(X, Y, [1] * 12), k=1, return_eigenvectors=True)
    assert rel(e, torch.linalg.eigvalsh(ref_hessian("mlp"))[-1:]) <= 1e-6
    assert out["eigenvectors"].shape[1] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_stays_on_device():
    model = small_cnn().cuda()
    X, Y = data("cnn", 8)
    Xc, Yc = X.cuda(), Y.cuda()
    ref = torch.linalg.eigvalsh(dense_hessian(model, CE, Xc, Yc)).flip(0)[:2].cpu()
    eigs, vecs = hessian_eigs(model, CE, [(Xc, Yc)], k=2, tol=1e-10, return_eigenvectors=True)
    assert vecs.is_cuda and rel(eigs, ref) <= 1e-6
    out = grad_covariance_eigs(model, CE, split(Xc, Yc, [1] * 8), k=2, return_eigenvectors=True)
    ref_k = torch.linalg.eigvalsh(dense_K(model, CE, split(Xc, Yc, [1] * 8))).flip(0)[:2].cpu()
    assert out["eigenvectors"].is_cuda and rel(out["eigs"], ref_k) <= 1e-6
    est, se = hessian_trace(model, CE, [(Xc, Yc)], n_probes=20, rtol=None)
    assert abs(est - float(torch.trace(dense_hessian(model, CE, Xc, Yc)))) <= 4 * se
    assert all(p.is_cuda for p in model.parameters())
