"""Paper C simulations: norm preservation at He initialization in deep ReLU networks
(arXiv:1901.03611); re-exported as ``repro.heinit.*`` (e.g. ``repro.heinit.norm_ratios``).

Simulation at initialization, no training. Semantics follow the authors' NumPy code
(``devansharpit/overparametrization_benefits``, ``norm_per_layer.py``), re-implemented here
as one batched pass over all samples:

* inputs ``x`` (``n_samples`` of them): ``N(0, I_input_dim)``, or any matrix passed in;
* ``depth`` hidden ReLU layers of width ``m = width`` without biases,
  ``h_0 = x``, ``a_l = W_l h_{l-1}``, ``h_l = ReLU(a_l)``;
* a softmax output layer of ``n_outputs`` units (default 20), ``W_out ~ N(0, 1)`` entries;
* random targets ``y ~ U(0, 1)^{n_outputs}`` divided by their sum (so ``sum(y) = 1``), loss
  ``l = -sum_k y_k log softmax(W_out h_L)_k`` whose gradient with respect to the logits is
  ``softmax - y``.

Per layer ``l = 1..depth`` and per sample:

* ``forward_ratio  = ||h_l|| / ||x||``;
* ``backward_ratio = ||dl/dW_l||_F / (||x|| * ||delta||)`` with
  ``delta = delta_L = 1[h_L > 0] * W_out^T (softmax - y)`` (the error at the top hidden
  layer's pre-activation, as in the authors' code) and
  ``||dl/dW_l||_F = ||h_{l-1}|| * ||delta_l||`` (the per-sample gradient of a linear layer is
  the outer product ``delta_l h_{l-1}^T``), ``delta_{l-1} = 1[a_{l-1} > 0] * W_l^T delta_l``.

Initializations (``init=``), hidden matrices ``W_l`` of shape (fan_out, fan_in) = (m, m), the
first one (m, input_dim); the output layer is ``N(0, 1)`` for every choice (authors' code):

* ``"he"``: the paper's convention — every hidden matrix, including the first, has entries
  ``N(0, 2/m)`` with ``m`` the *output* (fan-out) width. Then ``E||h_1||^2 = ||x||^2`` for any
  input dimension.
* ``"he_fanin"``: PyTorch's ``kaiming_normal_`` default, ``N(0, 2/fan_in)``: identical to
  ``"he"`` for the (m, m) layers, ``N(0, 2/input_dim)`` for the first one, so
  ``||h_l|| / ||x|| ~ sqrt(m / input_dim)``.
* ``"glorot"``: the authors' code's Glorot variant, ``N(0, 1/m)`` (fan-out ``m``) for every
  hidden matrix. Each ReLU layer then halves the expected squared norm:
  ``||h_l|| / ||x|| ~ 2^{-l/2}``.
* ``"glorot_uniform"``: PyTorch's ``xavier_uniform_``, ``U(-a, a)`` with
  ``a = sqrt(6 / (fan_in + fan_out))`` (variance ``2 / (fan_in + fan_out)``; equal to ``1/m``
  for the (m, m) layers).

Randomness: NumPy ``PCG64`` generators derived with ``SeedSequence`` from ``weights_seed``
(one stream per layer) and ``data_seed`` (one stream for inputs, one for targets); both
default to ``seed``. Everything is drawn on the CPU in float64 and then explicitly cast and
moved to the compute device, so results do not depend on chunking or device beyond
floating-point rounding. Results always come back as CPU NumPy arrays / pandas frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .theory import INITS  # noqa: E402  (numpy-only module; re-exported)
DEFAULT_N_OUTPUTS = 20
# Budget for one chunk's working set (activations, masks, deltas), bytes.
DEFAULT_CHUNK_BYTES = 256 * 2**20

_STREAM_WEIGHTS, _STREAM_INPUTS, _STREAM_TARGETS = 0, 1, 2


# --------------------------------------------------------------------------- helpers

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype = "float64") -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        out = {"float64": torch.float64, "double": torch.float64,
               "float32": torch.float32, "float": torch.float32}.get(str(dtype))
    if out not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return out


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def weight_variance(init: str, fan_in: int, fan_out: int) -> float:
    """Variance of one entry of a hidden weight matrix of shape (fan_out, fan_in)."""
    if init == "he":
        return 2.0 / fan_out
    if init == "he_fanin":
        return 2.0 / fan_in
    if init == "glorot":
        return 1.0 / fan_out
    if init == "glorot_uniform":
        return 2.0 / (fan_in + fan_out)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def _hidden_matrix(init: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    var = weight_variance(init, fan_in, fan_out)
    if init == "glorot_uniform":
        a = math.sqrt(3.0 * var)
        return rng.uniform(-a, a, size=(fan_out, fan_in))
    return rng.standard_normal((fan_out, fan_in)) * math.sqrt(var)


def make_weights(width: int, depth: int, input_dim: int, init: str = "he", seed: int = 0, *,
                 n_outputs: int = DEFAULT_N_OUTPUTS, dtype="float64", device="cpu"):
    """Hidden weight matrices ``[W_1 .. W_depth]`` (each (out, in)) and ``W_out`` (n_outputs, m).

    Layer ``l`` is drawn from its own stream of ``seed``, so ``W_l`` does not depend on the
    depth of the network it sits in. Drawn in float64 on the CPU, then cast and moved.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if min(width, depth, input_dim, n_outputs) < 1:
        raise ValueError("width, depth, input_dim and n_outputs must be positive")
    dt, dev = resolve_dtype(dtype), resolve_device(device)
    hidden = []
    for l in range(depth):
        fan_in = input_dim if l == 0 else width
        w = _hidden_matrix(init, fan_in, width, _rng(seed, _STREAM_WEIGHTS, l))
        hidden.append(torch.from_numpy(w).to(device=dev, dtype=dt))
    w_out = _rng(seed, _STREAM_WEIGHTS, depth + 1_000_000).standard_normal((n_outputs, width))
    return hidden, torch.from_numpy(w_out).to(device=dev, dtype=dt)


def gaussian_inputs(n_samples: int, input_dim: int, seed: int = 0) -> np.ndarray:
    """``n_samples`` inputs ``x ~ N(0, I_input_dim)`` (float64, CPU), from ``seed``'s input stream."""
    return _rng(seed, _STREAM_INPUTS).standard_normal((n_samples, input_dim))


def random_targets(n_samples: int, n_outputs: int = DEFAULT_N_OUTPUTS, seed: int = 0) -> np.ndarray:
    """Targets ``y ~ U(0,1)^n_outputs`` normalised to sum 1 per sample (authors' code)."""
    y = _rng(seed, _STREAM_TARGETS).random((n_samples, n_outputs))
    return y / y.sum(axis=1, keepdims=True)


def auto_chunk_size(n_samples: int, width: int, depth: int, itemsize: int = 8,
                    max_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Samples per chunk so that activations, deltas and the stored ReLU masks fit max_bytes."""
    per_sample = width * (4 * itemsize + depth) + 64
    return int(max(1, min(n_samples, max_bytes // per_sample)))


# --------------------------------------------------------------------------- core pass

@dataclass
class NormRatioArrays:
    """Per-sample results of one simulation; arrays are CPU float64 NumPy.

    forward, backward: (n_samples, depth); x_norm, delta_norm: (n_samples,).
    """
    forward: np.ndarray
    backward: np.ndarray
    x_norm: np.ndarray
    delta_norm: np.ndarray

    @property
    def depth(self) -> int:
        return self.forward.shape[1]

    @property
    def n_samples(self) -> int:
        return self.forward.shape[0]

    def to_frame(self, include_sample: bool = False) -> pd.DataFrame:
        """Long frame, one row per (layer, sample), layer-major; layers numbered 1..depth."""
        n, depth = self.forward.shape
        cols = {}
        if include_sample:
            cols["sample"] = np.tile(np.arange(n), depth)
        cols["layer"] = np.repeat(np.arange(1, depth + 1), n)
        cols["forward_ratio"] = self.forward.T.reshape(-1)
        cols["backward_ratio"] = self.backward.T.reshape(-1)
        return pd.DataFrame(cols)


def _chunk_pass(x: torch.Tensor, hidden: list[torch.Tensor], w_out: torch.Tensor,
                y: torch.Tensor):
    """Forward and backward norms for one chunk of samples (rows of x)."""
    x_norm = torch.linalg.vector_norm(x, dim=1)
    h = x
    h_norms = [x_norm]                       # ||h_0|| .. ||h_L||
    masks = []                               # 1[a_l > 0], l = 1..L (bool, cheap to keep)
    for w in hidden:
        a = h @ w.T
        masks.append(a > 0)
        h = a.clamp_min_(0.0)
        h_norms.append(torch.linalg.vector_norm(h, dim=1))
    err = torch.softmax(h @ w_out.T, dim=1) - y          # dl/dlogits for soft-target CE
    d = (err @ w_out) * masks[-1]                         # delta_L
    depth = len(hidden)
    d_norms = [None] * depth
    d_norms[-1] = torch.linalg.vector_norm(d, dim=1)
    for l in range(depth - 1, 0, -1):                     # delta_{l} from delta_{l+1} (0-based)
        d = (d @ hidden[l]) * masks[l - 1]
        d_norms[l - 1] = torch.linalg.vector_norm(d, dim=1)
    hn = torch.stack(h_norms, dim=1)                      # (B, L+1)
    dn = torch.stack(d_norms, dim=1)                      # (B, L)
    forward = hn[:, 1:] / x_norm[:, None]
    backward = hn[:, :-1] * dn / (x_norm * d_norms[-1])[:, None]
    return forward, backward, x_norm, d_norms[-1]


def compute_norm_ratios(x, hidden: list[torch.Tensor], w_out: torch.Tensor, y,
                        chunk_size: int | None = None) -> NormRatioArrays:
    """Batched forward/backward norm ratios for given weights, inputs x (N, d) and targets y.

    x and y may be NumPy arrays or tensors; they are cast to the weights' dtype and moved to
    the weights' device explicitly, processed ``chunk_size`` samples at a time (default: a
    size that keeps the chunk's working set near 256 MiB), and the results are returned on
    the CPU as float64 NumPy arrays.
    """
    dev, dt = w_out.device, w_out.dtype
    x = torch.as_tensor(x).reshape(len(x), -1)
    y = torch.as_tensor(y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError("x and y must have the same number of samples")
    if x.shape[1] != hidden[0].shape[1]:
        raise ValueError(f"input dim {x.shape[1]} does not match first layer {hidden[0].shape[1]}")
    width, depth = hidden[0].shape[0], len(hidden)
    if chunk_size is None:
        chunk_size = auto_chunk_size(n, width, depth, itemsize=torch.finfo(dt).bits // 8)
    outs = []
    with torch.no_grad():
        for start in range(0, n, int(chunk_size)):
            xc = x[start:start + chunk_size].to(device=dev, dtype=dt)
            yc = y[start:start + chunk_size].to(device=dev, dtype=dt)
            outs.append([t.detach().to("cpu", torch.float64)
                         for t in _chunk_pass(xc, hidden, w_out, yc)])
    fwd, bwd, xn, dn = (torch.cat(parts).numpy() for parts in zip(*outs))
    return NormRatioArrays(forward=fwd, backward=bwd, x_norm=xn, delta_norm=dn)


def simulate_network(x, width: int, depth: int, init: str = "he", *, weights_seed: int = 0,
             targets_seed: int = 0, n_outputs: int = DEFAULT_N_OUTPUTS,
             chunk_size: int | None = None, dtype="float64", device="auto") -> NormRatioArrays:
    """The shared core: a fresh network (from ``weights_seed``) applied to inputs ``x``."""
    x = np.asarray(x, dtype=np.float64) if not torch.is_tensor(x) else x
    n, input_dim = x.shape[0], int(np.prod(x.shape[1:]))
    hidden, w_out = make_weights(width, depth, input_dim, init, weights_seed,
                                 n_outputs=n_outputs, dtype=dtype, device=device)
    y = random_targets(n, n_outputs, targets_seed)
    return compute_norm_ratios(x, hidden, w_out, y, chunk_size=chunk_size)


def norm_ratio_arrays(width: int, depth: int, n_samples: int, input_dim: int,
                      init: str = "he", seed: int = 0, *, n_outputs: int = DEFAULT_N_OUTPUTS,
                      weights_seed: int | None = None, data_seed: int | None = None,
                      chunk_size: int | None = None, dtype="float64",
                      device="auto") -> NormRatioArrays:
    """Like :func:`norm_ratios` but returns the (n_samples, depth) arrays."""
    ws = seed if weights_seed is None else weights_seed
    ds = seed if data_seed is None else data_seed
    x = gaussian_inputs(n_samples, input_dim, ds)
    return simulate_network(x, width, depth, init, weights_seed=ws, targets_seed=ds,
                    n_outputs=n_outputs, chunk_size=chunk_size, dtype=dtype, device=device)


def norm_ratios(width: int, depth: int, n_samples: int, input_dim: int, init: str = "he",
                seed: int = 0, *, n_outputs: int = DEFAULT_N_OUTPUTS,
                weights_seed: int | None = None, data_seed: int | None = None,
                chunk_size: int | None = None, dtype="float64", device="auto",
                include_sample: bool = False) -> pd.DataFrame:
    """Per-layer, per-sample norm ratios at initialization with Gaussian inputs.

    Returns a CPU DataFrame with columns ``layer`` (1..depth), ``forward_ratio``,
    ``backward_ratio`` — one row per layer and sample, layer-major (plus ``sample`` first
    when ``include_sample``). ``weights_seed`` / ``data_seed`` default to ``seed``; keep the
    weights seed and change the data seed to evaluate the same network on fresh samples.
    """
    return norm_ratio_arrays(width, depth, n_samples, input_dim, init, seed,
                             n_outputs=n_outputs, weights_seed=weights_seed,
                             data_seed=data_seed, chunk_size=chunk_size, dtype=dtype,
                             device=device).to_frame(include_sample)


def norm_ratios_for_inputs(X, width: int, depth: int, init: str = "he", seed: int = 0, *,
                           n_outputs: int = DEFAULT_N_OUTPUTS, weights_seed: int | None = None,
                           data_seed: int | None = None, chunk_size: int | None = None,
                           dtype="float64", device="auto",
                           include_sample: bool = False) -> pd.DataFrame:
    """:func:`norm_ratios` for a given input matrix X (N, ...) — e.g. flattened MNIST images.

    Rows of X are flattened; ``data_seed`` (default ``seed``) draws the random targets.
    """
    ws = seed if weights_seed is None else weights_seed
    ds = seed if data_seed is None else data_seed
    return simulate_network(X, width, depth, init, weights_seed=ws, targets_seed=ds,
                    n_outputs=n_outputs, chunk_size=chunk_size, dtype=dtype,
                    device=device).to_frame(include_sample)


# --------------------------------------------------------------------------- reference

def norm_ratios_loop_numpy(x: np.ndarray, hidden: list[np.ndarray], w_out: np.ndarray,
                           y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straightforward per-sample NumPy loop in the style of the authors' script.

    The baseline for benchmarks and an independent cross-check of the batched pass.
    Returns (forward, backward), each (n_samples, depth).
    """
    n, depth = len(x), len(hidden)
    fwd, bwd = np.empty((n, depth)), np.empty((n, depth))
    for i in range(n):
        xi = x[i]
        hs = [xi]
        h = xi
        for l in range(depth):
            h = np.maximum(0.0, hidden[l].dot(h))
            hs.append(h)
            fwd[i, l] = np.linalg.norm(h) / np.linalg.norm(xi)
        logits = w_out.dot(h)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        delta = (hs[-1] > 0) * w_out.T.dot(p - y[i])
        d = delta
        for l in range(depth - 1, -1, -1):
            bwd[i, l] = np.linalg.norm(hs[l]) * np.linalg.norm(d) / (
                np.linalg.norm(xi) * np.linalg.norm(delta))
            if l > 0:
                d = (hs[l] > 0) * hidden[l].T.dot(d)
    return fwd, bwd


# the theorem's bounds and the measured deviations live in .theory (numpy only, so the
# tables, claims and figures jobs never import torch); re-exported here for the public API
from .theory import (deviation_stats, measured_epsilon, required_width, theory_epsilon,  # noqa: E402,F401
                     theory_epsilon_rate)
