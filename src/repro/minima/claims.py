"""Paper B's claims B1-B7 as :class:`repro.claims.Claim` records, from the tables.

What is measured, and how (the numbers in every table mean exactly this):

* **Sharpness at a matched training loss.** Cross-entropy sharpness shrinks as the train
  loss goes to zero, so every sharpness run stops at the first check whose *full* train
  loss is <= ``train.stop_at_train_loss`` (the training code checks after every epoch and,
  with ``train.stop_checks_per_epoch = m``, m times per epoch) and is measured there. A run that hits its epoch limit first is "not matched": it is listed,
  but left out of the eta/S comparisons (claims B1-B3), with a note.
* ``lambda_max``: top eigenvalue of the Hessian of the mean cross-entropy over a fixed,
  class-balanced subset of the training set (the same examples for every run), from
  ``repro.curvature.hessian_eigs`` (Lanczos on Hessian-vector products); ``hessian_trace``:
  Tr(H) on the same subset by Hutchinson (``repro.curvature.hessian_trace``), with its
  standard error. BN layers in eval mode (the curvature module's convention).
* ``lr_over_batch``: eta/S of a constant-schedule run; for scheduled runs the per-epoch
  ratio is read from history.csv (the lr and batch size used during each epoch), and
  summarised as its mean over epochs and its mean over SGD steps.
* Diverged runs are never numbers: their metrics are missing (NaN) with the reason in
  ``note``, drawn as "diverged" markers in figures.

Claims (thresholds fixed before looking at our numbers, from the paper's statements):

* B1a / B1b: sharpness (lambda_max / Tr H) falls as eta/S rises: Spearman rho < -0.5 over
  the matched runs (the theory, Tr(H) proportional to S/eta at fixed loss, predicts rho = -1).
* B2: test accuracy rises with eta/S: Spearman rho > 0.5 over the matched runs.
* B3a / B3b: runs with equal eta/S are closer in log lambda_max / in test accuracy than runs
  whose eta/S differs by one grid step: mean |difference| over equal-ratio pairs divided by
  the mean over one-step pairs < 1 (pairs within one seed).
* B4a: cyclic batch size and cyclic learning rate end within noise of each other:
  |mean difference of final test accuracy| <= 2 standard errors of the difference.
* B4b: both cycles beat both constants: min(cycle means) - max(constant means) > 0.
* B5 (memorization, label noise p): per (noise, momentum), Spearman rho(eta/S, clean test
  accuracy at equal memorization) > 0.5; equal memorization = the first epoch whose accuracy
  on the noisy training labels reaches (1 - p) + level * p (level 0.5: half of the random
  labels fitted). >= 4 runs over >= 3 eta/S values reaching it, else inconclusive.
* B6 (breaking point): the breaking beta (largest beta before the test accuracy first drops
  more than `tolerance` below the smallest beta's) does not decrease with the train-set
  size and is smaller for the smallest set than for the largest (censoring handled).
* B7a / B7b (interpolation): side rise r_a = L(-d) - L(0), r_b = L(1 + d) - L(1) on the train
  loss (d = side_offset = 0.25: both points the same distance from their model). B7a: for
  every pair whose ends differ in eta/S, r(low-eta/S end) / r(high-eta/S end) > 1. B7b:
  max |log(r_a / r_b)| over equal-eta/S pairs / min |log ratio| over differing pairs < 1.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from ..claims import Claim, compare, to_frame
from ..io import atomic_write_text
from ..runs import same_ratio, same_value, within_half_grid_step
from ..stats import larger_has_lower, pair_closeness, partial_spearman, spearman
from .plan import PAPER
from .tables import fmt, memo_wide, runs_wide, schedule_summary, size_key

PAPER_ID = PAPER.id

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



# ------------------------------------------------------------------ claims


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
        parts.append(f"{len(unmatched)} run(s) that never reached the target train loss excluded")
    return "; ".join(parts)


def sharpness_claims(wide: pd.DataFrame) -> list[Claim]:
    """Claims B1-B3, within each group of comparable runs (ids get a [group] suffix when
    there is more than one group)."""
    return _per_group(wide, _group_sharpness_claims)


def _group_sharpness_claims(wide: pd.DataFrame) -> list[Claim]:
    m = wide[wide.matched].copy() if len(wide) else wide
    excluded = _excluded_note(wide) if len(wide) else ""
    claims = []
    n_ratios = m.lr_over_batch.nunique() if len(m) else 0
    enough = len(m) >= 4 and n_ratios >= 3
    loss_rho, _, _ = spearman(m.lr_over_batch, m.train_loss) if len(m) else (math.nan, 0, 0)
    loss_range = (f"train loss at measurement {m.train_loss.min():.3g}–{m.train_loss.max():.3g}, "
                  f"rho(eta/S, that loss) = {loss_rho:.2f}") if len(m) else ""

    def corr_claim(cid, metric, name, op, threshold, statement):
        rho, p, n = spearman(m.lr_over_batch, m[metric]) if len(m) and metric in m else (math.nan, math.nan, 0)
        verdict = compare(rho, op, threshold) if enough else "inconclusive"
        why = ("" if enough else f"needs >= 4 matched runs over >= 3 eta/S values, have {len(m)} over {n_ratios}; ")
        partial = partial_spearman(m.lr_over_batch, m[metric], m.train_loss) if len(m) else math.nan
        note = why + (f"{n} matched runs, {n_ratios} eta/S values, p = {fmt(p, 2)}; {loss_range}; "
                      f"partial rho given that loss = {fmt(partial, 2)}")
        if excluded:
            note += f"; {excluded}"
        if verdict == "fails":
            spread = m.groupby("lr_over_batch")[metric].std().mean()
            note += (f". Fails at our scale: over the grid {name} spans {fmt(m[metric].min())}–"
                     f"{fmt(m[metric].max())}, with an sd of {fmt(spread)} among runs of equal eta/S; the paper's "
                     "grid (FashionMNIST MLP, configs/paper.yaml) has not been run")
        return Claim(cid, PAPER_ID, statement, f"Spearman rho(eta/S, {name})", f"{op} {threshold}",
                     None if math.isnan(rho) else round(rho, 4), verdict, note)

    claims.append(corr_claim("B1a", "lambda_max", "lambda_max(H)", "<", -0.5,
                             "Sharpness (top Hessian eigenvalue) at matched train loss falls as eta/S rises"))
    claims.append(corr_claim("B1b", "hessian_trace", "Tr(H)", "<", -0.5,
                             "Sharpness (Hessian trace) at matched train loss falls as eta/S rises"))
    claims.append(corr_claim("B2", "test_acc", "test accuracy", ">", 0.5,
                             "Test accuracy rises with eta/S (runs compared at matched train loss)"))

    equal, step, factor = ratio_pairs(m) if len(m) else ([], [], math.nan)
    for cid, metric, name, log in (("B3a", "lambda_max", "log lambda_max", True),
                                   ("B3b", "test_acc", "test accuracy", False)):
        me, ms, ratio = pair_closeness(equal, step, metric, log) if len(m) else (math.nan,) * 3
        verdict = compare(ratio, "<", 1.0)
        note = (f"mean |diff| {fmt(me)} over {len(equal)} equal-eta/S pairs vs {fmt(ms)} over {len(step)} pairs "
                f"one grid step (eta/S x{fmt(factor)}) apart, pairs within a seed")
        lower, counted = larger_has_lower(equal, "lr", metric)
        if counted:
            note += (f"; within equal-eta/S pairs the run with the larger eta has the lower {name.split()[-1]} "
                     f"in {lower} of {counted}")
        if verdict == "inconclusive":
            note = "needs equal-eta/S pairs and one-step pairs among matched runs; " + note
        claims.append(Claim(cid, PAPER_ID, f"Runs with equal eta/S are closer in {name.split()[-1] if log else name} "
                            "than runs whose eta/S differs by one grid step",
                            f"mean |diff {name}| equal-eta/S pairs / one-step pairs", "< 1",
                            None if math.isnan(ratio) else round(ratio, 4), verdict, note))
    return claims


def schedule_claims(finals: pd.DataFrame) -> list[Claim]:
    summary = schedule_summary(finals)
    claims = []
    experiments = list(dict.fromkeys(summary.experiment)) or [None]
    for exp in experiments:
        g = summary[summary.experiment == exp] if exp else summary
        suffix = f"[{exp}]" if len(experiments) > 1 else ""
        cbs, clr = g[g.kind == "cyclic BS"], g[g.kind == "cyclic LR"]
        const = g[g.kind == "constant"]
        missing = int(g.n_missing.sum()) if len(g) else 0
        miss_note = f"; {missing} run(s) without a final accuracy (diverged) excluded" if missing else ""
        # B4a: interchangeable
        if len(cbs) == 1 and len(clr) == 1 and cbs.n.iloc[0] >= 2 and clr.n.iloc[0] >= 2:
            a, b = cbs.iloc[0], clr.iloc[0]
            se = math.sqrt(a.se ** 2 + b.se ** 2)
            diff = a["mean"] - b["mean"]
            z = abs(diff) / se if se > 0 else (0.0 if diff == 0 else math.inf)
            value, note = round(z, 4), (f"cyclic BS {100 * a['mean']:.2f}% ± {100 * a.sd:.2f} (n={a.n}) vs cyclic LR "
                                        f"{100 * b['mean']:.2f}% ± {100 * b.sd:.2f} (n={b.n}); difference "
                                        f"{100 * diff:+.2f} points, se {100 * se:.2f}")
            verdict = compare(z, "<=", 2.0)
        else:
            value, verdict = None, "inconclusive"
            note = "needs one cyclic-BS and one cyclic-LR schedule with >= 2 finished seeds each"
        claims.append(Claim(f"B4a{suffix}", PAPER_ID, "Cyclic batch size and cyclic learning rate end within noise "
                            "of each other (final test accuracy)", "|mean CBS - mean CLR| / se of the difference",
                            "<= 2", value, verdict, note + miss_note))
        # B4b: cycles beat constants
        if len(cbs) and len(clr) and len(const) and not const["mean"].isna().all():
            best_const = const.loc[const["mean"].idxmax()]
            cyc_min = min(cbs["mean"].iloc[0], clr["mean"].iloc[0])
            margin = cyc_min - best_const["mean"]
            verdict = compare(margin, ">", 0.0)
            loss_note = ""
            cyc_loss = max(cbs.train_loss.iloc[0], clr.train_loss.iloc[0])
            if const.train_loss.min() > 2 * cyc_loss:
                loss_note = (f"; the constants end at a higher train loss ({fmt(const.train_loss.min())} vs "
                             f"<= {fmt(cyc_loss)} for the cycles): part of the gap may be convergence, not noise")
            note = (f"worse cycle {100 * cyc_min:.2f}% vs best constant {best_const.schedule} "
                    f"{100 * best_const['mean']:.2f}%" + loss_note)
            value = round(margin, 5)
        else:
            value, verdict, note = None, "inconclusive", "needs cyclic-BS, cyclic-LR and constant schedules"
        claims.append(Claim(f"B4b{suffix}", PAPER_ID, "Both cyclic schedules beat both constant schedules "
                            "(final test accuracy)", "min(cycle means) - max(constant means) (accuracy)", "> 0",
                            value, verdict, note + miss_note))
    return claims


# ------------------------------------------------------------------ interpolation: side rises (B7)


def side_rises(curve: pd.DataFrame, offset: float, split: str = "train") -> dict:
    """Loss rise just outside each end of one pair's line, on `split`:

    rise_a = L(-offset) - L(0)  (beside model a),   rise_b = L(1 + offset) - L(1)  (beside model b).

    Both move the same distance, offset * ||theta_b - theta_a||, away from their model, so
    the larger rise marks the sharper side. `curve`: rows alpha, split, metric, value of one
    pair. Missing points (or a diverged end) give NaN."""
    loss = curve[(curve.split == split) & (curve.metric == "loss")]

    def at(alpha):
        v = loss[np.isclose(loss.alpha.astype(float), alpha, rtol=0, atol=1e-9)].value
        return float(v.iloc[0]) if len(v) else math.nan

    l0, l1, la, lb = at(0.0), at(1.0), at(-offset), at(1.0 + offset)
    return dict(loss_a=l0, loss_b=l1, side_loss_a=la, side_loss_b=lb, rise_a=la - l0, rise_b=lb - l1)


def side_table(table: pd.DataFrame, offset: float) -> pd.DataFrame:
    """One row per pair: the two ends' eta/S, their side rises, and

    * ``equal_ratio``: the ends count as equal eta/S for B7: nearer each other than half a
      factor-2 grid step (:func:`repro.runs.within_half_grid_step`; the paper's own equal
      pair differs by 1.25);
    * ``ratio``: rise beside the low-eta/S end / rise beside the high-eta/S end (pairs with
      different eta/S), rise_a / rise_b for equal-eta/S pairs; NaN unless both rises > 0 (a
      rise <= 0 means the end is not a minimum along this line: no sharpness to compare)."""
    rows = []
    if table.empty:
        return pd.DataFrame(columns=["group", "pair", "a_run", "b_run", "a_lr_over_batch", "b_lr_over_batch", "equal_ratio",
                                     "loss_a", "loss_b", "rise_a", "rise_b", "ratio", "log_ratio", "note"])
    for pair, g in table.groupby("pair", sort=False):
        first = g.iloc[0]
        ra, rb = float(first.a_lr_over_batch), float(first.b_lr_over_batch)
        equal = within_half_grid_step(ra, rb)
        r = side_rises(g, offset)
        note = "; ".join(sorted({n for n in g.note.fillna("") if n}))
        if equal:
            num, den = r["rise_a"], r["rise_b"]
        else:
            num, den = (r["rise_a"], r["rise_b"]) if ra < rb else (r["rise_b"], r["rise_a"])
        if math.isfinite(num) and math.isfinite(den) and num > 0 and den > 0:
            ratio = num / den
        else:
            ratio = math.nan
            if not note:
                note = ("missing loss at a side point" if not (math.isfinite(num) and math.isfinite(den)) else
                        "the loss falls beside an end (rise <= 0): that end is not a minimum along this line")
        group = first.get("group", "")
        rows.append(dict(group="" if pd.isna(group) else str(group), pair=pair,
                         a_run=f"{first.a_experiment}/{first.a_run}",
                         b_run=f"{first.b_experiment}/{first.b_run}", a_lr_over_batch=ra, b_lr_over_batch=rb,
                         equal_ratio=equal, loss_a=r["loss_a"], loss_b=r["loss_b"], rise_a=r["rise_a"],
                         rise_b=r["rise_b"], ratio=ratio, log_ratio=math.log(ratio) if ratio == ratio else math.nan,
                         note=note))
    return pd.DataFrame(rows)


def interpolation_claims(table: pd.DataFrame, offset: float) -> list[Claim]:
    """B7a: beside the low-eta/S model the loss rises more than beside the high-eta/S model
    (ratio > 1 for every pair with different eta/S). B7b: equal-eta/S pairs look alike:
    max |log ratio| over equal pairs / min |log ratio| over differing pairs < 1. Pairs are
    compared within their group (ids get a [group] suffix when there are several)."""
    return _per_group(side_table(table, offset), lambda sides: _group_interpolation_claims(sides, offset))


def _group_interpolation_claims(sides: pd.DataFrame, offset: float) -> list[Claim]:
    diff, equal = sides[~sides.equal_ratio.astype(bool)], sides[sides.equal_ratio.astype(bool)]
    where = f"train loss at alpha = -{offset:g} and 1 + {offset:g}"

    def describe(frame):
        return "; ".join(f"{r.pair}: rises {fmt(r.rise_a)} (a, eta/S {r.a_lr_over_batch:.3g}) / {fmt(r.rise_b)} "
                         f"(b, eta/S {r.b_lr_over_batch:.3g}), end losses {fmt(r.loss_a)} / {fmt(r.loss_b)}"
                         + (f" [{r.note}]" if r.note else "") for r in frame.itertuples())

    if len(diff) and diff.ratio.notna().all():
        value = float(diff.ratio.min())
        verdict, note = compare(value, ">", 1.0), describe(diff)
    else:
        value, verdict = math.nan, "inconclusive"
        note = ("needs an interpolation pair whose ends differ in eta/S, with the loss rising beside both ends"
                + (f"; {describe(diff)}" if len(diff) else ""))
    claims = [Claim("B7a", PAPER_ID, "Along the line between a high- and a low-eta/S model the loss rises faster "
                    "beside the low-eta/S model (it sits in the sharper minimum)",
                    f"min over differing-eta/S pairs of rise(low-eta/S end) / rise(high-eta/S end), {where}",
                    "> 1", None if math.isnan(value) else round(value, 4), verdict, note)]
    if len(diff) and len(equal) and diff.ratio.notna().all() and equal.ratio.notna().all():
        num, den = float(equal.log_ratio.abs().max()), float(diff.log_ratio.abs().min())
        value = num / den if den > 0 else math.inf
        verdict = compare(value, "<", 1.0)
        note = (f"max |log rise ratio| over {len(equal)} equal-eta/S pair(s) {fmt(num)}, min over {len(diff)} "
                f"differing pair(s) {fmt(den)}; equal pairs: {describe(equal)}")
    else:
        value, verdict = math.nan, "inconclusive"
        note = ("needs equal-eta/S and differing-eta/S pairs with the loss rising beside every end"
                + (f"; equal pairs: {describe(equal)}" if len(equal) else ""))
    claims.append(Claim("B7b", PAPER_ID, "Two models with equal eta/S sit in alike minima: their side rises are closer "
                        "to each other than those of a pair whose eta/S differs",
                        f"max |log rise ratio| (equal-eta/S pairs) / min |log rise ratio| (differing pairs), {where}",
                        "< 1", None if math.isnan(value) else round(value, 4), verdict, note))
    return claims


def memorization_claims(table: pd.DataFrame | None) -> list[Claim]:
    """B5, per (group, label noise, momentum): Spearman rho(eta/S, clean test accuracy at
    equal memorization) > 0.5 over the runs that reach the memorization target (>= 4 runs
    over >= 3 eta/S values, else inconclusive)."""
    statement = "Higher eta/S generalizes better at equal memorization (random labels)"
    stat = "Spearman rho(eta/S, test accuracy at equal memorization)"
    if table is None or table.empty:
        return [Claim("B5", PAPER_ID, statement, stat, "> 0.5", None, "inconclusive",
                      "not run at this scale: no role: memorization experiment in the config "
                      "(the paper-scale grid is in configs/paper.yaml)")]
    wide = memo_wide(table)
    cells = list(dict.fromkeys(zip(wide.group, wide.label_noise, wide.momentum)))
    claims = []
    for group, noise, mom in cells:
        g = wide[(wide.group == group) & (wide.label_noise == noise) & (wide.momentum == mom)]
        ok = g[(g.status == "completed") & g.test_acc_at_level.notna()]
        rho, p, n = spearman(ok.lr_over_batch, ok.test_acc_at_level)
        n_ratios = ok.lr_over_batch.nunique()
        enough = len(ok) >= 4 and n_ratios >= 3
        verdict = compare(rho, ">", 0.5) if enough else "inconclusive"
        n_div = int((g.status != "completed").sum())
        n_never = int(((g.status == "completed") & g.test_acc_at_level.isna()).sum())
        note = ("" if enough else f"needs >= 4 runs over >= 3 eta/S values reaching the target, have {len(ok)} over "
                f"{n_ratios}; ")
        note += (f"target {100 * g.target_train_acc.iloc[0]:.1f}% accuracy on the noisy labels; {len(ok)} runs, "
                 f"p = {fmt(p, 2)}")
        if len(ok):
            note += (f"; epochs to target {fmt(ok.epoch_at_level.min())}–{fmt(ok.epoch_at_level.max())}, "
                     f"test accuracy at target {100 * ok.test_acc_at_level.min():.1f}–"
                     f"{100 * ok.test_acc_at_level.max():.1f}%")
        if n_div:
            note += f"; {n_div} diverged run(s) excluded"
        if n_never:
            note += f"; {n_never} run(s) never reached the target, excluded"
        if verdict == "fails":
            note += (f". Fails at our scale with {len(ok)} runs (a rank correlation of {len(ok)} points); "
                     "the paper's grid (5 S x 3 eta x 2 momenta, 300 epochs, configs/paper.yaml) has not been run")
        suffix = f"[{group}, noise {noise:g}, momentum {mom:g}]" if len(cells) > 1 else ""
        claims.append(Claim(f"B5{suffix}", PAPER_ID, statement, stat, "> 0.5",
                            None if math.isnan(rho) else round(rho, 4), verdict, note))
    return claims


def breaking_claims(summary: pd.DataFrame | None) -> list[Claim]:
    """B6, per group: the breaking beta grows with the train-set size. With sizes sorted
    ascending and each breaking beta an interval [b, b] (or [b, inf) when censored):

    * holds if every next size's interval lies at or above the previous one's (hi_i <= lo_j)
      and the smallest size's is strictly below the largest's (hi_first < lo_last);
    * fails if some smaller size surely breaks later than a larger one (lo_i > hi_j), or
      both ends are exact and equal (not smaller);
    * inconclusive otherwise (censoring leaves the order open) or with < 2 sizes.
    Value: log2(breaking beta of the largest size / of the smallest)."""
    statement = "The eta/S scaling breaks down at a smaller beta for smaller training sets"
    stat = "log2(breaking beta, largest set / smallest set); intervals must be ordered by size"
    threshold = "> 0, non-decreasing"
    if summary is None or summary.empty:
        return [Claim("B6", PAPER_ID, statement, stat, threshold, None, "inconclusive",
                      "not run at this scale: no role: breaking experiment in the config "
                      "(the paper-scale VGG-11 ladders at 12k/22.5k/45k are in configs/paper.yaml)")]
    claims = []
    groups = list(dict.fromkeys(summary.group))
    for group in groups:
        g = summary[summary.group == group]
        sizes = (g.drop_duplicates("experiment")[["experiment", "train_size", "breaking_beta", "censored"]]
                 .assign(size_key=lambda d: d.train_size.map(size_key)).sort_values("size_key"))
        desc = "; ".join(f"{'full' if r.size_key == math.inf else int(r.train_size)}: "
                         + ("undefined" if math.isnan(r.breaking_beta) else
                            (">= " if r.censored else "") + f"{r.breaking_beta:g}") for r in sizes.itertuples())
        valid = sizes[sizes.breaking_beta.notna()]
        if len(valid) < 2:
            verdict, value = "inconclusive", None
            note = f"needs >= 2 train sizes with a breaking beta; {desc}"
        else:
            lo = valid.breaking_beta.tolist()
            hi = [math.inf if c else b for b, c in zip(lo, valid.censored)]
            pairs = list(zip(range(len(lo)), range(1, len(lo))))
            surely_ordered = all(hi[i] <= lo[j] for i, j in pairs) and hi[0] < lo[-1]
            surely_wrong = any(lo[i] > hi[j] for i in range(len(lo)) for j in range(i + 1, len(lo))) or (
                hi[0] == lo[0] and hi[-1] == lo[-1] and lo[0] == lo[-1])
            verdict = "holds" if surely_ordered else "fails" if surely_wrong else "inconclusive"
            value = round(math.log2(lo[-1] / lo[0]), 4)
            note = f"breaking beta by train size: {desc}"
            if verdict == "inconclusive":
                note += " (censored values leave the order open)"
        suffix = f"[{group}]" if len(groups) > 1 else ""
        claims.append(Claim(f"B6{suffix}", PAPER_ID, statement, stat, threshold, value, verdict, note))
    return claims


def minima_claims(runs_csv, schedules_csv, memorization_csv=None, breaking_csv=None, interpolation_csv=None,
                  side_offset: float = 0.25) -> pd.DataFrame:
    """Claims B1-B7 from the tables (a table that is not given makes its claims inconclusive)."""
    wide = runs_wide(pd.read_csv(runs_csv))
    finals = pd.read_csv(schedules_csv)
    memo = pd.read_csv(memorization_csv) if memorization_csv else None
    breaking = pd.read_csv(breaking_csv) if breaking_csv else None
    interp = pd.read_csv(interpolation_csv) if interpolation_csv else pd.DataFrame(columns=["pair"])
    return to_frame(sharpness_claims(wide) + schedule_claims(finals) + memorization_claims(memo)
                    + breaking_claims(breaking) + interpolation_claims(interp, side_offset))


def write_claims(runs_csv, schedules_csv, out_csv, memorization_csv=None, breaking_csv=None, interpolation_csv=None,
                 side_offset: float = 0.25) -> pd.DataFrame:
    """Rule minima_claims: :func:`minima_claims` written to results/claims/minima.csv."""
    frame = minima_claims(runs_csv, schedules_csv, memorization_csv, breaking_csv, interpolation_csv, side_offset)
    atomic_write_text(out_csv, frame.to_csv(index=False))
    return frame

