"""Paper C's claims C1-C4, tested on the per-layer table as :class:`repro.claims.Claim`
records, by the pre-registered rules of docs/CLAIMS.md section 5 (thresholds unchanged, every
verdict read from an interval, :mod:`repro.stats`):

* C1 (per metric): the mean deviation eps_measured is below eps(m) — tested only at widths
  where eps(m) < 1 (at larger eps(m) a ratio in [0, 2] cannot fail; those widths are listed
  as vacuous). Seed-bootstrap interval of max over widths of seed-mean eps_measured/eps(m).
* C1u (per metric): the uniform deviation (max over samples and layers) is below eps(m) for
  all but a delta fraction of networks, non-vacuous widths: exact binomial test,
  Clopper-Pearson interval of the exceedance rate. A genuine negative about the authors'
  1/m bound; the m^-1/2 envelope :func:`repro.heinit.theory_epsilon_rate` is shown beside it.
* C2 (per metric): log-log slope of the spread vs width in [-0.7, -0.3] (interval inside).
* C3 (per metric): at fixed width eps grows with depth (Spearman >= 0.8 and slope > 0).
* C4: Glorot's forward ratio decays as 2^{-l/2}: per configuration the seed-mean relative
  error of the slope in [-0.1, 0.1], over the configurations whose theoretical seed-mean
  noise can resolve 10 % (intersection-union).

The fresh-sample sweep is shown as a figure and in the summary table but has no verdict: at
its width (m = 100) eps(m) is ~91, and own and fresh data sets are exchangeable draws.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import stats
from ..claims import Claim, to_frame
from ..io import atomic_write_text
from ..papers import get as get_paper
from .tables import (CONFIG_KEYS, GLOROT_SLOPE, METRICS, glorot_slope, read_per_layer, select,
                     summarize)

PAPER = get_paper("heinit").id
SCALE = "default"             # every paper-C claim is registered at the default scale (CLAIMS.md 2)

# A priori thresholds (docs/CLAIMS.md section 5).
C2_BAND = (-0.7, -0.3)
C3_MIN_SPEARMAN = 0.8
C4_REL_TOL = 0.10
C4_MAX_NOISE = 0.05           # include a Glorot configuration when se_theory/(|s0| sqrt(n)) <= this
C1U_ALPHA = 0.05


def _interval_text(seeds) -> str:
    return (f"95% percentile bootstrap over seeds {sorted(int(s) for s in seeds)}, "
            f"B={stats.BOOTSTRAP_B}")


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _record(cid: str, statement: str, statistic: str, threshold: str, value, verdict: str,
            note: str = "", lo=None, hi=None, interval: str = "", n_seeds=None) -> Claim:
    if isinstance(value, (float, np.floating)):
        value = float(value)
    return Claim(id=cid, paper=PAPER, statement=statement, statistic=statistic,
                 threshold=threshold, value=value, verdict=verdict, note=note,
                 ci_low=None if lo is None else _num(lo), ci_high=None if hi is None else _num(hi),
                 interval=interval, n_seeds=None if n_seeds is None else int(n_seeds), scale=SCALE)


def _too_few(seeds) -> str:
    n = len(set(seeds))
    return f"only {n} seed(s); the protocol needs >= {stats.MIN_SEEDS}" if n < stats.MIN_SEEDS else ""


def short_name(metric: str) -> str:
    """"forward" or "backward", for claim ids and legends."""
    return metric.split("_")[0]


def _he_width_rows(summary: pd.DataFrame, metric: str, sweeps) -> pd.DataFrame:
    """He Gaussian rows of the given sweeps, one per distinct network/data configuration."""
    s = select(summary, init="he", inputs="gaussian", metric=metric, sweep=list(sweeps))
    keys = [k for k in CONFIG_KEYS if k != "sweep"]
    return s.drop_duplicates(subset=keys).sort_values(["width", "seed"])


def _split_vacuous(s: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(rows with eps(m) < 1, the text listing the vacuous widths)."""
    vac = s[~(s["eps_theory"] < 1)]
    text = ", ".join(f"m={int(w)} (eps(m)={t:.3g})" for w, t in
                     vac.drop_duplicates("width")[["width", "eps_theory"]].itertuples(index=False))
    return s[s["eps_theory"] < 1], (f"vacuous (eps(m) >= 1, cannot fail), not tested: {text}" if text else "")


def claim_c1(summary: pd.DataFrame, metric: str = "forward_ratio",
             sweeps=("width", "paper")) -> Claim:
    """C1: the mean deviation eps_measured stays below eps(m), at the widths where eps(m) < 1.

    Statistic: max over those widths of (seed-mean eps_measured) / eps(m), bootstrapped over
    seeds; holds if the interval is below 1 (Jensen: every per-layer mean ratio is then
    within eps(m) of 1). Widths with eps(m) >= 1 are vacuous and only listed.
    """
    s = _he_width_rows(summary, metric, sweeps)
    cid = f"C1-{short_name(metric)}"
    statement = (f"He init (N(0,2/fan-out)): the {metric.replace('_', ' ')} stays near 1 — the "
                 "empirical eps (mean |1-ratio| over samples and layers) is below the "
                 "theoretical eps(m) at every width where eps(m) < 1")
    statistic = "max over non-vacuous widths of seed-mean eps_measured/eps_theory"
    s = s[np.isfinite(s["eps_measured"].to_numpy(float)) & np.isfinite(s["eps_theory"].to_numpy(float))]
    tested, vacuous = _split_vacuous(s)
    if s.empty:
        return _record(cid, statement, statistic, "< 1", None, "inconclusive",
                       "no He Gaussian configurations with finite values")
    if tested.empty:
        return _record(cid, statement, statistic, "< 1", None, "inconclusive",
                       f"every width is {vacuous}", n_seeds=s["seed"].nunique())

    def worst(f):
        g = f.groupby("width")[["eps_measured", "eps_theory"]].mean()
        return float((g["eps_measured"] / g["eps_theory"]).max())

    value, lo, hi = stats.seed_bootstrap(tested, worst)
    few = _too_few(tested["seed"])
    verdict = "inconclusive" if few else stats.interval_verdict(lo, hi, "<", 1.0)
    per = tested.groupby("width")[["eps_measured", "eps_theory"]].mean()
    detail = "; ".join(f"m={int(w)}: {r.eps_measured:.4g} vs {r.eps_theory:.4g}" for w, r in per.iterrows())
    note = "; ".join(p for p in (few, f"seed means {detail}", vacuous) if p)
    return _record(cid, statement, statistic, "< 1", value, verdict, note, lo, hi,
                   _interval_text(tested["seed"].unique()), tested["seed"].nunique())


def claim_c1_uniform(summary: pd.DataFrame, metric: str = "forward_ratio",
                     sweeps=("width", "paper"), alpha: float = C1U_ALPHA) -> Claim:
    """C1u: the uniform deviation max_{samples, layers} |1 - ratio| is below eps(m) w.p. 1-delta.

    The theorem bounds all N samples and L layers simultaneously with probability >= 1-delta
    over the weights; |1 - r| <= |1 - r^2| for r >= 0, so ``eps_max <= eps(m)`` is necessary
    whether eps bounds the norm or the squared norm. Among the n networks at non-vacuous
    widths (eps(m) < 1), k exceed; under the theorem k ~ Binomial(n, p), p <= delta. Holds
    if k = 0; fails if P(Binomial(n, delta) >= k) < alpha (0.05); inconclusive otherwise.
    Value: the exceedance rate k/n with its Clopper-Pearson 95 % interval (beside delta).
    """
    s = _he_width_rows(summary, metric, sweeps)
    cid = f"C1u-{short_name(metric)}"
    statement = (f"He init: the uniform deviation max over samples and layers of |1 - "
                 f"{metric.replace('_', ' ')}| stays below the theoretical eps(m) (the literal "
                 "high-probability statement, failure probability <= delta per network)")
    thr = f"k = 0 holds; binomial P(X >= k | n, delta) < {alpha} fails"
    statistic = "exceedance rate k/n of networks with eps_max > eps(m), non-vacuous widths"
    ok = np.isfinite(s["eps_max"].to_numpy(float)) & np.isfinite(s["eps_theory"].to_numpy(float))
    s, vacuous = _split_vacuous(s[ok])
    if s.empty:
        return _record(cid, statement, statistic, thr, None, "inconclusive",
                       "no He Gaussian configuration at a non-vacuous width (eps(m) < 1)"
                       + (f"; {vacuous}" if vacuous else ""))
    exceed = (s["eps_max"] > s["eps_theory"]).to_numpy()
    k, n = int(exceed.sum()), len(s)
    delta = float(s["delta"].max())
    pval = stats.binomial_tail(k, n, delta)
    lo, hi = stats.clopper_pearson(k, n)
    verdict = "holds" if k == 0 else ("fails" if pval < alpha else "inconclusive")
    detail = "; ".join(f"m={int(w)} seed {int(sd)}: eps_max {e:.4g} vs eps(m) {t:.4g}{' (exceeds)' if x else ''}"
                       f", m^-1/2 envelope {r:.3g}"
                       for w, sd, e, t, r, x in zip(s["width"], s["seed"], s["eps_max"], s["eps_theory"],
                                                    s["eps_rate"], exceed))
    note = (f"k={k} of n={n} networks, delta={delta}, binomial p={pval:.3g}, Clopper-Pearson 95% "
            f"[{lo:.3g}, {hi:.3g}] vs delta; {detail}")
    if vacuous:
        note += f"; {vacuous}"
    if n > 2 and s["width"].nunique() > 1:
        slope = stats.loglog_slope(s["width"], s["eps_max"])[0]
        note += (f". Why: the measured max deviation falls like m^{slope:.2f} over widths "
                 f"{int(s['width'].min())}-{int(s['width'].max())}, as a maximum over N*L deviations "
                 "of relative size sqrt(2/m) each must (~sqrt(log(NL/delta)/m)), while the authors' "
                 "eps(m) ~ (4L/m) log(4NL/delta) falls like 1/m (it bounds the squared norm linearly "
                 "in 1/m), so more width makes the comparison worse. The failure is of the 1/m bound, "
                 "not of the m^-1/2 law: the envelope eps_rate(m) = 1/2 sqrt(5L/m) sqrt(2 log(2NL/delta)) "
                 "(a Gaussian approximation, no verdict; column eps_rate, drawn in eps_vs_width) has "
                 "the measured rate; the rigorous Laurent-Massart union bound (1 + 2 sqrt(2t/m) + "
                 "4t/m)^L - 1, t = log(2NL/delta), has it too but exceeds 1 at every width <= 4000, "
                 "so it is not drawn")
    return _record(cid, statement, statistic, thr, k / n, verdict, note, lo, hi,
                   "exact: Clopper-Pearson 95% interval of k/n", s["seed"].nunique())


def claim_c2(summary: pd.DataFrame, metric: str = "forward_ratio",
             band: tuple[float, float] = C2_BAND) -> Claim:
    """C2: the spread (std of the ratio over samples) falls with width like m^{-1/2}.

    Theory: each He ReLU layer multiplies the squared norm by (2/m) sum_i relu(z_i)^2 with
    relative variance 5/m, so std(ratio_l) ~ sqrt(5 l / m) / 2 and the log-log slope against
    m is -1/2 at leading order; the band [-0.7, -0.3] allows for the O(1/m) corrections at
    m = 100 and sampling noise. Statistic: OLS slope of log spread vs log width over all
    (width, seed) points, its interval by seed bootstrap; the `in [a, b]` rule of CLAIMS.md 1.1.
    """
    s = select(summary, sweep="width", init="he", inputs="gaussian", metric=metric)
    s = s[np.isfinite(s["spread"].to_numpy(float)) & (s["spread"] > 0)].sort_values(["width", "seed"])
    cid = f"C2-{short_name(metric)}"
    statement = (f"He init: the std over samples of the {metric.replace('_', ' ')} (mean over "
                 "layers) shrinks with width with log-log slope near -1/2")
    thr = f"slope in [{band[0]}, {band[1]}]"
    statistic = "log-log OLS slope of spread vs width over (width, seed) points"
    if s["width"].nunique() < 3:
        return _record(cid, statement, statistic, thr, None, "inconclusive", "fewer than 3 widths")
    value, lo, hi = stats.seed_bootstrap(s, lambda f: stats.loglog_slope(f["width"], f["spread"])[0])
    few = _too_few(s["seed"])
    verdict = "inconclusive" if few else stats.interval_verdict(lo, hi, "in", band)
    _, se, tlo, thi = stats.loglog_slope(s["width"], s["spread"])
    note = "; ".join(p for p in (few, f"regression stderr {se:.3g} (t interval [{tlo:.3f}, {thi:.3f}], "
                                 f"not used), widths {sorted(int(w) for w in s['width'].unique())}") if p)
    return _record(cid, statement, statistic, thr, value, verdict, note, lo, hi,
                   _interval_text(s["seed"].unique()), s["seed"].nunique())


def claim_c3(summary: pd.DataFrame, metric: str = "forward_ratio",
             min_spearman: float = C3_MIN_SPEARMAN) -> Claim:
    """C3: at fixed width, the empirical eps grows with depth.

    Per width: Spearman(depth, seed-mean eps_measured) and the log-log slope, both
    bootstrapped over seeds (theory: per-layer log-variance adds up, eps ~ sqrt(L)). Holds if
    lo(Spearman) >= 0.8 and lo(slope) > 0; fails if hi(slope) < 0 or hi(Spearman) < 0.8;
    inconclusive otherwise or with fewer than 3 depths; widths combined by intersection-union.
    """
    s = select(summary, sweep="depth", init="he", inputs="gaussian", metric=metric)
    cid = f"C3-{short_name(metric)}"
    statement = (f"He init: at fixed width the deviation of the {metric.replace('_', ' ')} from 1 "
                 "grows with depth")
    thr = f"Spearman >= {min_spearman} and log-log slope > 0"
    statistic = "Spearman(depth, seed-mean eps_measured), worst over widths"

    def curve(f):
        return f.groupby("depth")["eps_measured"].mean().sort_index()

    def rho(f):
        c = curve(f)
        return stats.spearman(c.index, c.to_numpy())[0]

    def slope(f):
        c = curve(f)
        return stats.loglog_slope(c.index, c.to_numpy())[0]

    verdicts, notes, parts = [], [], []
    for width, g in s.groupby("width"):
        if g["depth"].nunique() < 3 or not np.all(np.isfinite(g["eps_measured"])):
            verdicts.append("inconclusive")
            notes.append(f"m={int(width)}: fewer than 3 depths")
            continue
        r, rlo, rhi = stats.seed_bootstrap(g, rho)
        b, blo, bhi = stats.seed_bootstrap(g, slope)
        few = _too_few(g["seed"])
        if few or not all(math.isfinite(v) for v in (rlo, rhi, blo, bhi)):
            verdict = "inconclusive"
        elif rlo >= min_spearman and blo > 0:
            verdict = "holds"
        elif bhi < 0 or rhi < min_spearman:
            verdict = "fails"
        else:
            verdict = "inconclusive"
        verdicts.append(verdict)
        parts.append((r, rlo, rhi, g["seed"].unique()))
        c = curve(g)
        notes.append(f"m={int(width)} ({verdict}{', ' + few if few else ''}): Spearman {r:.3f} "
                     f"[{rlo:.3f}, {rhi:.3f}], log-log slope {b:.3f} [{blo:.3f}, {bhi:.3f}], "
                     "seed-mean eps " + ", ".join(f"L={int(d)}:{e:.3g}" for d, e in c.items()))
    if not verdicts:
        return _record(cid, statement, statistic, thr, None, "inconclusive", "no depth sweep")
    if not parts:
        return _record(cid, statement, statistic, thr, None, "inconclusive", "; ".join(notes))
    r, rlo, rhi, seeds = min(parts, key=lambda p: p[1] if math.isfinite(p[1]) else -math.inf)
    return _record(cid, statement, statistic, thr, r, stats.all_of(verdicts), "; ".join(notes),
                   rlo, rhi, _interval_text(seeds), len(seeds))


GLOROT_CONFIG = ["sweep", "inputs", "width", "depth", "n_samples", "input_dim"]


def c4_parts(per_layer: pd.DataFrame, rel_tol: float = C4_REL_TOL,
             max_noise: float = C4_MAX_NOISE) -> pd.DataFrame:
    """One row per Glorot configuration (seeds pooled): seed-mean relative error of the slope,
    its seed-bootstrap interval, the theoretical seed-mean noise, whether the configuration
    enters C4 (noise <= `max_noise`) and its verdict."""
    sl = glorot_slope(per_layer)
    rows = []
    for key, g in sl.groupby(GLOROT_CONFIG, sort=False, dropna=False):
        g = g.assign(signed=g["slope"] / GLOROT_SLOPE - 1.0)
        n = g["seed"].nunique()
        noise = float(g["rel_se_theory"].iloc[0]) / math.sqrt(n)
        if np.all(np.isfinite(g["signed"])):
            value, lo, hi = stats.seed_bootstrap(g, lambda f: float(f["signed"].mean()))
        else:
            value = lo = hi = math.nan
        included = noise <= max_noise
        few = _too_few(g["seed"])
        verdict = ("inconclusive" if few or not included
                   else stats.interval_verdict(lo, hi, "in", (-rel_tol, rel_tol)))
        rows.append(dict(zip(GLOROT_CONFIG, key), n_seeds=n, seeds=sorted(int(s) for s in g["seed"]),
                         rel_err=value, ci_low=lo, ci_high=hi, noise=noise, included=included,
                         few=few, verdict=verdict))
    return pd.DataFrame(rows)


def claim_c4(per_layer: pd.DataFrame, rel_tol: float = C4_REL_TOL,
             max_noise: float = C4_MAX_NOISE) -> Claim:
    """C4: Glorot (N(0, 1/m), authors' code) shrinks the forward norm geometrically.

    Each ReLU layer with variance 1/m halves the expected squared norm, so
    ratio_l ~ 2^{-l/2}: log ratio is linear in l with slope s0 = -(1/2) log 2 = -0.3466.
    Per configuration and seed the slope of log(mean ratio) against layer; statistic the
    seed-mean relative error slope/s0 - 1, tested `in [-0.1, 0.1]` on its seed-bootstrap
    interval. Noise-aware inclusion (fixed from theory before any run): a configuration
    enters only if its theoretical seed-mean noise se_theory/(|s0| sqrt(n)) <= 0.05, half the
    tolerance; the others are listed as too noisy. Intersection-union over those included.
    """
    cid = "C4-forward"
    statement = ("Glorot init (N(0,1/m)): the forward ratio decays geometrically with depth, "
                 "ratio_l ~ 2^(-l/2)")
    thr = (f"slope/s0 - 1 in [-{rel_tol:g}, {rel_tol:g}] for every Glorot configuration whose "
           f"seed-mean noise <= {max_noise:g}; s0 = -0.5 log 2")
    statistic = ("seed-mean relative error of the slope of log mean ratio vs layer, the "
                 "included configuration farthest from 0")
    parts = c4_parts(per_layer, rel_tol, max_noise)
    if parts.empty or not np.all(np.isfinite(parts["rel_err"])):
        return _record(cid, statement, statistic, thr, None, "inconclusive",
                       "no Glorot configuration with finite ratios")

    def name(r):
        return f"{r.sweep}/{r.inputs} m={int(r.width)} L={int(r.depth)}"

    inc, exc = parts[parts["included"]], parts[~parts["included"]]
    listed = "; ".join(f"{name(r)} ({r.verdict}{', ' + r.few if r.few else ''}): {r.rel_err:+.1%} "
                       f"[{r.ci_low:+.1%}, {r.ci_high:+.1%}], noise {r.noise:.1%}, seeds {r.seeds}"
                       for r in inc.itertuples())
    excluded = "; ".join(f"{name(r)}: {r.rel_err:+.1%}, noise {r.noise:.1%} with {r.n_seeds} seeds"
                         for r in exc.itertuples())
    note = (f"included: {listed or 'none'}" + (f". Too noisy to resolve 10% at this width/depth "
                                              f"(not tested): {excluded}" if excluded else ""))
    if inc.empty:
        return _record(cid, statement, statistic, thr, None, "inconclusive", note)
    worst = inc.loc[inc[["ci_low", "ci_high"]].abs().max(axis=1).idxmax()] \
        if np.all(np.isfinite(inc[["ci_low", "ci_high"]])) else inc.iloc[0]
    return _record(cid, statement, statistic, thr, worst["rel_err"], stats.all_of(inc["verdict"]),
                   note, worst["ci_low"], worst["ci_high"], _interval_text(worst["seeds"]),
                   worst["n_seeds"])


def evaluate_claims(per_layer: pd.DataFrame) -> list[Claim]:
    """All paper-C claims on the concatenated per-layer table of :func:`repro.heinit.measure.run_all`."""
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


def write_claims(per_layer_path, csv_path) -> pd.DataFrame:
    """Evaluate every paper-C claim on the per-layer table; write results/claims/heinit.csv."""
    frame = to_frame(evaluate_claims(read_per_layer(per_layer_path)))
    atomic_write_text(csv_path, frame.to_csv(index=False))
    return frame
