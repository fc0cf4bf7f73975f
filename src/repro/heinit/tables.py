"""Paper C's tidy tables: the per-layer table of the sweeps and what is built from it.

``per_layer`` (one row per configuration, layer and metric), columns::

    sweep, inputs, init, width, depth, n_samples, input_dim, seed, data_seed, delta,
    layer, metric, mean, std, min, max, eps_measured, eps_std, eps_max, eps_theory

``mean``/``std`` (population std, ``ddof=0`` as in the authors' ``np.std``)/``min``/``max``
are over samples of the ratio; ``eps_*`` are over samples of the deviation ``|1 - ratio|``;
``eps_theory`` is :func:`repro.heinit.theory_epsilon` (same for every layer).

``summary`` (:func:`summarize`; one row per configuration and metric) pools the layers::

    eps_measured   mean over samples and layers of |1 - ratio|  (the authors' empirical eps)
    eps_std        std over samples and layers of |1 - ratio|   (the authors' error bar)
    eps_layer_max  max over layers of the per-layer mean deviation
    eps_max        max over samples and layers (the uniform deviation the theorem bounds)
    spread         mean over layers of the per-layer std of the ratio across samples
    last_mean      mean ratio at the top layer
    eps_theory     the paper's eps(m) for (width, depth, n_samples, delta)
    eps_rate       the m^-1/2 envelope beside it (:func:`repro.heinit.theory_epsilon_rate`;
                   shown for C1u, no verdict)

``glorot_slopes`` (:func:`glorot_slope`): per Glorot configuration, the slope of log mean
forward ratio against layer (claim C4).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..tables import write_table
from .theory import theory_epsilon_rate

METRICS = ("forward_ratio", "backward_ratio")
CONFIG_KEYS = ["sweep", "inputs", "init", "width", "depth", "n_samples", "input_dim", "seed",
               "data_seed", "delta"]
PER_LAYER_COLUMNS = CONFIG_KEYS + ["layer", "metric", "mean", "std", "min", "max",
                                   "eps_measured", "eps_std", "eps_max", "eps_theory"]
SUMMARY_COLUMNS = CONFIG_KEYS + ["metric", "eps_measured", "eps_std", "eps_layer_max", "eps_max",
                                 "spread", "last_mean", "eps_theory", "eps_rate"]
GLOROT_COLUMNS = CONFIG_KEYS + ["slope", "rel_err", "se_theory", "rel_se_theory"]
# Glorot N(0, 1/m): each ReLU layer halves the expected squared norm, ratio_l ~ 2^(-l/2)
GLOROT_SLOPE = -0.5 * math.log(2.0)


def select(frame: pd.DataFrame, **eq) -> pd.DataFrame:
    """Rows whose column `k` equals `v` (or is in `v` when a list/tuple), for every k=v."""
    mask = np.ones(len(frame), dtype=bool)
    for k, v in eq.items():
        mask &= frame[k].isin(v).to_numpy() if isinstance(v, (list, tuple)) else (frame[k] == v).to_numpy()
    return frame[mask]


def read_per_layer(paths) -> pd.DataFrame:
    """Concatenate sweep CSVs (one per sweep) into the per-layer table, columns in order."""
    frames = [pd.read_csv(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True)[PER_LAYER_COLUMNS] if frames
            else pd.DataFrame(columns=PER_LAYER_COLUMNS))


def summarize(per_layer: pd.DataFrame) -> pd.DataFrame:
    """Pool the layers of each configuration (see the module docstring for the columns)."""
    if per_layer.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = []
    for key, g in per_layer.groupby(CONFIG_KEYS + ["metric"], sort=False, dropna=False):
        g = g.sort_values("layer")
        eps = g["eps_measured"].mean()                  # equal sample counts per layer
        second = (g["eps_std"] ** 2 + g["eps_measured"] ** 2).mean()
        rows.append(dict(zip(CONFIG_KEYS + ["metric"], key),
                         eps_measured=eps, eps_std=math.sqrt(max(second - eps ** 2, 0.0)),
                         eps_layer_max=g["eps_measured"].max(), eps_max=g["eps_max"].max(),
                         spread=g["std"].mean(), last_mean=g["mean"].iloc[-1],
                         eps_theory=g["eps_theory"].iloc[0]))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["eps_rate"] = theory_epsilon_rate(out["width"].to_numpy(float), out["depth"].to_numpy(float),
                                          out["n_samples"].to_numpy(float), out["delta"].to_numpy(float))
    return out


def paper_table(per_layer: pd.DataFrame) -> pd.DataFrame:
    """The authors' figure in numbers: per-layer mean and std of both ratios, paper setting."""
    d = select(per_layer, sweep="paper")
    cols = ["init", "width", "depth", "n_samples", "seed", "metric", "layer", "mean", "std"]
    return d[cols].sort_values(["seed", "init", "metric", "layer"], kind="stable")


def _slope_se_factor(depth: int) -> float:
    """sqrt(Var(OLS slope)) / s for y_l = sum_{k<=l} e_k (l = 1..depth), e_k iid with std s."""
    lay = np.arange(1, depth + 1, dtype=float)
    c = (lay - lay.mean()) / ((lay - lay.mean()) ** 2).sum()
    tail = np.cumsum(c[::-1])[::-1]           # sum_{l >= k} c_l
    return float(np.sqrt((tail ** 2).sum()))


def glorot_slope(per_layer: pd.DataFrame) -> pd.DataFrame:
    """Per Glorot configuration: OLS slope of log(mean forward ratio) against layer.

    Columns: the configuration keys, ``slope``, ``rel_err = |slope / s0 - 1|`` with
    ``s0 = -(1/2) log 2``, and ``se_theory``, the finite-width standard error of that slope
    from theory — each ReLU layer multiplies the squared norm by a factor with relative
    variance 5/m, i.e. a log-ratio step with std ~ sqrt(5/m)/2 (an upper bound for the
    sample mean), accumulated as a random walk over the layers. ``se_theory`` is reported
    to explain the noise of a configuration; it does not enter the C4 verdict.
    """
    g = select(per_layer, init="glorot", metric="forward_ratio")
    rows = []
    for key, d in g.groupby(CONFIG_KEYS, sort=False, dropna=False):
        d = d.sort_values("layer")
        y = np.log(d["mean"].to_numpy(float))
        if len(d) < 2 or not np.all(np.isfinite(y)):
            slope = float("nan")
        else:
            slope = float(np.polyfit(d["layer"].to_numpy(float), y, 1)[0])
        meta = dict(zip(CONFIG_KEYS, key))
        se = 0.5 * math.sqrt(5.0 / meta["width"]) * _slope_se_factor(len(d))
        rows.append(dict(meta, slope=slope, rel_err=abs(slope / GLOROT_SLOPE - 1.0),
                         se_theory=se, rel_se_theory=se / abs(GLOROT_SLOPE)))
    return pd.DataFrame(rows, columns=GLOROT_COLUMNS)


def build_tables(sweep_paths, out: dict) -> dict:
    """Per-layer, summary, paper-setting and Glorot-slope tables (CSV + Markdown).

    ``out`` maps names to paths: per_layer, summary, summary_md, paper_md, glorot, glorot_md
    (any missing name is skipped). Returns the frames by name.
    """
    per_layer = read_per_layer(sweep_paths)
    frames = {"per_layer": per_layer, "summary": summarize(per_layer),
              "paper": paper_table(per_layer), "glorot": glorot_slope(per_layer)}
    write_table(frames["per_layer"], out.get("per_layer"))
    write_table(frames["summary"], out.get("summary"), out.get("summary_md"))
    write_table(frames["paper"], None, out.get("paper_md"))
    write_table(frames["glorot"], out.get("glorot"), out.get("glorot_md"))
    return frames
