"""Paper B's claims B1-B7 as :class:`repro.claims.Claim` records, from the tables, by the
pre-registered rules of docs/CLAIMS.md section 4 (thresholds unchanged, every verdict read
from an interval, :mod:`repro.stats`; the seed is the unit of resampling, so comparisons
inside a seed stay paired).

What is measured (the numbers in every table mean exactly this):

* **Matched train loss.** Every sharpness run stops at the first check whose *full* train
  loss is <= ``train.stop_at_train_loss`` and is measured there; a run that hits its epoch
  cap first is "not matched": listed, left out of B1-B3, with a note.
* ``lambda_max`` (Lanczos) and ``hessian_trace`` (Hutchinson) of the mean cross-entropy on
  a fixed class-balanced training subset (``repro.curvature``); ``test_loss`` and
  ``test_acc`` on the full test split at the matched point.
* Diverged runs are never numbers: NaN with the reason in ``note``.

Claims (docs/CLAIMS.md 4):

* B1a / B1b / B2: Spearman rho(eta/S, lambda_max / Tr H / test loss) over the matched runs
  of all seeds < -0.5; 95 % bootstrap over seeds (rho recomputed on the pooled runs of the
  resampled seeds). Test accuracy is reported beside B2, not judged (quantised by 1/n_test).
* B3a / B3b: mean |diff log lambda_max| (|diff test loss|) over equal-eta/S pairs / over
  pairs one grid step apart (pairs within a seed) < 1; 95 % bootstrap over seeds.
* B4a: per seed, final test accuracy(cyclic BS) - (cyclic LR); equivalence, 90 % interval
  inside (-1, +1) points. B4b: per seed, min(cycles) - max(constants, incl. the matched
  ``const_mean``) > 0; 95 % interval.
* B5 (medium): seed-pooled Spearman rho(eta/S, clean test accuracy at equal memorization)
  > 0.5; >= 3 runs per seed reaching the target.
* B6 (medium): log2(breaking beta at the largest train size / at the smallest) > 0, the
  breaking beta recomputed from the resampled seed means (censored: counted at the largest
  beta tried).
* B7a / B7b: directional curvature kappa at each end of an interpolation line by symmetric
  second differences (:func:`second_difference`; defined at non-minima). B7a: per pair
  label and seed log(kappa at the low-eta/S end / kappa at the high one) > 0, intersection-
  union over labels. B7b: equal-eta/S labels, log(kappa_a / kappa_b) equivalent to 0 within
  log 2 (90 % interval), intersection-union.

Too few seeds (< 3 per cell) or missing data make a claim inconclusive, with the reason.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd

from .. import stats
from ..claims import Claim, registered_scales, to_frame
from ..io import atomic_write_text
from ..runs import same_ratio, same_value, within_half_grid_step
from ..stats import larger_has_lower, pair_closeness, partial_spearman, spearman
from .plan import PAPER
from .tables import breaking_summary, fmt, memo_wide, runs_wide, size_key

PAPER_ID = PAPER.id

# A priori thresholds and margins (docs/CLAIMS.md section 4).
RHO_THRESHOLD = -0.5          # B1a, B1b, B2 (B2 on test loss: lower is better)
MEMO_RHO_THRESHOLD = 0.5      # B5
B4A_MARGIN = 0.01             # one accuracy point
B7B_MARGIN = math.log(2.0)    # half a x4 grid step in log curvature
MIN_RUNS_PER_SEED_B5 = 3


def ratio_pairs(wide: pd.DataFrame) -> tuple[list, list, float]:
    """Pairs of runs (same seed) with equal eta/S (different eta), and pairs one grid step apart.

    A one-step pair shares eta or S and its eta/S factor equals the grid step: the smallest
    factor > 1 among all pairs that share eta or S. Returns (equal, step, step factor)."""
    equal, shared = [], []
    for _, g in wide.groupby("seed"):
        recs = g.to_dict("records")
        for p, q in itertools.combinations(recs, 2):
            if same_ratio(p["lr_over_batch"], q["lr_over_batch"]):
                if not same_value(p["lr"], q["lr"]):
                    equal.append((p, q))
            elif same_value(p["lr"], q["lr"]) or p["batch_size"] == q["batch_size"]:
                f = max(p["lr_over_batch"], q["lr_over_batch"]) / min(p["lr_over_batch"], q["lr_over_batch"])
                shared.append((p, q, f))
    if not shared:
        return equal, [], math.nan
    step = min(f for *_, f in shared)
    return equal, [(p, q) for p, q, f in shared if same_value(f, step)], step



# ------------------------------------------------------------------ helpers


def _interval_text(seeds, level: float = 0.95) -> str:
    return (f"{100 * level:.0f}% percentile bootstrap over seeds {sorted(int(s) for s in seeds)}, "
            f"B={stats.BOOTSTRAP_B}")


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _record(cid: str, statement: str, statistic: str, threshold: str, value, verdict: str, note: str = "",
            lo=None, hi=None, interval: str = "", n_seeds=None) -> Claim:
    value = _num(value) if isinstance(value, (int, float, np.floating)) or value is None else value
    return Claim(id=cid, paper=PAPER_ID, statement=statement, statistic=statistic, threshold=threshold,
                 value=value, verdict=verdict, note=note,
                 ci_low=_num(lo) if lo is not None else None, ci_high=_num(hi) if hi is not None else None,
                 interval=interval, n_seeds=None if n_seeds is None else int(n_seeds),
                 scale="/".join(registered_scales(cid)))


def _too_few_seeds(frame: pd.DataFrame, cell=("lr", "batch_size")) -> str:
    """The reason a claim is inconclusive for want of seeds (< MIN_SEEDS seeds, or a cell of
    the comparison with fewer), or ""."""
    n = frame["seed"].nunique() if len(frame) else 0
    if n < stats.MIN_SEEDS:
        return f"only {n} seed(s); the protocol needs >= {stats.MIN_SEEDS}"
    per_cell = frame.groupby(list(cell))["seed"].nunique()
    thin = per_cell[per_cell < stats.MIN_SEEDS]
    if len(thin):
        cells = ", ".join("/".join(f"{v:g}" for v in (k if isinstance(k, tuple) else (k,))) for k in thin.index[:4])
        return f"{len(thin)} cell(s) with < {stats.MIN_SEEDS} usable seeds ({cells})"
    return ""


def _bootstrapped(frame: pd.DataFrame, statistic, op: str, threshold, level: float = 0.95, few: str = ""):
    """(value, lo, hi, verdict, interval text) of `statistic` on `frame`, bootstrapped over seeds."""
    value, lo, hi = stats.seed_bootstrap(frame, statistic, level=level) if len(frame) else (math.nan,) * 3
    if few:
        verdict = "inconclusive"
    elif op == "eq":
        verdict = stats.equivalence_verdict(lo, hi, threshold)
    else:
        verdict = stats.interval_verdict(lo, hi, op, threshold)
    return value, lo, hi, verdict, _interval_text(frame["seed"].unique() if len(frame) else [], level)


def _per_group(frame: pd.DataFrame, claims_of) -> list[Claim]:
    """`claims_of(rows)` within each group of comparable runs (column ``group``); the ids get a
    [group] suffix when there is more than one group."""
    groups = list(dict.fromkeys(frame.group)) if len(frame) and "group" in frame else []
    if len(groups) <= 1:
        return claims_of(frame)
    out = []
    for g in groups:
        for c in claims_of(frame[frame.group == g]):
            c.id = f"{c.id}[{g}]"
            out.append(c)
    return out


def _excluded_note(wide: pd.DataFrame) -> str:
    div = wide[wide.status != "completed"]
    unmatched = wide[(wide.status == "completed") & ~wide.matched]
    parts = []
    if len(div):
        parts.append(f"{len(div)} diverged run(s) excluded ({', '.join(div.run.head(4))}"
                     f"{'…' if len(div) > 4 else ''})")
    if len(unmatched):
        parts.append(f"{len(unmatched)} run(s) that never reached the target train loss excluded "
                     f"({', '.join(unmatched.run.head(4))}{'…' if len(unmatched) > 4 else ''})")
    return "; ".join(parts)


# ------------------------------------------------------------------ B1-B3: the eta x S grid


def sharpness_claims(wide: pd.DataFrame) -> list[Claim]:
    """Claims B1-B3, within each group of comparable runs."""
    return _per_group(wide, _group_sharpness_claims)


def _rho(metric: str):
    return lambda f: spearman(f.lr_over_batch, f[metric])[0]


def closeness_ratio(frame: pd.DataFrame, metric: str, log: bool) -> float:
    """mean |diff| over equal-eta/S pairs / mean |diff| over one-step pairs (pairs within a seed)."""
    equal, step, _ = ratio_pairs(frame)
    return pair_closeness(equal, step, metric, log)[2]


def _group_sharpness_claims(wide: pd.DataFrame) -> list[Claim]:
    m = wide[wide.matched].copy() if len(wide) else wide
    excluded = _excluded_note(wide) if len(wide) else ""
    few = _too_few_seeds(m) if len(m) else "no matched runs"
    if not few and (len(m) < 4 or m.lr_over_batch.nunique() < 3):
        few = f"needs >= 4 matched runs over >= 3 eta/S values, have {len(m)}"
    n_seeds = m.seed.nunique() if len(m) else 0
    loss_rho = spearman(m.lr_over_batch, m.train_loss)[0] if len(m) else math.nan
    loss_range = (f"train loss at measurement {m.train_loss.min():.3g}–{m.train_loss.max():.3g}, "
                  f"rho(eta/S, that loss) = {fmt(loss_rho, 2)}") if len(m) else ""
    claims = []

    def corr_claim(cid, metric, name, statement, extra=""):
        if metric not in m or not len(m):
            return _record(cid, statement, f"Spearman rho(eta/S, {name})", f"< {RHO_THRESHOLD}", None,
                           "inconclusive", "; ".join(p for p in (few, excluded) if p))
        n_measured = int(m[metric].notna().sum())
        missing = "" if n_measured == len(m) else f"{name} missing for {len(m) - n_measured} of {len(m)} runs"
        value, lo, hi, verdict, interval = _bootstrapped(m, _rho(metric), "<", RHO_THRESHOLD, few=few or missing)
        partial = partial_spearman(m.lr_over_batch, m[metric], m.train_loss)
        note = "; ".join(p for p in (few, missing, f"{len(m)} matched runs over {m.lr_over_batch.nunique()} eta/S values",
                                     f"{name} spans {fmt(m[metric].min())}–{fmt(m[metric].max())}", loss_range,
                                     f"partial rho given that loss = {fmt(partial, 2)}", extra, excluded) if p)
        return _record(cid, statement, f"Spearman rho(eta/S, {name}), runs of all seeds pooled",
                       f"< {RHO_THRESHOLD}", value, verdict, note, lo, hi, interval, n_seeds)

    claims.append(corr_claim("B1a", "lambda_max", "lambda_max(H)",
                             "Sharpness (top Hessian eigenvalue) at matched train loss falls as eta/S rises"))
    claims.append(corr_claim("B1b", "hessian_trace", "Tr(H)",
                             "Sharpness (Hessian trace) at matched train loss falls as eta/S rises"))
    acc_note = ""
    if len(m) and "test_acc" in m:
        acc_rho = spearman(m.lr_over_batch, m.test_acc)[0]
        acc_note = (f"test accuracy (reported, not judged: quantised by 1/n_test) spans "
                    f"{100 * m.test_acc.min():.2f}–{100 * m.test_acc.max():.2f}%, rho(eta/S, accuracy) = "
                    f"{fmt(acc_rho, 2)}")
    claims.append(corr_claim("B2", "test_loss", "test loss",
                             "Generalisation improves with eta/S: the test loss at matched train loss falls",
                             acc_note))

    equal, step, factor = ratio_pairs(m) if len(m) else ([], [], math.nan)
    for cid, metric, name, log in (("B3a", "lambda_max", "log lambda_max", True),
                                   ("B3b", "test_loss", "test loss", False)):
        statement = (f"Runs with equal eta/S are closer in {'lambda_max' if log else name} than runs whose eta/S "
                     "differs by one grid step")
        statistic = f"mean |diff {name}| equal-eta/S pairs / one-step pairs, within a seed"
        if not (equal and step) or metric not in m:
            claims.append(_record(cid, statement, statistic, "< 1", None, "inconclusive",
                                  "needs equal-eta/S pairs and one-step pairs among matched runs"
                                  + (f"; {few}" if few else "")))
            continue
        value, lo, hi, verdict, interval = _bootstrapped(m, lambda f, me=metric, lg=log: closeness_ratio(f, me, lg),
                                                         "<", 1.0, few=few)
        me, ms, _ = pair_closeness(equal, step, metric, log)
        note = (f"mean |diff| {fmt(me)} over {len(equal)} equal-eta/S pairs vs {fmt(ms)} over {len(step)} pairs "
                f"one grid step (eta/S x{fmt(factor)}) apart")
        lower, counted = larger_has_lower(equal, "lr", metric)
        if counted:
            note += f"; within equal-eta/S pairs the run with the larger eta has the lower value in {lower} of {counted}"
        note = "; ".join(p for p in (few, note, excluded) if p)
        claims.append(_record(cid, statement, statistic, "< 1", value, verdict, note, lo, hi, interval, n_seeds))
    return claims


# ------------------------------------------------------------------ B4: schedules


def schedule_per_seed(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, seed): final test accuracy of cyclic BS, cyclic LR, the best
    and worst cycle and the best constant (NaN where a run is missing or diverged), and the
    worst cycle's and best constant's names."""
    acc = finals[finals.metric == "test_acc"]
    rows = []
    for (exp, seed), g in acc.groupby(["experiment", "seed"], sort=False):
        by_kind = {k: v.value.astype(float) for k, v in g.groupby("kind")}
        cbs, clr = by_kind.get("cyclic BS", pd.Series(dtype=float)), by_kind.get("cyclic LR", pd.Series(dtype=float))
        const = by_kind.get("constant", pd.Series(dtype=float))
        one = lambda s: float(s.iloc[0]) if len(s) == 1 else math.nan
        a, b = one(cbs), one(clr)
        best_const = float(const.max()) if len(const) and const.notna().all() else math.nan
        rows.append(dict(experiment=exp, seed=seed, cbs=a, clr=b, cycle_min=min(a, b), const_max=best_const,
                         n_const=len(const)))
    return pd.DataFrame(rows, columns=["experiment", "seed", "cbs", "clr", "cycle_min", "const_max", "n_const"])


def _mean_of(column: str):
    return lambda f: float(np.mean(f[column].to_numpy(float))) if len(f) else math.nan


def schedule_claims(finals: pd.DataFrame) -> list[Claim]:
    per_seed = schedule_per_seed(finals)
    experiments = list(dict.fromkeys(per_seed.experiment)) or [None]
    loss = finals[finals.metric == "train_loss"].groupby(["experiment", "schedule"]).value.mean()
    claims = []
    for exp in experiments:
        g = per_seed[per_seed.experiment == exp] if exp else per_seed
        suffix = f"[{exp}]" if len(experiments) > 1 else ""
        losses = "; ".join(f"{s} {fmt(v)}" for (e, s), v in loss.items() if e == exp)
        loss_note = f"final train loss per schedule: {losses}" if losses else ""
        # B4a: interchangeable (equivalence, 1 point)
        d = g.assign(diff=g.cbs - g.clr).dropna(subset=["diff"])
        statement = "Cyclic batch size and cyclic learning rate are interchangeable (final test accuracy)"
        statistic = "seed mean of test accuracy(CBS) - (CLR), paired by seed"
        threshold = f"90% interval inside (-{B4A_MARGIN:g}, +{B4A_MARGIN:g})"
        few = "" if d.seed.nunique() >= stats.MIN_SEEDS else \
            f"{d.seed.nunique()} seed(s) with both cycles; the protocol needs >= {stats.MIN_SEEDS} (5 stated)"
        if len(d):
            value, lo, hi, verdict, interval = _bootstrapped(d, _mean_of("diff"), "eq", B4A_MARGIN, 0.90, few)
            note = "; ".join(p for p in (few, "per seed (points): " + ", ".join(
                f"{int(r.seed)}: {100 * r.diff:+.2f}" for r in d.itertuples()), loss_note) if p)
            claims.append(_record(f"B4a{suffix}", statement, statistic, threshold, value, verdict, note, lo, hi,
                                  interval, d.seed.nunique()))
        else:
            claims.append(_record(f"B4a{suffix}", statement, statistic, threshold, None, "inconclusive",
                                  "needs one cyclic-BS and one cyclic-LR schedule with finished seeds"))
        # B4b: cycles beat every constant
        d = g.assign(margin=g.cycle_min - g.const_max).dropna(subset=["margin"])
        statement = "Both cyclic schedules beat every constant schedule, incl. the matched const_mean"
        statistic = "seed mean of min(CBS, CLR) - max(constants) final test accuracy, paired by seed"
        few = "" if d.seed.nunique() >= stats.MIN_SEEDS else \
            f"{d.seed.nunique()} seed(s) with every schedule finished; the protocol needs >= {stats.MIN_SEEDS}"
        if len(d):
            value, lo, hi, verdict, interval = _bootstrapped(d, _mean_of("margin"), ">", 0.0, few=few)
            note = "; ".join(p for p in (few, f"{int(d.n_const.iloc[0])} constant schedule(s); per seed (points): "
                                         + ", ".join(f"{int(r.seed)}: {100 * r.margin:+.2f}" for r in d.itertuples()),
                                         loss_note) if p)
            claims.append(_record(f"B4b{suffix}", statement, statistic, "> 0", value, verdict, note, lo, hi,
                                  interval, d.seed.nunique()))
        else:
            claims.append(_record(f"B4b{suffix}", statement, statistic, "> 0", None, "inconclusive",
                                  "needs cyclic-BS, cyclic-LR and constant schedules with finished seeds"))
    return claims


# ------------------------------------------------------------------ B7: curvature at the ends of a line


def second_difference(loss_minus: float, loss_0: float, loss_plus: float, d: float) -> float:
    """[L(x - d) - 2 L(x) + L(x + d)] / d^2: the curvature of L along the line at x.

    For L(x + t) = c + g t + k t^2 / 2 + O(t^3) this is k + O(d): the gradient term g
    cancels, so it is defined whether or not x is a minimum (the ends of matched-loss runs
    are not). NaN when any value is missing."""
    value = (loss_minus - 2.0 * loss_0 + loss_plus) / (d * d)
    return value if math.isfinite(value) else math.nan


def end_curvatures(curve: pd.DataFrame, d: float, split: str = "train") -> dict:
    """Directional curvature of the `split` loss at each end of one pair's line (claims B7):
    kappa_a at alpha = 0 from (-d, 0, d), kappa_b at alpha = 1 from (1-d, 1, 1+d), in units
    of 1/||theta_b - theta_a||^2 (shared by both ends, so their ratio is a sharpness ratio);
    also the side rises L(-d) - L(0), L(1+d) - L(1) for the table. `curve`: rows alpha,
    split, metric, value of one pair. Missing points give NaN."""
    loss = curve[(curve.split == split) & (curve.metric == "loss")]

    def at(alpha):
        v = loss[np.isclose(loss.alpha.astype(float), alpha, rtol=0, atol=1e-9)].value
        return float(v.iloc[0]) if len(v) else math.nan

    l0, l1 = at(0.0), at(1.0)
    return dict(loss_a=l0, loss_b=l1, kappa_a=second_difference(at(-d), l0, at(d), d),
                kappa_b=second_difference(at(1 - d), l1, at(1 + d), d), rise_a=at(-d) - l0, rise_b=at(1 + d) - l1)


SIDE_COLUMNS = ["group", "pair", "label", "seed", "a_run", "b_run", "a_lr_over_batch", "b_lr_over_batch", "equal_ratio",
                "loss_a", "loss_b", "rise_a", "rise_b", "kappa_a", "kappa_b", "log_ratio", "note"]


def _seed_of(first) -> float:
    seed = first.get("a_seed", math.nan)
    if seed is None or (isinstance(seed, float) and math.isnan(seed)):
        found = re.search(r"_s(\d+)$", str(first.a_run))
        return float(found.group(1)) if found else math.nan
    return float(seed)


def side_table(table: pd.DataFrame, offset: float) -> pd.DataFrame:
    """One row per pair: label (the comparison a pair repeats over seeds; default the pair name
    without its _s<seed>), seed, the ends' eta/S, their curvatures and

    * ``equal_ratio``: the ends count as equal eta/S (:func:`repro.runs.within_half_grid_step`);
    * ``log_ratio``: log(kappa at the low-eta/S end / kappa at the high-eta/S end) for
      differing pairs, log(kappa_a / kappa_b) for equal pairs; NaN unless both kappa > 0 (the
      loss is then not convex along the line at that end: no sharpness to compare)."""
    if table.empty:
        return pd.DataFrame(columns=SIDE_COLUMNS)
    rows = []
    for pair, g in table.groupby("pair", sort=False):
        first = g.iloc[0]
        ra, rb = float(first.a_lr_over_batch), float(first.b_lr_over_batch)
        equal = within_half_grid_step(ra, rb)
        r = end_curvatures(g, offset)
        note = "; ".join(sorted({n for n in g.note.fillna("") if n}))
        num, den = (r["kappa_a"], r["kappa_b"]) if equal or ra < rb else (r["kappa_b"], r["kappa_a"])
        ok = math.isfinite(num) and math.isfinite(den) and num > 0 and den > 0
        if not ok and not note:
            note = ("missing loss at a point of the second difference" if not (math.isfinite(num) and math.isfinite(den))
                    else "curvature <= 0 at an end: the loss is not convex along the line there")
        label = first.get("label", None)
        label = re.sub(r"_s\d+$", "", str(pair)) if label is None or pd.isna(label) or label == "" else str(label)
        group = first.get("group", "")
        rows.append(dict(group="" if pd.isna(group) else str(group), pair=pair, label=label, seed=_seed_of(first),
                         a_run=f"{first.a_experiment}/{first.a_run}", b_run=f"{first.b_experiment}/{first.b_run}",
                         a_lr_over_batch=ra, b_lr_over_batch=rb, equal_ratio=equal, **r,
                         log_ratio=math.log(num / den) if ok else math.nan, note=note))
    return pd.DataFrame(rows, columns=SIDE_COLUMNS)


def interpolation_claims(table: pd.DataFrame, offset: float) -> list[Claim]:
    """B7a and B7b from the interpolation table, compared within each group."""
    return _per_group(side_table(table, offset), lambda sides: _group_interpolation_claims(sides, offset))


def _label_parts(sides: pd.DataFrame, op: str, threshold: float, level: float) -> list[dict]:
    """Per pair label: the seed-mean log ratio, its interval and verdict."""
    parts = []
    for label, g in sides.groupby("label", sort=False):
        few = "" if g.seed.nunique() >= stats.MIN_SEEDS else \
            f"{g.seed.nunique()} seed(s); the protocol needs >= {stats.MIN_SEEDS}"
        if g.log_ratio.isna().any():
            few = "; ".join(p for p in (few, "; ".join(f"seed {fmt(r.seed)}: {r.note}" for r in g.itertuples()
                                                       if not math.isfinite(r.log_ratio))) if p)
            value, lo, hi, verdict, interval = math.nan, math.nan, math.nan, "inconclusive", ""
        else:
            value, lo, hi, verdict, interval = _bootstrapped(g, _mean_of("log_ratio"), op, threshold, level, few)
        parts.append(dict(label=label, value=value, lo=lo, hi=hi, verdict=verdict, interval=interval,
                          n=g.seed.nunique(), why=few,
                          text=f"{label}: {fmt(value)} [{fmt(lo)}, {fmt(hi)}] {verdict} (eta/S "
                               f"{g.a_lr_over_batch.iloc[0]:.3g} vs {g.b_lr_over_batch.iloc[0]:.3g}; per seed "
                               + ", ".join(f"{fmt(r.seed)}: kappa {fmt(r.kappa_a)} / {fmt(r.kappa_b)}"
                                           for r in g.itertuples()) + (f"; {few}" if few else "") + ")"))
    return parts


def _combined(cid, statement, statistic, threshold, parts, missing: str) -> Claim:
    """Intersection-union over labels; value and interval of the binding part (the one
    nearest to failing: the lowest lower bound for B7a, the widest |bound| for B7b)."""
    if not parts:
        return _record(cid, statement, statistic, threshold, None, "inconclusive", missing)
    verdict = stats.all_of(p["verdict"] for p in parts)
    finite = [p for p in parts if math.isfinite(p["lo"])]
    key = (lambda p: p["lo"]) if cid.startswith("B7a") else (lambda p: -max(abs(p["lo"]), abs(p["hi"])))
    bind = min(finite, key=key) if finite else parts[0]
    return _record(cid, statement, statistic, threshold, bind["value"], verdict,
                   f"binding part {bind['label']}; " + " | ".join(p["text"] for p in parts),
                   bind["lo"], bind["hi"], bind["interval"], min(p["n"] for p in parts))


def _group_interpolation_claims(sides: pd.DataFrame, offset: float) -> list[Claim]:
    where = f"train loss second differences at alpha = -{offset:g}, 0, {offset:g} and {1 - offset:g}, 1, {1 + offset:g}"
    eq = sides.equal_ratio.astype(bool) if len(sides) else pd.Series(dtype=bool)
    diff, equal = sides[~eq], sides[eq]
    claims = [_combined("B7a", "Along the line between a high- and a low-eta/S model the loss curves more at the "
                        "low-eta/S end (it sits in the sharper region)",
                        f"per pair label, seed mean of log(kappa at the low-eta/S end / kappa at the high one), {where}",
                        "> 0, every pair label", _label_parts(diff, ">", 0.0, 0.95),
                        "needs an interpolation pair whose ends differ in eta/S")]
    claims.append(_combined("B7b", "Two models with equal eta/S sit in alike regions: their curvatures along the "
                            "line agree within a factor 2",
                            f"per pair label, seed mean of log(kappa_a / kappa_b), {where}",
                            f"90% interval inside (-log 2, +log 2), every pair label",
                            _label_parts(equal, "eq", B7B_MARGIN, 0.90), "needs an equal-eta/S interpolation pair"))
    return claims


# ------------------------------------------------------------------ B5, B6 (medium scale)


def memorization_claims(table: pd.DataFrame | None) -> list[Claim]:
    """B5, per (group, label noise, momentum): seed-pooled Spearman rho(eta/S, clean test
    accuracy at equal memorization) > 0.5, bootstrapped over seeds; every seed needs >= 3
    runs reaching the memorization target."""
    statement = "Higher eta/S generalizes better at equal memorization (random labels)"
    stat = "Spearman rho(eta/S, test accuracy at equal memorization), runs of all seeds pooled"
    threshold = f"> {MEMO_RHO_THRESHOLD}"
    if table is None or table.empty:
        return [_record("B5", statement, stat, threshold, None, "inconclusive",
                        "not run at this scale: no role: memorization experiment in the config "
                        "(configs/medium.yaml; the paper-scale grid is in configs/paper.yaml)")]
    wide = memo_wide(table)
    cells = list(dict.fromkeys(zip(wide.group, wide.label_noise, wide.momentum)))
    claims = []
    for group, noise, mom in cells:
        g = wide[(wide.group == group) & (wide.label_noise == noise) & (wide.momentum == mom)]
        ok = g[(g.status == "completed") & g.test_acc_at_level.notna()]
        per_seed = ok.groupby("seed").size().reindex(g.seed.unique(), fill_value=0)
        few = []
        if ok.seed.nunique() < stats.MIN_SEEDS:
            few.append(f"{ok.seed.nunique()} seed(s) with runs at the target; the protocol needs >= {stats.MIN_SEEDS}")
        if (per_seed < MIN_RUNS_PER_SEED_B5).any():
            few.append(f"seeds with < {MIN_RUNS_PER_SEED_B5} runs reaching the target: "
                       + ", ".join(f"{int(s)} ({n})" for s, n in per_seed.items() if n < MIN_RUNS_PER_SEED_B5))
        few = "; ".join(few)
        value, lo, hi, verdict, interval = _bootstrapped(ok, _rho("test_acc_at_level"), ">", MEMO_RHO_THRESHOLD,
                                                         few=few)
        note = f"target {100 * g.target_train_acc.iloc[0]:.1f}% accuracy on the noisy labels; {len(ok)} runs"
        if len(ok):
            note += (f"; epochs to target {fmt(ok.epoch_at_level.min())}–{fmt(ok.epoch_at_level.max())}, "
                     f"test accuracy at target {100 * ok.test_acc_at_level.min():.1f}–"
                     f"{100 * ok.test_acc_at_level.max():.1f}%")
        n_div, n_never = int((g.status != "completed").sum()), int(((g.status == "completed")
                                                                    & g.test_acc_at_level.isna()).sum())
        note += (f"; {n_div} diverged run(s) excluded" if n_div else "") + \
                (f"; {n_never} run(s) never reached the target, excluded" if n_never else "")
        suffix = f"[{group}, noise {noise:g}, momentum {mom:g}]" if len(cells) > 1 else ""
        claims.append(_record(f"B5{suffix}", statement, stat, threshold, value, verdict,
                              "; ".join(p for p in (few, note) if p), lo, hi, interval, ok.seed.nunique()))
    return claims


def breaking_ratio(runs: pd.DataFrame, tolerance: float) -> float:
    """log2(breaking beta of the largest train size / of the smallest), from the seed means
    of `runs` (:func:`repro.minima.tables.breaking_summary`; censored = the largest beta)."""
    summary = breaking_summary(runs, tolerance)
    sizes = summary.drop_duplicates("experiment").assign(k=lambda d: d.train_size.map(size_key)).sort_values("k")
    if len(sizes) < 2:
        return math.nan
    lo, hi = float(sizes.breaking_beta.iloc[0]), float(sizes.breaking_beta.iloc[-1])
    return math.log2(hi / lo) if lo > 0 and hi > 0 else math.nan


def breaking_claims(runs: pd.DataFrame | None, tolerance: float = 0.01) -> list[Claim]:
    """B6, per group: log2(breaking beta at the largest train size / at the smallest) > 0,
    bootstrapped over seeds (breaking beta recomputed from each resample's seed means)."""
    statement = "The eta/S scaling breaks down at a smaller beta for smaller training sets"
    stat = "log2(breaking beta, largest set / smallest set); censored = largest beta tried"
    if runs is None or runs.empty:
        return [_record("B6", statement, stat, "> 0", None, "inconclusive",
                        "not run at this scale: no role: breaking experiment in the config "
                        "(configs/medium.yaml; the paper-scale VGG-11 ladders are in configs/paper.yaml)")]
    claims = []
    groups = list(dict.fromkeys(runs.group))
    for group in groups:
        g = runs[runs.group == group]
        few = _too_few_seeds(g, cell=("experiment", "beta"))
        if g.experiment.nunique() < 2:
            few = "; ".join(p for p in (few, "needs >= 2 train sizes") if p)
        value, lo, hi, verdict, interval = _bootstrapped(g, lambda f: breaking_ratio(f, tolerance), ">", 0.0, few=few)
        summary = breaking_summary(g, tolerance).drop_duplicates("experiment")
        desc = "; ".join(f"{'full' if size_key(r.train_size) == math.inf else int(r.train_size)}: "
                         + ("undefined" if math.isnan(r.breaking_beta) else
                            (">= " if r.censored else "") + f"{r.breaking_beta:g}") for r in summary.itertuples())
        suffix = f"[{group}]" if len(groups) > 1 else ""
        claims.append(_record(f"B6{suffix}", statement, stat, "> 0", value, verdict,
                              "; ".join(p for p in (few, f"breaking beta by train size (seed means): {desc}") if p),
                              lo, hi, interval, g.seed.nunique()))
    return claims


# ------------------------------------------------------------------ the rule


def minima_claims(runs_csv, schedules_csv, memorization_csv=None, breaking_runs_csv=None, interpolation_csv=None,
                  side_offset: float = 0.25, tolerance: float = 0.01) -> pd.DataFrame:
    """Claims B1-B7 from the tables (a table that is not given makes its claims inconclusive)."""
    wide = runs_wide(pd.read_csv(runs_csv))
    finals = pd.read_csv(schedules_csv)
    memo = pd.read_csv(memorization_csv) if memorization_csv else None
    breaking = pd.read_csv(breaking_runs_csv) if breaking_runs_csv else None
    interp = pd.read_csv(interpolation_csv) if interpolation_csv else pd.DataFrame(columns=["pair"])
    return to_frame(sharpness_claims(wide) + schedule_claims(finals) + memorization_claims(memo)
                    + breaking_claims(breaking, tolerance) + interpolation_claims(interp, side_offset))


def write_claims(runs_csv, schedules_csv, out_csv, memorization_csv=None, breaking_runs_csv=None,
                 interpolation_csv=None, side_offset: float = 0.25, tolerance: float = 0.01) -> pd.DataFrame:
    """Rule minima_claims: :func:`minima_claims` written to results/claims/minima.csv."""
    frame = minima_claims(runs_csv, schedules_csv, memorization_csv, breaking_runs_csv, interpolation_csv,
                          side_offset, tolerance)
    atomic_write_text(out_csv, frame.to_csv(index=False))
    return frame
