"""Paper B's tidy tables (CSV for machines, Markdown for people) from the measurements and
the runs' status.json files: the per-run sharpness table, interpolation curves, the schedule
swap, memorization at equal memorization (B5) and the breaking point of the eta/S scaling (B6).

Missing values are NaN with the reason in ``note``, never a number."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write_text
from ..runs import FINAL_METRICS, RunRecord, lr_over_batch, ratio_in
from .plan import variant_of

SCHEDULE_ORDER = ("cyclic BS", "cyclic LR", "constant")

# ------------------------------------------------------------------ per-run table


RUN_COLUMNS = ["group", "experiment", "run", "seed", "lr", "batch_size", "lr_over_batch", "status", "matched",
               "equal_ratio", "target_loss", "epoch", "step", "metric", "value", "stderr", "note"]


def equal_ratio_values(results: list[dict], experiments: dict) -> dict[str, list[float]]:
    """Per group, the eta/S values of the experiments flagged equal_ratio (the beta diagonals)."""
    out: dict[str, set] = {}
    for r in results:
        exp = experiments.get(r["experiment"], {})
        if exp.get("equal_ratio"):
            out.setdefault(exp.get("group") or r["experiment"], set()).add(r["lr_over_batch"])
    return {g: sorted(v) for g, v in out.items()}


def read_sharpness(paths) -> list[dict]:
    """The per-run sharpness records of rule minima_sharpness's JSON files (each a list: the
    runs of one part; a single record is read as a part of one), in the given order."""
    records = []
    for path in paths:
        saved = json.loads(Path(path).read_text())
        records.extend(saved if isinstance(saved, list) else [saved])
    return records


def runs_table(results: list[dict], experiments: dict) -> pd.DataFrame:
    """Tidy per-run table: one row per run and metric; missing values carry their reason.
    `results`: sharpness records (:func:`read_sharpness`)."""
    ratios = equal_ratio_values(results, experiments)
    rows = []
    for r in sorted(results, key=lambda r: (r["lr_over_batch"], r["lr"], r["experiment"], r["seed"])):
        base = {k: r[k] for k in ("experiment", "run", "seed", "lr", "batch_size", "lr_over_batch", "status",
                                  "matched", "target_loss", "epoch", "step")}
        group = experiments.get(r["experiment"], {}).get("group") or r["experiment"]
        base["group"] = group
        base["equal_ratio"] = ratio_in(r["lr_over_batch"], ratios.get(group, ()))
        sh = r.get("sharpness") or {}
        values = {"lambda_max": (sh.get("lambda_max"), None), "hessian_trace": (sh.get("hessian_trace"),
                                                                                 sh.get("hessian_trace_stderr")),
                  "subset_loss": (sh.get("subset_loss"), None)}
        for i, e in enumerate((sh.get("eigenvalues") or [])[1:], start=2):
            values[f"lambda_{i}"] = (e, None)
        for k in FINAL_METRICS:
            values[k] = ((r.get("final") or {}).get(k), None)
        for metric, (value, stderr) in values.items():
            missing = value is None or not math.isfinite(value)
            note = r.get("note", "")
            if missing and not note:
                note = "not measured (non-finite)"
            rows.append({**base, "metric": metric, "value": math.nan if missing else float(value),
                         "stderr": math.nan if stderr is None else float(stderr), "note": note})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def runs_wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run, one column per metric (for plots, claims and Markdown)."""
    keys = [c for c in RUN_COLUMNS if c not in ("metric", "value", "stderr")]
    columns = keys + ["lambda_max", "hessian_trace", "hessian_trace_stderr", "subset_loss", *FINAL_METRICS]
    rows = []
    for _, g in table.groupby(["experiment", "run"], sort=False):
        first = g.iloc[0]
        row = {k: first[k] for k in keys}
        row["note"] = "" if pd.isna(row["note"]) else row["note"]
        for _, r in g.iterrows():
            row[r.metric] = r.value
            if r.metric == "hessian_trace":
                row["hessian_trace_stderr"] = r.stderr
        rows.append(row)
    wide = pd.DataFrame(rows)
    for col in columns:
        if col not in wide:
            wide[col] = np.nan if col not in ("matched", "equal_ratio") else False
    for col in ("matched", "equal_ratio"):
        wide[col] = wide[col].astype(bool)
    wide = wide[columns + [c for c in wide.columns if c not in columns]]
    return wide.sort_values(["group", "lr_over_batch", "lr", "seed"]).reset_index(drop=True)


def fmt(value, digits=3) -> str:
    """`value` with `digits` significant digits for Markdown; "" for a missing value."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def runs_markdown(table: pd.DataFrame) -> str:
    wide = runs_wide(table)
    lines = ["# Paper B: per-run summary", "",
             "Sharpness measured where each run first reached its target train loss (see `target`). "
             "Diverged runs have no numbers: their status says why.", ""]
    if wide.empty:
        return "\n".join(lines + ["_No minima runs._", ""])
    out = pd.DataFrame({
        "group": wide.group, "experiment": wide.experiment, "run": wide.run, "eta": wide.lr.map(fmt), "S": wide.batch_size,
        "eta/S": wide.lr_over_batch.map(lambda v: f"{v:.3g}"), "equal eta/S set": wide.equal_ratio.map({True: "yes", False: ""}),
        "status": [s if s != "completed" else ("matched" if m else "completed, not matched")
                   for s, m in zip(wide.status, wide.matched)],
        "epochs": wide.epoch, "target": wide.target_loss.map(fmt), "train loss": wide.train_loss.map(fmt),
        "lambda_max": wide.lambda_max.map(fmt),
        "Tr(H) ± se": [f"{fmt(t)} ± {fmt(s, 2)}" if not math.isnan(t) else "" for t, s in
                       zip(wide.hessian_trace, wide.hessian_trace_stderr)],
        "test acc": wide.test_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "note": wide.note})
    if wide.group.nunique() <= 1:
        out = out.drop(columns="group")
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def write_runs_table(sharpness_paths, experiments: dict, csv_path, md_path) -> pd.DataFrame:
    """Rule minima_runs_table: runs.csv and runs.md from the sharpness records."""
    table = runs_table(read_sharpness(sharpness_paths), experiments)
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, runs_markdown(table))
    return table


# ------------------------------------------------------------------ interpolation


def interpolation_markdown(table: pd.DataFrame) -> str:
    lines = ["# Paper B: 1-D interpolation between minima", "",
             "theta(alpha) = (1 - alpha) theta_a + alpha theta_b; alpha = 0 is run a, 1 is run b. "
             "Loss = mean cross-entropy over the full split.", ""]
    if table.empty:
        return "\n".join(lines + ["_No interpolation pairs configured._", ""])
    rows = []
    for pair, g in table.groupby("pair", sort=False):
        first = g.iloc[0]

        def val(alpha, split, metric):
            s = g[(np.isclose(g.alpha, alpha)) & (g.split == split) & (g.metric == metric)].value
            return s.iloc[0] if len(s) else math.nan

        inner = g[(g.alpha >= 0) & (g.alpha <= 1) & (g.split == "train") & (g.metric == "loss")].value
        rows.append({"pair": pair,
                     "a (alpha=0)": f"{first.a_experiment}/{first.a_run} (eta/S {first.a_lr_over_batch:.3g})",
                     "b (alpha=1)": f"{first.b_experiment}/{first.b_run} (eta/S {first.b_lr_over_batch:.3g})",
                     "train loss a": fmt(val(0, "train", "loss")), "train loss b": fmt(val(1, "train", "loss")),
                     "max train loss, 0<=alpha<=1": fmt(inner.max() if len(inner) else math.nan),
                     "train loss alpha=-1": fmt(val(-1, "train", "loss")),
                     "train loss alpha=2": fmt(val(2, "train", "loss")),
                     "test acc a": fmt(val(0, "test", "accuracy")), "test acc b": fmt(val(1, "test", "accuracy")),
                     "note": "; ".join(sorted(set(n for n in g.note.fillna("") if n)))})
    return "\n".join(lines + [pd.DataFrame(rows).to_markdown(index=False), ""])


def write_interpolation_table(paths, csv_path, md_path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["pair", "alpha", "split", "metric", "value", "note"])
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, interpolation_markdown(table))
    return table


# ------------------------------------------------------------------ schedules


def schedule_label(train: dict) -> str:
    lr_kind = (train.get("lr_schedule") or {}).get("type", "constant")
    bs_kind = (train.get("batch_schedule") or {}).get("type", "constant")
    if lr_kind == "constant" and bs_kind == "constant":
        return f"constant eta={train['lr']:g}, S={train['batch_size']}"
    parts = []
    if bs_kind != "constant":
        parts.append("cyclic BS" if bs_kind == "cyclic" else f"{bs_kind} BS")
    if lr_kind != "constant":
        parts.append("cyclic LR" if lr_kind == "cyclic" else f"{lr_kind} LR")
    return " + ".join(parts)


def schedule_kind(label: str) -> str:
    return "constant" if label.startswith("constant") else label


def ratio_per_epoch(history: pd.DataFrame, n_train: int | None = None) -> pd.DataFrame:
    """eta/S used during each training epoch (rows epoch >= 1 of history.csv).

    Columns epoch, lr, batch_size, lr_over_batch, steps (SGD steps in that epoch: the
    difference of the cumulative `step` column)."""
    h = history.sort_values("epoch").reset_index(drop=True)
    steps = h["step"].diff()
    out = pd.DataFrame({"epoch": h.epoch, "lr": h.lr, "batch_size": h.batch_size,
                        "lr_over_batch": lr_over_batch(h.lr, h.batch_size), "steps": steps})
    return out[out.epoch >= 1].reset_index(drop=True)


def mean_ratio(history: pd.DataFrame) -> tuple[float, float]:
    """(mean eta/S over epochs, mean eta/S over SGD steps) of one run's history."""
    r = ratio_per_epoch(history)
    if r.empty:
        return math.nan, math.nan
    by_step = (r.lr_over_batch * r.steps).sum() / r.steps.sum() if r.steps.sum() > 0 else math.nan
    return float(r.lr_over_batch.mean()), float(by_step)


SCHEDULE_COLUMNS = ["experiment", "run", "seed", "schedule", "kind", "lr", "batch_size", "status", "epoch",
                    "metric", "value", "note"]
CURVE_COLUMNS = ["experiment", "run", "seed", "schedule", "epoch", "step", "lr", "batch_size", "lr_over_batch",
                 "metric", "value"]


def read_runs(status_paths, history_paths=None) -> list[dict]:
    """{"record": RunRecord, "history": DataFrame (when history paths are given)} per run."""
    if history_paths is None:
        return [{"record": RunRecord.read(s)} for s in status_paths]
    return [{"record": RunRecord.read(s), "history": pd.read_csv(h)} for s, h in zip(status_paths, history_paths)]


def schedule_tables(items: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """items: {"record": RunRecord, "history": DataFrame}. Returns (final table, curves), both long."""
    finals, curves = [], []
    for item in items:
        rec, hist = item["record"], item["history"]
        label = schedule_label(rec.train)
        base = dict(experiment=rec.experiment, run=rec.run, seed=rec.seed, schedule=label,
                    kind=schedule_kind(label), lr=rec.lr, batch_size=rec.batch_size,
                    status=rec.status, epoch=rec.epochs_completed)
        note = rec.failure
        by_epoch, by_step = mean_ratio(hist)
        values = {k: rec.final_metric(k) for k in FINAL_METRICS}
        values.update(mean_lr_over_batch=by_epoch, step_mean_lr_over_batch=by_step)
        for metric, value in values.items():
            missing = value is None or not math.isfinite(value)
            finals.append({**base, "metric": metric, "value": math.nan if missing else float(value),
                           "note": note if missing else ""})
        ratio = ratio_per_epoch(hist).set_index("epoch")["lr_over_batch"]
        for _, row in hist.sort_values("epoch").iterrows():
            for metric in FINAL_METRICS:
                curves.append(dict(experiment=base["experiment"], run=base["run"], seed=base["seed"],
                                   schedule=label, epoch=int(row.epoch), step=int(row.step), lr=row.lr,
                                   batch_size=int(row.batch_size),
                                   lr_over_batch=ratio.get(row.epoch, lr_over_batch(row.lr, row.batch_size)),
                                   metric=metric, value=row[metric]))
    return pd.DataFrame(finals, columns=SCHEDULE_COLUMNS), pd.DataFrame(curves, columns=CURVE_COLUMNS)


def schedule_summary(finals: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and schedule: n, mean/sd/se of the final test accuracy, train loss, eta/S."""
    rows = []
    if finals.empty:
        return pd.DataFrame(columns=["experiment", "schedule", "kind", "variant", "n", "n_missing", "mean", "sd",
                                     "se", "train_loss", "mean_lr_over_batch"])
    for (exp, label), g in finals.groupby(["experiment", "schedule"], sort=False):
        acc = g[g.metric == "test_acc"]
        vals = acc.value.dropna()
        n = len(vals)
        sd = float(vals.std(ddof=1)) if n >= 2 else math.nan
        rows.append(dict(experiment=exp, schedule=label, kind=g.kind.iloc[0], variant=variant_of(g.run.iloc[0]),
                         n=n, n_missing=int(acc.value.isna().sum()), mean=float(vals.mean()) if n else math.nan,
                         sd=sd, se=sd / math.sqrt(n) if n >= 2 else math.nan,
                         train_loss=float(g[g.metric == "train_loss"].value.mean()),
                         mean_lr_over_batch=float(g[g.metric == "mean_lr_over_batch"].value.mean())))
    out = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(SCHEDULE_ORDER)}
    out["_o"] = out.kind.map(lambda k: order.get(k, len(order)))
    return out.sort_values(["experiment", "_o", "mean_lr_over_batch"]).drop(columns="_o").reset_index(drop=True)


def schedules_markdown(finals: pd.DataFrame, experiments: dict) -> str:
    lines = ["# Paper B: exchanging learning-rate and batch-size schedules", "",
             "Final test accuracy (last epoch), mean ± sd over seeds; eta/S averaged over epochs.", ""]
    summary = schedule_summary(finals)
    if summary.empty:
        return "\n".join(lines + ["_No schedule runs._", ""])
    for exp, g in summary.groupby("experiment", sort=False):
        paper = (experiments.get(exp) or {}).get("paper_accuracy") or {}
        setting = (experiments.get(exp) or {}).get("paper_setting", "")
        rows = []
        for _, r in g.iterrows():
            row = {"schedule": r.schedule, "runs": f"{r.n}" + (f" (+{r.n_missing} missing)" if r.n_missing else ""),
                   "test acc (%)": "" if math.isnan(r["mean"]) else
                   f"{100 * r['mean']:.2f} ± {100 * r.sd:.2f}" if not math.isnan(r.sd) else f"{100 * r['mean']:.2f}",
                   "final train loss": fmt(r.train_loss), "mean eta/S": f"{r.mean_lr_over_batch:.3g}"}
            if paper:
                row[f"paper (%){' — ' + setting if setting else ''}"] = fmt(paper.get(r.variant), 4)
            rows.append(row)
        lines += [f"## {exp}", "", pd.DataFrame(rows).to_markdown(index=False), ""]
    return "\n".join(lines)


def write_schedule_tables(status_paths, history_paths, experiments: dict, csv_path, md_path, curves_path):
    """Rule minima_schedules: final table, Markdown and per-epoch curves; returns (finals, curves)."""
    finals, curves = schedule_tables(read_runs(status_paths, history_paths))
    atomic_write_text(csv_path, finals.to_csv(index=False))
    atomic_write_text(curves_path, curves.to_csv(index=False))
    atomic_write_text(md_path, schedules_markdown(finals, experiments))
    return finals, curves


# ------------------------------------------------------------------ memorization (B5)


MEMO_COLUMNS = ["group", "experiment", "run", "seed", "label_noise", "momentum", "lr", "batch_size",
                "lr_over_batch", "status", "target_train_acc", "metric", "value", "note"]
MEMO_METRICS = ("epoch_at_level", "train_acc_at_level", "test_acc_at_level", "final_train_acc",
                "final_test_acc", "final_train_loss")


def memorization_target(noise: float, level: float) -> float:
    """Accuracy on the noisy training labels of a model that fits every clean example and a
    share `level` of the relabelled ones: (1 - p) + level * p."""
    return (1.0 - noise) + level * noise


def memorization_point(history: pd.DataFrame, target: float) -> dict | None:
    """The first epoch (>= 1) whose train accuracy (on the noisy labels) is >= target:
    {epoch, train_acc, test_acc}; None if never reached."""
    h = history[history.epoch >= 1].sort_values("epoch")
    hit = h[h.train_acc >= target - 1e-12]
    if hit.empty:
        return None
    r = hit.iloc[0]
    return dict(epoch=float(r.epoch), train_acc=float(r.train_acc), test_acc=float(r.test_acc))


def memorization_table(items: list[dict], experiments: dict, level: float) -> pd.DataFrame:
    """items: {"record": RunRecord, "history": DataFrame}. One row per run and metric.

    Diverged runs get no numbers (NaN with the reason): they are listed, never compared."""
    rows = []
    for item in items:
        rec, hist = item["record"], item["history"]
        noise = rec.label_noise
        target = memorization_target(noise, level)
        base = dict(group=(experiments.get(rec.experiment) or {}).get("group") or rec.experiment,
                    experiment=rec.experiment, run=rec.run, seed=rec.seed, label_noise=noise,
                    momentum=rec.momentum, lr=rec.lr, batch_size=rec.batch_size,
                    lr_over_batch=rec.lr_over_batch, status=rec.status, target_train_acc=target)
        completed = rec.completed
        point = memorization_point(hist, target) if completed else None
        values = {"epoch_at_level": point and point["epoch"], "train_acc_at_level": point and point["train_acc"],
                  "test_acc_at_level": point and point["test_acc"],
                  "final_train_acc": rec.final_metric("train_acc"),
                  "final_test_acc": rec.final_metric("test_acc"),
                  "final_train_loss": rec.final_metric("train_loss")}
        if not completed:
            note = rec.failure
        elif point is None:
            note = (f"never reached {100 * target:.1f}% accuracy on the noisy training labels "
                    f"(best {100 * hist.train_acc.max():.1f}%)")
        else:
            note = ""
        for metric in MEMO_METRICS:
            value = values[metric]
            missing = value is None or not math.isfinite(value)
            rows.append({**base, "metric": metric, "value": math.nan if missing else float(value),
                         "note": note if (missing or metric.endswith("_at_level")) else ""})
    return pd.DataFrame(rows, columns=MEMO_COLUMNS)


def memo_wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run, one column per metric; `note` = the run's first non-empty note."""
    keys = [c for c in MEMO_COLUMNS if c not in ("metric", "value", "note")]
    rows = []
    for _, g in table.groupby(["experiment", "run"], sort=False):
        row = {k: g.iloc[0][k] for k in keys}
        row.update({m: math.nan for m in MEMO_METRICS})
        row.update(dict(zip(g.metric, g.value.astype(float))))
        row["note"] = next((n for n in g.note if isinstance(n, str) and n), "")
        rows.append(row)
    wide = pd.DataFrame(rows, columns=keys + list(MEMO_METRICS) + ["note"])
    return wide.sort_values(["group", "label_noise", "momentum", "lr_over_batch", "lr", "seed"]).reset_index(drop=True)


def memorization_markdown(table: pd.DataFrame, level: float) -> str:
    lines = ["# Paper B: memorization with random labels", "",
             f"Equal memorization: the first epoch whose accuracy on the noisy training labels reaches "
             f"(1 - p) + {level:g} * p (p = share of randomised labels). Test accuracy is on clean labels.", ""]
    wide = memo_wide(table)
    if wide.empty:
        return "\n".join(lines + ["_No memorization runs at this scale (role: memorization; see configs/paper.yaml)._",
                                  ""])
    out = pd.DataFrame({
        "noise": wide.label_noise.map(lambda v: f"{100 * v:g}%"), "momentum": wide.momentum, "run": wide.run,
        "eta": wide.lr.map(fmt), "S": wide.batch_size, "eta/S": wide.lr_over_batch.map(lambda v: f"{v:.3g}"),
        "status": wide.status, "target train acc": wide.target_train_acc.map(lambda v: f"{100 * v:.1f}%"),
        "epoch at target": wide.epoch_at_level.map(fmt),
        "test acc at target": wide.test_acc_at_level.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "final train acc": wide.final_train_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "final test acc": wide.final_test_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "note": wide.note})
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def memorization_curves(items: list[dict]) -> pd.DataFrame:
    """Per run and epoch: accuracy on the noisy training labels and clean test accuracy."""
    rows = []
    for item in items:
        rec, hist = item["record"], item["history"]
        for r in hist.itertuples():
            rows.append(dict(experiment=rec.experiment, run=rec.run, seed=rec.seed, label_noise=rec.label_noise,
                             momentum=rec.momentum, lr_over_batch=rec.lr_over_batch,
                             status=rec.status, epoch=r.epoch, train_acc=r.train_acc, test_acc=r.test_acc))
    return pd.DataFrame(rows, columns=["experiment", "run", "seed", "label_noise", "momentum", "lr_over_batch",
                                       "status", "epoch", "train_acc", "test_acc"])


def write_memorization(status_paths, history_paths, experiments: dict, level: float, csv_path,
                       md_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule minima_memorization: the table and Markdown; returns (table, curves) for the figure."""
    items = read_runs(status_paths, history_paths)
    table = memorization_table(items, experiments, level)
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, memorization_markdown(table, level))
    return table, memorization_curves(items)


# ------------------------------------------------------------------ breaking point (B6)


BREAK_RUN_COLUMNS = ["group", "experiment", "run", "seed", "train_size", "lr", "batch_size", "lr_over_batch", "beta",
                     "status", "test_acc", "train_loss", "note"]
BREAK_COLUMNS = ["group", "experiment", "train_size", "beta", "lr", "batch_size", "n", "n_diverged", "mean_test_acc",
                 "sd_test_acc", "reference_acc", "drop", "within_tolerance", "breaking_beta", "censored", "note"]


def size_key(size) -> float:
    """Sort key of a train size: no size (the full training set) sorts last."""
    return math.inf if size is None or (isinstance(size, float) and math.isnan(size)) else float(size)


def breaking_runs(records: list[RunRecord], experiments: dict) -> pd.DataFrame:
    """One row per run; beta = S / (smallest S among the breaking runs of its group), so
    every train size of a group is on one beta scale."""
    rows = []
    for rec in records:
        completed = rec.completed
        rows.append(dict(group=(experiments.get(rec.experiment) or {}).get("group") or rec.experiment,
                         experiment=rec.experiment, run=rec.run, seed=rec.seed,
                         train_size=rec.train_size, lr=rec.lr, batch_size=rec.batch_size,
                         lr_over_batch=rec.lr_over_batch, beta=math.nan, status=rec.status,
                         test_acc=rec.final.get("test_acc") if completed else math.nan,
                         train_loss=rec.final.get("train_loss") if completed else math.nan,
                         note=rec.failure))
    frame = pd.DataFrame(rows, columns=BREAK_RUN_COLUMNS)
    if len(frame):
        frame["test_acc"] = frame.test_acc.astype(float)
        frame["beta"] = frame.batch_size / frame.groupby("group").batch_size.transform("min")
    return frame


def breaking_summary(runs: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per (experiment = train size, beta): mean final test accuracy over seeds, its drop from
    the smallest beta's, and the experiment's breaking beta: the largest beta before the first
    beta that is more than `tolerance` below the reference or has a diverged seed (`censored`:
    no beta dropped, the breaking beta is at least the largest one tried)."""
    rows = []
    for exp, g in runs.groupby("experiment", sort=False):
        per_beta = []
        for beta, b in g.groupby("beta"):
            acc = b.test_acc.dropna()
            per_beta.append(dict(group=b.group.iloc[0], experiment=exp, train_size=b.train_size.iloc[0], beta=beta,
                                 lr=b.lr.iloc[0], batch_size=int(b.batch_size.iloc[0]), n=len(acc),
                                 n_diverged=int((b.status != "completed").sum()),
                                 mean_test_acc=float(acc.mean()) if len(acc) else math.nan,
                                 sd_test_acc=float(acc.std(ddof=1)) if len(acc) > 1 else math.nan))
        per_beta.sort(key=lambda r: r["beta"])
        ref = per_beta[0]
        ref_acc = ref["mean_test_acc"] if ref["n_diverged"] == 0 else math.nan
        breaking, censored, note = math.nan, False, ""
        if math.isnan(ref_acc):
            note = f"the smallest beta ({ref['beta']:g}) has no clean reference accuracy (diverged seed)"
        else:
            breaking, censored = per_beta[-1]["beta"], True
            for prev, r in zip(per_beta, per_beta[1:]):
                if r["n_diverged"] or math.isnan(r["mean_test_acc"]) or r["mean_test_acc"] < ref_acc - tolerance:
                    breaking, censored = prev["beta"], False
                    break
        for r in per_beta:
            drop = ref_acc - r["mean_test_acc"] if not math.isnan(ref_acc) else math.nan
            ok = (not r["n_diverged"]) and not math.isnan(drop) and drop <= tolerance
            rows.append({**r, "reference_acc": ref_acc, "drop": drop, "within_tolerance": bool(ok),
                         "breaking_beta": breaking, "censored": censored,
                         "note": note or (f"{r['n_diverged']} seed(s) diverged" if r["n_diverged"] else "")})
    return pd.DataFrame(rows, columns=BREAK_COLUMNS)


def breaking_markdown(summary: pd.DataFrame, tolerance: float) -> str:
    lines = ["# Paper B: breaking point of the eta/S scaling at several train-set sizes", "",
             f"eta and S scaled together by beta (equal eta/S). Breaking beta of a train size: the largest beta before "
             f"the first one whose mean final test accuracy is more than {100 * tolerance:g} points below the "
             "smallest beta's (or where a seed diverged); '>=' when no beta dropped.", ""]
    if summary.empty:
        return "\n".join(lines + ["_No breaking-point runs at this scale (role: breaking; see configs/paper.yaml)._",
                                  ""])
    out = pd.DataFrame({
        "train size": summary.train_size.map(lambda v: "full" if size_key(v) == math.inf else f"{int(v)}"),
        "experiment": summary.experiment, "beta": summary.beta.map(fmt), "eta": summary.lr.map(fmt),
        "S": summary.batch_size, "seeds": summary.n,
        "test acc (%)": [("" if math.isnan(m) else f"{100 * m:.2f}" + ("" if math.isnan(s) else f" ± {100 * s:.2f}"))
                         for m, s in zip(summary.mean_test_acc, summary.sd_test_acc)],
        "drop (points)": summary["drop"].map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}"),
        "within tolerance": summary.within_tolerance.map({True: "yes", False: "no"}),
        "breaking beta": [("" if math.isnan(b) else (">= " if c else "") + f"{b:g}")
                          for b, c in zip(summary.breaking_beta, summary.censored)],
        "note": summary.note})
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def write_breaking(status_paths, experiments: dict, tolerance: float, csv_path,
                   md_path, runs_csv_path=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule minima_breaking: the summary table, Markdown and the per-run table (claim B6
    bootstraps over its seeds); returns (runs, summary) for the figure."""
    runs = breaking_runs([RunRecord.read(s) for s in status_paths], experiments)
    summary = breaking_summary(runs, tolerance)
    if runs_csv_path is not None:
        atomic_write_text(runs_csv_path, runs.to_csv(index=False))
    atomic_write_text(csv_path, summary.to_csv(index=False))
    atomic_write_text(md_path, breaking_markdown(summary, tolerance))
    return runs, summary

