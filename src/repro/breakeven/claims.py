"""Paper D's claims D1-D3 (Conjectures 1 and 2, early peaks) from the maxima and run tables,
by the pre-registered rules of docs/CLAIMS.md section 6 (thresholds unchanged, every verdict
read from an interval over seeds, :mod:`repro.stats`):

* D1, D2 — **one claim per sweep** (:func:`repro.breakeven.tables.find_sweeps`): η sweeps of
  a net without BatchNorm get the suffix ``-cnn``, of a BN net ``-bn``; S sweeps keep D1c,
  D1d, D2c, D2d. Statistic: per seed, the fraction of the sweep's value pairs ordered as the
  conjecture says (runs of one seed share their initial network, so the comparison is
  paired); the seed mean, with its percentile bootstrap interval over seeds; holds if the
  interval is >= 0.8, fails if below. Conjecture 2's conditioning is tested with the
  submission's proxy Tr(K)/λ₁ᴷ (D2a, D2c); λ*ᴷ/λ₁ᴷ, a sampling floor for 25 gradients, has
  no claim. Several sweeps with one id (the paper scale) get "[experiment S=…]" groups.
* D3 — per seed, the fraction of its valid runs whose peak comes by global step
  max(2 t, t + one epoch of steps), t the step of the first snapshot reaching the threshold
  accuracy; the seed mean and its interval, >= 0.8.

Runs that diverged or never reached the threshold accuracy are left out (named in the
note); a seed left with no comparable pair is dropped with a note; fewer than
:data:`repro.stats.MIN_SEEDS` seeds make a claim inconclusive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import stats
from ..claims import Claim, registered_scales, to_frame
from ..io import atomic_write_text
from ..papers import get as get_paper
from .tables import find_sweeps, sweep_runs

PAPER = get_paper("breakeven").id

# ---- thresholds fixed a priori (docs/CLAIMS.md section 6) -----------------------------------
# D1/D2: the seed mean of the per-seed fraction of ordered value pairs; 0.8 = Kendall's tau
# >= 0.6. With 3 values a seed is 1 (ordered) or <= 2/3, so the claim holds iff every seed is
# fully ordered (its interval is then [1, 1]).
MIN_ORDERED_FRACTION = 0.8
# D3: a peak is "early" when it comes by max(2 t, t + 1 epoch) in steps, for >= 80% of runs.
MIN_EARLY_FRACTION = 0.8

# (id, statement, sweep kind, metric of the maxima table, direction: +1 rises, -1 falls)
MONOTONE_SPEC = [
    ("D1a", "Conjecture 1: the maximum of λ₁ᴷ along the trajectory falls as η rises", "lr", "max_lambda1_K", -1),
    ("D1b", "Conjecture 1: the maximum of λ₁ᴴ along the trajectory falls as η rises", "lr", "max_lambda1_H", -1),
    ("D1c", "Conjecture 1: the maximum of λ₁ᴷ along the trajectory rises as S rises", "batch_size",
     "max_lambda1_K", +1),
    ("D1d", "Conjecture 1: the maximum of λ₁ᴴ along the trajectory rises as S rises", "batch_size",
     "max_lambda1_H", +1),
    ("D2a", "Conjecture 2 (submission's proxy): the maximum of Tr(K)/λ₁ᴷ rises as η rises", "lr",
     "max_trace_over_lambda1", +1),
    ("D2b", "Conjecture 2: the maximum of Tr(K) falls as η rises", "lr", "max_trace_K", -1),
    ("D2c", "Conjecture 2 (submission's proxy): the maximum of Tr(K)/λ₁ᴷ falls as S rises", "batch_size",
     "max_trace_over_lambda1", -1),
    ("D2d", "Conjecture 2: the maximum of Tr(K) rises as S rises", "batch_size", "max_trace_K", +1),
]


def _interval_text(seeds) -> str:
    return f"95% percentile bootstrap over seeds {sorted(int(s) for s in seeds)}, B={stats.BOOTSTRAP_B}"


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _record(cid, statement, statistic, threshold, value, verdict, note, lo=None, hi=None, seeds=()) -> Claim:
    seeds = list(seeds)
    return Claim(id=cid, paper=PAPER, statement=statement, statistic=statistic, threshold=threshold,
                 value=_num(value) if value is not None else None, verdict=verdict, note=note,
                 ci_low=None if lo is None else _num(lo), ci_high=None if hi is None else _num(hi),
                 interval=_interval_text(seeds) if seeds else "", n_seeds=len(seeds) or None,
                 scale="/".join(registered_scales(cid)))


def _seed_mean_claim(cid, statement, statistic, minimum: float, per_seed: pd.DataFrame, parts: list[str]) -> Claim:
    """The claim "seed mean of ``fraction`` >= minimum" from one row per seed (``seed``,
    ``fraction``): value, percentile bootstrap over seeds, three-way verdict."""
    threshold = f">= {minimum}"
    seeds = per_seed["seed"].tolist()
    note = "; ".join(p for p in parts if p)
    if per_seed.empty:
        return _record(cid, statement, statistic, threshold, None, "inconclusive",
                       "; ".join(p for p in ["no seed with a comparable pair of valid runs", note] if p))
    value, lo, hi = stats.seed_bootstrap(per_seed, lambda f: float(f["fraction"].mean()))
    if len(seeds) < stats.MIN_SEEDS:
        verdict = "inconclusive"
        note = f"only {len(seeds)} seed(s); the protocol needs >= {stats.MIN_SEEDS}; " + note
    else:
        verdict = stats.interval_verdict(lo, hi, ">=", minimum)
    return _record(cid, statement, statistic, threshold, value, verdict, note, lo, hi, seeds)


def peaks_at_start(rows: pd.DataFrame) -> np.ndarray:
    """Per run: its maximum is the step-0 value (the network every run of a seed starts from)."""
    col = "step_of_max" if "step_of_max" in rows else "epoch_of_max" if "epoch_of_max" in rows else None
    return np.zeros(len(rows), bool) if col is None else (rows[col].to_numpy(float) == 0)


def ordered_fraction_per_seed(rows: pd.DataFrame, kind: str, direction: int) -> tuple[pd.DataFrame, list[str]]:
    """Per seed, the fraction of value pairs (runs of that seed differing in `kind`) ordered
    as `direction` says: a frame (seed, good, total, fraction) and notes on dropped seeds.
    A pair whose runs both peak at step 0 is not compared (docs/CLAIMS.md D1, revision 2)."""
    out, notes = [], []
    for seed, g in rows.groupby("seed", sort=True):
        at_start = peaks_at_start(g)
        good, total, bad = stats.ordered_pairs(g[kind].to_numpy(float), g["value"].to_numpy(float), direction,
                                               skip=at_start)
        n_start = int(at_start.sum())
        if n_start >= 2:
            notes.append(f"seed {seed}: {n_start * (n_start - 1) // 2} pair(s) not compared "
                         "(both maxima at the shared step-0 network)")
        if total == 0:
            notes.append(f"seed {seed} dropped: " + ("no pair left to compare" if n_start >= 2
                                                     else "fewer than 2 valid runs"))
            continue
        out.append(dict(seed=int(seed), good=good, total=total, fraction=good / total))
        if bad:
            notes.append(f"seed {seed}: " + ", ".join(f"{a:g}: {ma:.4g} vs {b:g}: {mb:.4g}" for a, ma, b, mb in bad))
    return pd.DataFrame(out, columns=["seed", "good", "total", "fraction"]), notes


def _slopes(rows: pd.DataFrame, kind: str) -> str:
    """Per seed, the log-log slope of the maximum vs the swept value (reported, no verdict)."""
    out = []
    for seed, g in rows.groupby("seed", sort=True):
        x, y = g[kind].to_numpy(float), g["value"].to_numpy(float)
        if np.unique(x).size < 2 or not (y > 0).all():
            continue
        slope = stats.loglog_slope(x, y)[0]
        if math.isfinite(slope):
            out.append(f"{seed}: {slope:.3g}")
    return "per-seed log-log slope " + ", ".join(out) if out else ""


def sweep_claim_id(base: str, sweep: dict, rows: pd.DataFrame) -> str:
    """D1a-cnn / D1a-bn for η sweeps (BN or not), the base id for S sweeps."""
    if sweep["kind"] != "lr":
        return base
    bn = bool(rows["batch_norm"].any()) if "batch_norm" in rows else False
    return f"{base}-{'bn' if bn else 'cnn'}"


def monotone_claim(cid, statement, rows_all: pd.DataFrame, sweep: dict, metric: str, direction: int) -> Claim:
    """One D1/D2 claim on one sweep (see the module docstring)."""
    kind = sweep["kind"]
    rows = sweep_runs(rows_all[rows_all.metric == metric], sweep)
    left_out = [f"{r.run} ({r.note})" for r in rows[~rows.valid.astype(bool)].itertuples()]
    rows = rows[rows.valid.astype(bool) & np.isfinite(rows.value.to_numpy(float))]
    per_seed, notes = ordered_fraction_per_seed(rows, kind, direction)
    means = rows.groupby(kind).value.mean()
    at_init = int(peaks_at_start(rows).sum())
    at_end = rows.run[rows.peak_at_end.astype(bool)].tolist() if "peak_at_end" in rows else []
    parts = [f"{sweep['name']} [{sweep['experiment']}]: per-seed ordered fractions "
             + ", ".join(f"{r.seed}: {r.good}/{r.total}" for r in per_seed.itertuples()),
             "seed means " + ", ".join(f"{v:g}: {m:.4g}" for v, m in means.items()),
             _slopes(rows, kind), *notes]
    if at_init:
        parts.append(f"{at_init} run(s) peak at initialisation (the same network for every value of a seed; "
                     "two such runs are not compared)")
    if at_end:
        parts.append(f"maximum at the last snapshot (a lower bound) in {', '.join(at_end)}")
    if left_out:
        parts.append("left out: " + "; ".join(left_out))
    arrow = "falls" if direction < 0 else "rises"
    statistic = (f"seed mean of the per-seed fraction of {'η' if kind == 'lr' else 'S'} pairs where the max "
                 f"{arrow}")
    return _seed_mean_claim(cid, statement, statistic, MIN_ORDERED_FRACTION, per_seed, parts)


def early_claim(cid, statement, maxima: pd.DataFrame, metric: str) -> Claim:
    """D3: per seed, the fraction of valid runs whose peak step <= max(2 t, t + steps per epoch)."""
    rows = maxima[(maxima.metric == metric) & maxima.valid.astype(bool)]
    n_invalid = int((~maxima[maxima.metric == metric].valid.astype(bool)).sum())
    late, per_seed = [], []
    for seed, g in rows.groupby("seed", sort=True):
        early = 0
        for r in g.itertuples():
            limit = max(2 * r.threshold_step, r.threshold_step + r.steps_per_epoch)
            if r.step_of_max <= limit:
                early += 1
            else:
                late.append(f"{r.experiment}/{r.run}: peak at step {r.step_of_max:g}, threshold step "
                            f"{r.threshold_step:g}, limit {limit:g}")
        per_seed.append(dict(seed=int(seed), early=early, total=len(g), fraction=early / len(g)))
    per_seed = pd.DataFrame(per_seed, columns=["seed", "early", "total", "fraction"])
    parts = ["per seed early/valid runs " + ", ".join(f"{r.seed}: {r.early}/{r.total}" for r in per_seed.itertuples())]
    if late:
        parts.append("late: " + "; ".join(late))
    if n_invalid:
        parts.append(f"{n_invalid} run(s) left out (diverged or never reached the threshold accuracy)")
    return _seed_mean_claim(cid, statement, "seed mean of the per-seed fraction of runs whose peak step <= "
                            "max(2 t, t + 1 epoch), t = threshold step", MIN_EARLY_FRACTION, per_seed, parts)


def breakeven_claims(maxima: pd.DataFrame, runs: pd.DataFrame) -> list[Claim]:
    """Claims D1-D3 for every sweep the runs form (one claim per sweep) and the early peaks."""
    sweeps = find_sweeps(runs)
    claims = []
    for base, statement, kind, metric, direction in MONOTONE_SPEC:
        found = []
        for sw in (s for s in sweeps if s["kind"] == kind):
            cid = sweep_claim_id(base, sw, sweep_runs(runs, sw))
            found.append((cid, sw))
        ids = [cid for cid, _ in found]
        for cid, sw in found:
            if ids.count(cid) > 1:       # several sweeps of one kind and model family: one claim each
                fixed = f"S={sw['fixed']:g}" if kind == "lr" else f"η={sw['fixed']:g}"
                cid = f"{cid}[{sw['experiment']} {fixed}]"
            claims.append(monotone_claim(cid, statement, maxima, sw, metric, direction))
    claims.append(early_claim("D3a", "λ₁ᴷ peaks early: by the step reaching the threshold accuracy (or soon after)",
                              maxima, "max_lambda1_K"))
    claims.append(early_claim("D3b", "λ₁ᴴ peaks early: by the step reaching the threshold accuracy (or soon after)",
                              maxima, "max_lambda1_H"))
    return claims


def write_claims(maxima_path, runs_path, out_path) -> pd.DataFrame:
    maxima, runs = pd.read_csv(maxima_path), pd.read_csv(runs_path)
    frame = to_frame(breakeven_claims(maxima, runs))
    atomic_write_text(out_path, frame.to_csv(index=False))
    return frame
