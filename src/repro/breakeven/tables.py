"""Paper D's tidy tables from the measurements (rule breakeven_tables).

From the per-run measurement files (:mod:`repro.breakeven.measure`): trajectories (one row
per run, snapshot and metric, missing values with the reason), a run summary (status,
threshold epoch and step = first snapshot with train accuracy >= the threshold), the maxima
over each trajectory with the epoch and global step of the maximum, their mean over seeds
beside the paper's
numbers, and the measurement cost. Also the sweeps the claims and figures compare: within an
experiment, runs sharing S and differing in lr form a learning-rate sweep; runs sharing lr
and differing in S form a batch-size sweep.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write_text
from ..runs import RunRecord

# metrics whose maximum over the trajectory the conjectures compare
MAX_METRICS = {
    "lambda1_K": "max_lambda1_K",
    "lambda1_H": "max_lambda1_H",
    "trace_K": "max_trace_K",
    "conditioning_K": "max_conditioning",
    "trace_over_lambda1_K": "max_trace_over_lambda1",
    # BN in eval mode (running statistics): shown beside the pre-registered train mode, no claim
    "lambda1_K_eval": "max_lambda1_K_eval",
    "lambda1_H_eval": "max_lambda1_H_eval",
}
RUN_KEYS = ["experiment", "run", "seed", "model", "lr", "batch_size"]


def _epoch_from_name(name: str) -> float:
    return float(name[1:])


def load_records(paths) -> list[dict]:
    """Snapshot records from run files ({"records": [...]}) or single-snapshot files."""
    records = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        records += data["records"] if "records" in data else [data]
    return records


def trajectories_frame(records: list[dict], runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy trajectories: one row per run, snapshot and metric; missing values with a note."""
    rows = []
    for rec in records:
        epoch = rec.get("epoch", _epoch_from_name(rec["snapshot"]))
        base = dict(experiment=rec["experiment"], run=rec["run"], snapshot=rec["snapshot"], epoch=epoch,
                    step=rec.get("step", np.nan))
        if rec["status"] != "ok":
            rows.append(dict(base, metric="all", value=np.nan, note=rec["reason"]))
            continue
        for name, value in rec["metrics"].items():
            rows.append(dict(base, metric=name, value=float(value), note=""))
        for name, reason in rec["missing"].items():
            rows.append(dict(base, metric=name, value=np.nan, note=reason))
    frame = pd.DataFrame(rows, columns=["experiment", "run", "snapshot", "epoch", "step", "metric", "value", "note"])
    info = runs[RUN_KEYS]
    out = frame.merge(info, on=["experiment", "run"], how="left")
    cols = RUN_KEYS + ["snapshot", "epoch", "step", "metric", "value", "note"]
    return out[cols].sort_values(["experiment", "run", "epoch", "metric"], kind="stable").reset_index(drop=True)


def threshold_epoch(acc: pd.Series, epochs: pd.Series, threshold: float) -> float:
    """First epoch whose accuracy reaches the threshold (NaN if never)."""
    hit = epochs[acc.to_numpy() >= threshold]
    return float(hit.min()) if len(hit) else math.nan


def threshold_step(acc: pd.DataFrame, threshold: float) -> float:
    """Global step of the first snapshot (in epoch order) whose accuracy reaches the threshold."""
    hit = acc[acc["value"].to_numpy() >= threshold]
    return float(hit.sort_values("epoch")["step"].iloc[0]) if len(hit) else math.nan


def runs_frame(run_rows: list[dict], statuses: dict, traj: pd.DataFrame) -> pd.DataFrame:
    """One row per run: status, threshold epoch and step, final accuracy, measured/missing
    snapshots, steps per epoch and whether the net has BatchNorm (the claims' sweep ids)."""
    out = []
    for info in run_rows:
        key = (info["experiment"], info["run"])
        st = statuses.get(key)  # a repro.runs.RunRecord, None if the run has no status.json
        t = traj[(traj.experiment == key[0]) & (traj.run == key[1])]
        acc = t[t.metric == "train_acc"].sort_values("epoch")
        thr = info["threshold_accuracy"]
        t_epoch = threshold_epoch(acc["value"], acc["epoch"], thr)
        n_missing = int((t.metric == "all").sum())
        notes = []
        status, stop_reason = (st.status, st.stop_reason) if st is not None else ("unknown", "")
        if status != "completed":
            notes.append(f"run {status}: {stop_reason}")
        if math.isnan(t_epoch):
            best = acc["value"].max() if len(acc) else math.nan
            notes.append(f"never reached {thr:.0%} train accuracy (best {best:.3f}); its maxima may lie "
                         "beyond the trained budget, so it is left out of the claims")
        if n_missing:
            notes.append(f"{n_missing} snapshot(s) missing")
        out.append(dict({k: info[k] for k in RUN_KEYS}, dataset=info["dataset"], momentum=info["momentum"],
                        epochs=info["epochs"], status=status,
                        stop_reason=stop_reason, threshold_accuracy=thr, threshold_epoch=t_epoch,
                        threshold_step=threshold_step(acc, thr),
                        steps_per_epoch=info.get("steps_per_epoch", math.nan),
                        batch_norm=bool(info.get("batch_norm", False)),
                        reached_threshold=not math.isnan(t_epoch),
                        final_train_acc=float(acc["value"].iloc[-1]) if len(acc) else math.nan,
                        n_snapshots=int(t.snapshot.nunique()), n_missing_snapshots=n_missing,
                        valid=(status == "completed") and not math.isnan(t_epoch),
                        note="; ".join(notes)))
    return pd.DataFrame(out)


def maxima_frame(traj: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Max over each trajectory of the conjectures' metrics, with the epoch and step of the maximum."""
    rows = []
    for _, run in runs.iterrows():
        t = traj[(traj.experiment == run.experiment) & (traj.run == run.run)]
        for metric, name in MAX_METRICS.items():
            m = t[(t.metric == metric) & t.value.notna()]
            if len(m):
                best = m.loc[m.value.idxmax()]
                value, at, at_step = float(best.value), float(best.epoch), float(best.step)
            else:
                value, at, at_step = math.nan, math.nan, math.nan
            at_end = bool(len(m) > 1 and at == m.epoch.max())
            note = run.note if not run.valid else ("" if len(m) else "no measured snapshot")
            if at_end and run.valid:
                note = "maximum at the last snapshot: a lower bound (the peak may come later)"
            rows.append(dict({k: run[k] for k in RUN_KEYS}, metric=name, value=value, epoch_of_max=at,
                             step_of_max=at_step, peak_at_end=at_end, threshold_epoch=run.threshold_epoch,
                             threshold_step=run.get("threshold_step", math.nan),
                             steps_per_epoch=run.get("steps_per_epoch", math.nan),
                             batch_norm=bool(run.get("batch_norm", False)),
                             reached_threshold=run.reached_threshold, valid=bool(run.valid and len(m)),
                             n_points=len(m), note=note))
    return pd.DataFrame(rows)


def maxima_summary(maxima: pd.DataFrame, runs: pd.DataFrame, reference: list[dict] | None = None) -> pd.DataFrame:
    """Mean and std over seeds of each maximum per (experiment, model, lr, S), valid runs only,
    with the paper's number beside it where the reference gives one (same dataset, model, lr, S)."""
    valid = maxima[maxima.valid]
    keys = ["experiment", "model", "lr", "batch_size", "metric"]
    agg = valid.groupby(keys).value.agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else math.nan,
                                        n_seeds="count").reset_index()
    dataset = runs.drop_duplicates("experiment").set_index("experiment").dataset
    agg["paper_value"] = math.nan
    for ref in reference or []:
        sel = ((agg.model == ref["model"]) & np.isclose(agg.lr, ref["lr"]) & (agg.batch_size == ref["batch_size"])
               & (agg.metric == ref["metric"]) & (agg.experiment.map(dataset) == ref["dataset"]))
        agg.loc[sel, "paper_value"] = ref["value"]
    return agg


def _fmt(mean, std) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


def maxima_markdown(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# Break-even point: maxima over the trajectory", "",
             "Mean ± std over seeds (runs that completed and reached the threshold accuracy); "
             "λ₁ᴷ, Tr(K), λ*ᴷ/λ₁ᴷ from mini-batch gradients as configured, λ₁ᴴ on the Hessian subset. "
             "`paper` = the paper's number for the same model, η and S on its dataset (paper scale only).", ""]
    if len(summary):
        wide = summary.assign(cell=[_fmt(m, s) for m, s in zip(summary["mean"], summary["std"])])
        table = wide.pivot_table(index=["experiment", "model", "lr", "batch_size"], columns="metric",
                                 values="cell", aggfunc="first").reset_index()
        ref = summary.dropna(subset=["paper_value"])
        for metric in sorted(ref.metric.unique()):
            col = ref[ref.metric == metric].set_index(["experiment", "model", "lr", "batch_size"]).paper_value
            table[f"paper {metric}"] = [col.get(tuple(r), "") for r in
                                        table[["experiment", "model", "lr", "batch_size"]].itertuples(index=False)]
        thr = runs.groupby(["experiment", "lr", "batch_size"]).threshold_epoch.mean()
        table["threshold epoch"] = [f"{thr.get((e, lr, bs), math.nan):.3g}" for e, lr, bs in
                                    zip(table.experiment, table.lr, table.batch_size)]
        lines.append(table.to_markdown(index=False))
    else:
        lines.append("_No valid run: nothing to summarise._")
    lines += ["", "## Runs", "", runs[RUN_KEYS + ["status", "threshold_epoch", "final_train_acc", "valid", "note"]]
              .to_markdown(index=False), ""]
    return "\n".join(lines)


def cost_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for rec in records:
        if rec["status"] == "ok":
            rows.append(dict(experiment=rec["experiment"], run=rec["run"], snapshot=rec["snapshot"],
                             n_parameters=rec.get("n_parameters"), **rec["cost"]))
    return pd.DataFrame(rows)


def build_tables(metric_paths, status_paths, run_rows: list[dict], reference, out: dict) -> dict:
    """All tables of the paper, written to the paths in `out` (keys trajectories, trajectories_md,
    runs, maxima, maxima_md, cost). Returns the frames."""
    records = load_records(metric_paths)
    statuses = {record.key: record for record in map(RunRecord.read, status_paths)}
    info = pd.DataFrame(run_rows)
    traj = trajectories_frame(records, info)
    runs = runs_frame(run_rows, statuses, traj)
    maxima = maxima_frame(traj, runs)
    summary = maxima_summary(maxima, runs, reference)
    cost = cost_frame(records)
    atomic_write_text(out["trajectories"], traj.to_csv(index=False))
    wide = traj[traj.metric != "all"].pivot_table(index=RUN_KEYS + ["epoch"], columns="metric", values="value",
                                                  aggfunc="first").reset_index()
    atomic_write_text(out["trajectories_md"], "# Break-even point: trajectories\n\n"
                      + (wide.to_markdown(index=False, floatfmt=".4g") if len(wide) else "_empty_") + "\n")
    atomic_write_text(out["runs"], runs.to_csv(index=False))
    atomic_write_text(out["maxima"], maxima.to_csv(index=False))
    atomic_write_text(out["maxima_md"], maxima_markdown(summary, runs))
    atomic_write_text(out["cost"], cost.to_csv(index=False))
    return dict(trajectories=traj, runs=runs, maxima=maxima, summary=summary, cost=cost)


def find_sweeps(runs: pd.DataFrame) -> list[dict]:
    """Learning-rate sweeps (same experiment and S, >= 2 lr) and batch-size sweeps (same lr, >= 2 S)."""
    sweeps = []
    for exp, group in runs.groupby("experiment", sort=True):
        model = group.model.iloc[0]
        for bs, g in group.groupby("batch_size"):
            if g.lr.nunique() >= 2:
                sweeps.append(dict(kind="lr", experiment=exp, model=model, fixed=bs,
                                   values=sorted(g.lr.unique()), name=f"{model} η sweep, S={bs}"))
        for lr, g in group.groupby("lr"):
            if g.batch_size.nunique() >= 2:
                sweeps.append(dict(kind="batch_size", experiment=exp, model=model, fixed=lr,
                                   values=sorted(g.batch_size.unique()), name=f"{model} S sweep, η={lr:g}"))
    return sweeps


def sweep_runs(maxima_or_runs: pd.DataFrame, sweep: dict) -> pd.DataFrame:
    other = "batch_size" if sweep["kind"] == "lr" else "lr"
    sel = (maxima_or_runs.experiment == sweep["experiment"]) & np.isclose(maxima_or_runs[other], sweep["fixed"])
    return maxima_or_runs[sel]
