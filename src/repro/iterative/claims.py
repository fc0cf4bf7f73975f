"""Paper A claims A1a-A7 on the tidy tables (rule iterative_claims), by the pre-registered
rules of docs/CLAIMS.md section 3: thresholds unchanged, every verdict read from an interval
(95 % percentile bootstrap over seeds, :mod:`repro.stats`), gates checked first.

* Gate G_A (every block claim): each seed's final model has train accuracy >= 0.99 and test
  accuracy >= 0.95 (runs table, last history row); G_A7 adds final train loss <= 0.01.
  A model below its gate keeps its value and interval but its claim is inconclusive.
* "For every X" claims (blocks, stages, splits) combine their parts by intersection-union
  (:func:`repro.stats.all_of`); the row shows the deciding part (a failing part if any,
  else the least favourable one) and the note lists every part with its interval.
* One claim per unshared model; with several models (paper scale) the ids get the suffix
  "[experiment/label]", which the register (repro.claims.REGISTERED_SCALES) ignores.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import stats
from ..claims import Claim, registered_scales, to_frame
from ..io import atomic_write_text
from .plan import PAPER, defaults, settings_for
from .tables import read_tables

A6_MAX_FALL = 0.005          # tau: a fall of more than half a point between adjacent heads (CLAIMS.md A6)
A5_MIN_BORDERLINE = 10       # borderline test examples per seed (CLAIMS.md A5)


# ---------------------------------------------------------------- helpers


def _interval_text(seeds) -> str:
    return (f"95% percentile bootstrap over seeds {sorted(int(s) for s in set(seeds))}, "
            f"B={stats.BOOTSTRAP_B}")


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _record(cid, statement, statistic, threshold, value, verdict, note="", lo=None, hi=None, seeds=()) -> Claim:
    seeds = sorted(set(int(s) for s in seeds))
    return Claim(id=cid, paper=PAPER.id, statement=statement, statistic=statistic, threshold=threshold,
                 value=_num(value), verdict=verdict, note=note, ci_low=_num(lo), ci_high=_num(hi),
                 interval=_interval_text(seeds) if seeds else "", n_seeds=len(seeds) or None,
                 scale="/".join(registered_scales(cid)))


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["metric"] != "skipped") & frame["value"].notna()]


def _mean_value(frame: pd.DataFrame) -> float:
    return float(frame["value"].mean())


def _boot(per_seed: pd.DataFrame, statistic=_mean_value) -> tuple[float, float, float]:
    """(value, lo, hi) of a per-seed frame (columns seed, value, ...) by the seed bootstrap."""
    if per_seed["seed"].nunique() < stats.MIN_SEEDS:
        return (statistic(per_seed) if len(per_seed) else math.nan), math.nan, math.nan
    return stats.seed_bootstrap(per_seed.reset_index(drop=True), statistic)


def _fmt(value, lo, hi) -> str:
    return f"{value:.3g} [{lo:.3g}, {hi:.3g}]"


def _combine(parts: list[dict]) -> tuple[str, dict | None, str]:
    """Intersection-union of parts {name, value, lo, hi, verdict}: (verdict, deciding part, note)."""
    if not parts:
        return "inconclusive", None, "no part could be measured"
    verdict = stats.all_of(p["verdict"] for p in parts)
    failing = [p for p in parts if p["verdict"] == "fails"]
    open_ = [p for p in parts if p["verdict"] == "inconclusive"]
    shown = failing[0] if failing else open_[0] if open_ else parts[0]
    return verdict, shown, "; ".join(f"{p['name']}: {_fmt(p['value'], p['lo'], p['hi'])} {p['verdict']}"
                                     for p in parts)


def _part(name, per_seed, op, threshold, statistic=_mean_value) -> dict:
    value, lo, hi = _boot(per_seed, statistic)
    few = per_seed["seed"].nunique() < stats.MIN_SEEDS
    verdict = "inconclusive" if few else stats.interval_verdict(lo, hi, op, threshold)
    return dict(name=name, value=value, lo=lo, hi=hi, verdict=verdict, seeds=list(per_seed["seed"]))


def _least_favourable(parts: list[dict], op: str) -> list[dict]:
    """Parts sorted so that the one nearest to failing comes first (for the row's value)."""
    key = (lambda p: -p["hi"] if math.isfinite(p["hi"]) else -np.inf) if op == "<" else (
        lambda p: p["lo"] if math.isfinite(p["lo"]) else -np.inf)
    return sorted(parts, key=key)


def unshared_models(tables) -> list[tuple[str, str]]:
    """The (experiment, label) of every unshared model of the config, in table order."""
    runs = tables["runs"]
    runs = runs[runs["variant"] == "unshared"]
    return list(dict.fromkeys(zip(runs["experiment"], runs["label"])))


def _cid(base: str, model: tuple[str, str], models: list) -> str:
    return base if len(models) <= 1 else f"{base}[{model[0]}/{model[1]}]"


def _model_rows(frame: pd.DataFrame, model) -> pd.DataFrame:
    f = _ok(frame)
    return f[(f["experiment"] == model[0]) & (f["label"] == model[1]) & (f["variant"] == "unshared")]


def final_train_loss(curves: pd.DataFrame) -> pd.DataFrame:
    """Per run: the train loss of the last history row (seed, experiment, label, variant, loss)."""
    c = _ok(curves)
    c = c[(c["split"] == "train") & (c["metric"] == "loss")]
    last = c.sort_values(["step", "epoch"]).groupby(["experiment", "label", "variant", "seed"]).tail(1)
    return last.rename(columns={"value": "loss"})[["experiment", "label", "variant", "seed", "loss"]]


def quality_gate(tables, model, gate: dict, variant: str = "unshared", unroll: bool = False,
                 train: bool = True) -> tuple[bool, str]:
    """Gate G_A (and G_A7 with `unroll`) on every seed's final model: (passes, note).

    Fails with fewer than MIN_SEEDS completed seeds, or when any completed seed is below a
    threshold. `train=False` checks only the test-accuracy part (A4b's UBN gate).
    """
    runs = tables["runs"]
    g = runs[(runs["experiment"] == model[0]) & (runs["label"] == model[1]) & (runs["variant"] == variant)]
    done = g[g["status"] == "completed"]
    if len(done) < stats.MIN_SEEDS:
        return False, f"only {len(done)} completed seeds of {model[0]}/{model[1]} (< {stats.MIN_SEEDS})"
    train_acc = 1 - done["train_error"].to_numpy() / 100
    test_acc = 1 - done["test_error"].to_numpy() / 100
    bad = test_acc < gate["test_accuracy"]
    text = f"test acc. min {test_acc.min():.4f} (gate {gate['test_accuracy']})"
    if train:
        bad |= train_acc < gate["train_accuracy"]
        text = f"train acc. min {train_acc.min():.4f} (gate {gate['train_accuracy']}), " + text
    if unroll:
        loss = final_train_loss(tables["curves"])
        loss = loss[(loss["experiment"] == model[0]) & (loss["label"] == model[1]) & (loss["variant"] == variant)]
        loss = loss.set_index("seed")["loss"].reindex(done["seed"]).to_numpy()
        bad |= ~(loss <= gate["unroll_train_loss"])
        text += f", final train loss max {np.nanmax(loss):.4g} (gate {gate['unroll_train_loss']})"
    seeds = sorted(int(s) for s in done["seed"][bad])
    if seeds:
        return False, f"below the quality gate: {text}; seeds below: {seeds}"
    return True, f"gate passed: {text}"


def _gated(verdict: str, gate_ok: bool) -> str:
    return verdict if gate_ok else "inconclusive"


# ---------------------------------------------------------------- A1a, A1b: cosine


def claim_a1a(tables, gate: dict) -> list[Claim]:
    """cos(F_i, dl/dh_i) < 0 for every block and split: seed interval per part, intersection-union."""
    out, models = [], unshared_models(tables)
    for model in models:
        b = _model_rows(tables["blocks"], model)
        parts = [_part(f"{split} block {block}", g, "<", 0.0)
                 for (split, block), g in b[b["metric"] == "cosine"].groupby(["split", "block"], sort=True)]
        verdict, shown, parts_note = _combine(_least_favourable(parts, "<"))
        gate_ok, gate_note = quality_gate(tables, model, gate)
        co = b[b["metric"] == "cosine_out"].groupby(["split", "block"])["value"].mean()
        out_note = (f" Secondary, gradient at the block output (cosine_out, seed means): {int((co < 0).sum())} of "
                    f"{len(co)} (split, block) negative, range [{co.min():.3g}, {co.max():.3g}]." if len(co) else "")
        note = (f"{gate_note}. Per (split, block) seed mean [95% interval]: {parts_note}.{out_note} Projection "
                "blocks (first of a downsampling stage): the gradient w.r.t. P(h) equals the output gradient.")
        out.append(_record(_cid("A1a", model, models),
                           "After training, every residual block moves its representation against the loss "
                           "gradient: cos(F_i(h_i), dL/dh_i) < 0 for every block",
                           "per (split, block): seed mean of the per-example cosine; shown: the deciding part",
                           "< 0 (every block and split)", shown and shown["value"], _gated(verdict, gate_ok),
                           note, shown and shown["lo"], shown and shown["hi"], b["seed"]))
    return out


def _parts_claim(cid, tables, model, gate, parts, op, statement, statistic, threshold, what, seeds) -> Claim:
    """A claim over parts (splits, stages): the least favourable part decides, then the gate."""
    verdict, shown, parts_note = _combine(_least_favourable(parts, op))
    gate_ok, gate_note = quality_gate(tables, model, gate)
    return _record(cid, statement, statistic, threshold, shown and shown["value"], _gated(verdict, gate_ok),
                   f"{gate_note}. {what}: {parts_note}.", shown and shown["lo"], shown and shown["hi"], seeds)


def slope_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed: OLS slope of `value` against `block` (the depth index)."""
    rows = [dict(seed=s, value=float(np.polyfit(g["block"].to_numpy(float), g["value"].to_numpy(float), 1)[0]))
            for s, g in frame.groupby("seed") if g["block"].nunique() >= 2]
    return pd.DataFrame(rows, columns=["seed", "value"])


def claim_a1b(tables, gate: dict) -> list[Claim]:
    """The cosine is more negative in higher blocks: per-seed slope vs depth index < 0, per split."""
    out, models = [], unshared_models(tables)
    for model in models:
        b = _model_rows(tables["blocks"], model)
        b = b[b["metric"] == "cosine"]
        parts = [_part(f"{split}", slope_per_seed(g), "<", 0.0) for split, g in b.groupby("split", sort=True)]
        out.append(_parts_claim(_cid("A1b", model, models), tables, model, gate, parts, "<",
                                "The cosine is most negative in higher blocks: it falls with depth",
                                "per split: seed mean of the per-seed OLS slope of the block cosine vs the block's "
                                "depth index; shown: the deciding split", "< 0 (both splits)", "Slope per split",
                                b["seed"]))
    return out


# ---------------------------------------------------------------- A2, A3: first block of a stage


def first_minus_later(frame: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Per seed (rows of one stage): value at position 0 minus the largest later value."""
    rows = []
    for s, g in frame.groupby("seed"):
        first, later = g.loc[g["position"] == 0, column], g.loc[g["position"] > 0, column]
        if len(first) and len(later):
            rows.append(dict(seed=s, value=float(first.iloc[0] - later.max())))
    return pd.DataFrame(rows, columns=["seed", "value"])


def claim_a2(tables, gate: dict) -> list[Claim]:
    """First block of each stage has the largest ||F||/||h||: per (stage, split) seed interval."""
    out, models = [], unshared_models(tables)
    for model in models:
        b = _model_rows(tables["blocks"], model)
        b = b[b["metric"] == "norm_ratio"]
        parts = [_part(f"{split} stage {stage}", first_minus_later(g), ">", 0.0)
                 for (split, stage), g in b.groupby(["split", "stage"], sort=True) if g["position"].nunique() >= 2]
        out.append(_parts_claim(_cid("A2", model, models), tables, model, gate, parts, ">",
                                "The first block of a stage changes the representation most: its ||F||/||h|| is "
                                "larger than that of every later block of the stage",
                                "per (split, stage): seed mean of ratio(first block) - max ratio(later blocks); "
                                "shown: the deciding part", "> 0 (every stage and split)", "Per part", b["seed"]))
    return out


def drop_costs(drop: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, stage, position): intact minus dropped test accuracy."""
    d = drop[drop["metric"] == "accuracy"]
    intact = d[d["kind"] == "intact"].groupby("seed")["value"].first()
    drops = d[d["kind"] == "drop"].copy()
    drops["cost"] = intact.reindex(drops["seed"]).to_numpy() - drops["value"].to_numpy()
    return drops


def claim_a3(tables, gate: dict) -> list[Claim]:
    """Dropping the first block of a stage costs more test accuracy than dropping any later one."""
    out, models = [], unshared_models(tables)
    for model in models:
        costs = drop_costs(_model_rows(tables["drop"], model))
        parts = [_part(f"stage {stage}", first_minus_later(g, "cost"), ">", 0.0)
                 for stage, g in costs.groupby("stage", sort=True) if g["position"].nunique() >= 2]
        out.append(_parts_claim(_cid("A3", model, models), tables, model, gate, parts, ">",
                                "Dropping the first block of a stage costs more accuracy than dropping any later "
                                "block of that stage", "per stage: seed mean of cost(first) - max cost(later), cost "
                                "= intact - dropped test accuracy; shown: the deciding stage", "> 0 (every stage)",
                                "Per stage", costs["seed"]))
    return out


# ---------------------------------------------------------------- A4a, A4b: sharing


def log_growth_ratio(init: pd.DataFrame, variant: str, baseline: str = "unshared",
                     metric: str = "growth") -> pd.DataFrame:
    """Per seed: log[mean over stages of `metric`(variant) / the same for `baseline`]."""
    f = init[(init["metric"] == metric)]
    if "block" in f:
        f = f[f["block"].fillna(-1) == -1]  # the per-stage rows of the per-run init table
    m = f.groupby(["seed", "variant"])["value"].mean().unstack("variant")
    if variant not in m or baseline not in m:
        return pd.DataFrame(columns=["seed", "value"])
    ratio = np.log(m[variant] / m[baseline]).dropna()
    return pd.DataFrame(dict(seed=ratio.index.to_numpy(), value=ratio.to_numpy()))


def claim_a4a(tables) -> list[Claim]:
    """At initialisation naive sharing grows activations more than the unshared network (log ratio > 0)."""
    init = tables.get("sharing_init")
    source = "the init-only job (iterative.sharing_init)"
    if init is None or not len(init):
        init, source = _ok(tables["init"]), "the epoch-0 snapshots of trained runs"
    init = init[init["value"].notna()]
    exps = [e for e, g in init.groupby("experiment", sort=True) if {"naive", "unshared"} <= set(g["variant"])]
    out = []
    for exp in exps:
        g = init[init["experiment"] == exp]
        per_seed = log_growth_ratio(g, "naive")
        part = _part(exp, per_seed, ">", 0.0)
        extra = []
        for label, frame in (("gradient ratio r, naive vs unshared", log_growth_ratio(g, "naive", metric="grad_ratio")),
                             ("growth UBN vs unshared (gamma = 0.1's effect, by construction)",
                              log_growth_ratio(g, "UBN"))):
            if len(frame) >= stats.MIN_SEEDS:
                v, lo, hi = _boot(frame)
                extra.append(f"{label}: log ratio {_fmt(v, lo, hi)}")
        note = (f"{exp}, from {source}, BN batch statistics; growth = mean ||h|| after the last shared block / "
                "before the first, mean over stages. Secondary: " + ("; ".join(extra) or "none") + ".")
        out.append(_record(f"A4a[{exp}]" if len(exps) > 1 else "A4a",
                           "Naive sharing makes activation norms grow with the unrolled (shared) steps at "
                           "initialisation, compared with the unshared network",
                           "seed mean of log[growth(naive) / growth(unshared)], networks of a seed built from the "
                           "same generator state", "> 0", part["value"], part["verdict"], note, part["lo"],
                           part["hi"], per_seed["seed"]))
    if not out:
        out.append(_record("A4a", "Naive sharing makes activation norms grow at initialisation",
                           "log growth ratio naive / unshared", "> 0", None, "inconclusive",
                           "no naive and unshared networks of one experiment at initialisation"))
    return out


def claim_a4b(tables, gate: dict) -> list[Claim]:
    """Naive sharing generalises worse than unshared BN: paired per-seed test-error difference > 0."""
    runs = tables["runs"]
    runs = runs[runs["status"] == "completed"]
    exps = [e for e, g in runs.groupby("experiment", sort=True) if {"naive", "UBN"} <= set(g["variant"])]
    out = []
    for exp in exps:
        g = runs[runs["experiment"] == exp]
        te = g.pivot_table(index="seed", columns="variant", values="test_error", aggfunc="mean")
        diff = (te["naive"] - te["UBN"]).dropna()
        per_seed = pd.DataFrame(dict(seed=diff.index.to_numpy(), value=diff.to_numpy()))
        part = _part(exp, per_seed, ">", 0.0)
        ubn_label = g.loc[g["variant"] == "UBN", "label"].iloc[0]
        gate_ok, gate_note = quality_gate(tables, (exp, ubn_label), gate, variant="UBN", train=False)
        tr = g.groupby("variant")["train_error"].mean()
        note = (f"{exp}: UBN {gate_note}; test error % seed means " + ", ".join(
            f"{k} {v:.2f}" for k, v in te.mean().items()) + "; train error % " + ", ".join(
            f"{k} {v:.2f}" for k, v in tr.items()) + ".")
        out.append(_record(f"A4b[{exp}]" if len(exps) > 1 else "A4b",
                           "Naive sharing generalises worse than sharing with unshared BN",
                           "seed mean of test error(naive) - test error(UBN), %, paired by seed", "> 0",
                           part["value"], _gated(part["verdict"], gate_ok), note, part["lo"], part["hi"],
                           per_seed["seed"]))
    if not out:
        out.append(_record("A4b", "Naive sharing generalises worse than sharing with unshared BN",
                           "test error(naive) - test error(UBN)", "> 0", None, "inconclusive",
                           "no experiment with trained naive and UBN runs at this scale"))
    return out


# ---------------------------------------------------------------- A5, A6, A7: refinement


def borderline_gains(borderline: pd.DataFrame) -> pd.DataFrame:
    """Per seed: borderline test examples n and accuracy gain from the first of the last K heads to the last."""
    b = borderline[(borderline["split"] == "test") & (borderline["group"] == "borderline")
                   & (borderline["metric"] == "accuracy")]
    rows = []
    for s, g in b.groupby("seed"):
        first, last = g[g["offset"] == g["offset"].min()], g[g["offset"] == 0]
        if len(first) and len(last):
            rows.append(dict(seed=s, n=int(last["n_examples"].iloc[0]),
                             value=float(last["value"].iloc[0] - first["value"].iloc[0])))
    return pd.DataFrame(rows, columns=["seed", "n", "value"])


def pooled_gain(frame: pd.DataFrame) -> float:
    """Example-weighted gain over the seeds' borderline sets."""
    n = frame["n"].sum()
    return float((frame["n"] * frame["value"]).sum() / n) if n else math.nan


def claim_a5(tables, gate: dict) -> list[Claim]:
    """Borderline test examples: accuracy rises from the first to the last of the last K heads."""
    out, models = [], unshared_models(tables)
    for model in models:
        gains = borderline_gains(_model_rows(tables["borderline"], model))
        part = _part("pooled", gains, ">", 0.0, pooled_gain)
        gate_ok, gate_note = quality_gate(tables, model, gate)
        few = [int(s) for s, n in zip(gains["seed"], gains["n"]) if n < A5_MIN_BORDERLINE]
        verdict = _gated(part["verdict"], gate_ok)
        note = f"{gate_note}. Borderline test examples per seed: " + ", ".join(
            f"seed {int(s)}: {n} (gain {v:+.3f})" for s, n, v in zip(gains["seed"], gains["n"], gains["value"])) + "."
        if few:
            verdict = "inconclusive"
            note += f" Too few borderline examples (< {A5_MIN_BORDERLINE}) for seeds {few}."
        out.append(_record(_cid("A5", model, models),
                           "Later blocks correct borderline examples: their accuracy rises over the last blocks",
                           "accuracy at the last head - at the first of the last K heads on borderline test "
                           "examples, example-weighted over seeds", "> 0", part["value"], verdict, note,
                           part["lo"], part["hi"], gains["seed"]))
    return out


def rise_and_fall(heads: pd.DataFrame) -> pd.DataFrame:
    """Per seed (final snapshot, test accuracy by head position): rise R = last - first head,
    largest fall F = max over adjacent heads of acc(j) - acc(j+1) (F <= 0: monotone)."""
    h = heads[(heads["split"] == "test") & (heads["metric"] == "accuracy")]
    rows = []
    for s, g in h.groupby("seed"):
        acc = g[g["epoch"] == g["epoch"].max()].sort_values("position")["value"].to_numpy()
        if len(acc) >= 2:
            rows.append(dict(seed=s, rise=float(acc[-1] - acc[0]), fall=float(np.max(acc[:-1] - acc[1:]))))
    return pd.DataFrame(rows, columns=["seed", "rise", "fall"])


def claim_a6(tables, gate: dict) -> list[Claim]:
    """Accuracy rises gradually through the last stage: rise R > 0 and largest fall F < tau."""
    out, models = [], unshared_models(tables)
    for model in models:
        rf = rise_and_fall(_model_rows(tables["heads"], model))
        rise = _part("rise R", rf.rename(columns={"rise": "value"}), ">", 0.0)
        fall = _part("largest fall F", rf.rename(columns={"fall": "value"}), "<", A6_MAX_FALL)
        verdict, _, parts_note = _combine([rise, fall])
        gate_ok, gate_note = quality_gate(tables, model, gate)
        out.append(_record(_cid("A6", model, models),
                           "Applying the classifier after every block of the last stage, accuracy rises gradually "
                           "through the stage", "seed mean of the rise R = acc(last head) - acc(first head), test "
                           "split, final snapshot (shown); with the largest fall F between adjacent heads",
                           f"R > 0 and F < {A6_MAX_FALL}", rise["value"], _gated(verdict, gate_ok),
                           f"{gate_note}. {parts_note}.", rise["lo"], rise["hi"], rf["seed"]))
    return out


def unroll_ratios(unroll: pd.DataFrame) -> pd.DataFrame:
    """Per seed: min over scales < 1 of train loss after the last unrolled step / before (and its scale),
    and the naive (scale 1) ratio."""
    u = unroll[(unroll["split"] == "train") & (unroll["group"] == "all") & (unroll["metric"] == "loss")]
    rows = []
    for s, g in u.groupby("seed"):
        ratios = {}
        for scale, gs in g.groupby("scale"):
            by_step = gs.set_index("step")["value"]
            ratios[float(scale)] = float(by_step[by_step.index.max()] / by_step[0])
        small = {k: v for k, v in ratios.items() if k < 1}
        if small:
            best = min(small, key=small.get)
            rows.append(dict(seed=s, value=small[best], scale=best, naive=ratios.get(1.0, math.nan)))
    return pd.DataFrame(rows, columns=["seed", "value", "scale", "naive"])


def claim_a7(tables, gate: dict) -> list[Claim]:
    """Unrolling the last block with a scaled-down residual keeps lowering the train loss (ratio < 1)."""
    out, models = [], unshared_models(tables)
    for model in models:
        r = unroll_ratios(_model_rows(tables["unroll"], model))
        part = _part("A7", r, "<", 1.0)
        gate_ok, gate_note = quality_gate(tables, model, gate, unroll=True)
        note = (f"{gate_note}. Per seed: " + ", ".join(
            f"seed {int(s)}: {v:.4g} at scale {sc:g} (naive scale 1: {nv:.4g})"
            for s, v, sc, nv in zip(r["seed"], r["value"], r["scale"], r["naive"])) + ".")
        out.append(_record(_cid("A7", model, models),
                           "Unrolling the last block for extra steps with its output scaled down keeps refining: "
                           "the train loss goes down (paper: 0.0012 -> 0.001)",
                           "seed mean of min over the declared scales < 1 of train loss after / before the extra "
                           "steps", "< 1", part["value"], _gated(part["verdict"], gate_ok), note, part["lo"],
                           part["hi"], r["seed"]))
    return out


# ---------------------------------------------------------------- all claims


def skipped_note(tables) -> str:
    """The runs that did not complete (left out of every claim), or ""."""
    runs = tables["runs"]
    bad = runs[runs["status"] != "completed"]
    if not len(bad):
        return ""
    return "Skipped (not completed): " + ", ".join(f"{r.experiment}/{r.run} ({r.status})" for r in bad.itertuples()) + "."


def evaluate_claims(tables: dict[str, pd.DataFrame], settings: dict | None = None) -> list[Claim]:
    """All paper-A claims (thresholds and gates fixed in docs/CLAIMS.md section 3)."""
    gate = (settings or defaults())["gate"]
    claims = [*claim_a1a(tables, gate), *claim_a1b(tables, gate), *claim_a2(tables, gate), *claim_a3(tables, gate),
              *claim_a4a(tables), *claim_a4b(tables, gate), *claim_a5(tables, gate), *claim_a6(tables, gate),
              *claim_a7(tables, gate)]
    skipped = skipped_note(tables)
    for claim in claims:
        claim.note = f"{claim.note} {skipped}".strip()
    return claims


def read_claim_tables(table_dir) -> dict[str, pd.DataFrame]:
    """The tables of read_tables plus sharing_init.csv when the init-only job wrote it."""
    from pathlib import Path

    tables = read_tables(table_dir)
    path = Path(table_dir) / "sharing_init.csv"
    if path.exists():
        tables["sharing_init"] = pd.read_csv(path)
    return tables


def write_claims(table_dir, out_csv, settings: dict | None = None) -> pd.DataFrame:
    frame = to_frame(evaluate_claims(read_claim_tables(table_dir), settings_for(settings)))
    atomic_write_text(out_csv, frame.to_csv(index=False))
    return frame
