"""Paper A tables: every run's measurements -> tidy tables and Table 1 (rule iterative_tables).

Tables (results/tables/iterative/), long format with the id columns
``experiment, run, seed, label, variant`` (plan.ID_COLUMNS):

    blocks      split, block, stage, position, metric (cosine, norm_ratio, f_norm, h_norm,
                grad_norm), value                                      [final model]
    drop        split, kind (intact | drop | shuffle), block, stage, position, shuffle,
                metric (accuracy, loss), value                         [final model]
    borderline  split, group (borderline | correct | all), n_examples, offset (head
                position from the last: -K+1 .. 0), metric (loss, accuracy, entropy), value
    unroll      split, group, n_examples, scale, step, metric (loss, accuracy, entropy,
                h_norm), value
    heads       epoch, split, block, position (in the last stage), metric (accuracy,
                loss), value                                           [every snapshot]
    init        block, stage, position (-1 for per-stage rows), metric (in_norm, out_norm,
                f_norm, grad_in, grad_out; per stage: growth, grad_ratio, span), value
                                                                       [snapshot e0]
    curves      epoch, step, split, metric (loss, error), value        [history.csv]
    runs        one row per run: status, reason, dataset, architecture, params
    table1      experiment, label, variant, architecture, params, dataset, seeds,
                train_error / test_error mean and sd in %  (+ .md, .tex)

A run that did not complete gets one row per table with metric ``skipped`` and the reason
in ``note``; a value that comes out non-finite is written as missing with a reason in
``note``, never as a number. The helpers for both live here, the measurement jobs use them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write_text
from ..runs import RunRecord
from .plan import ID_COLUMNS, TABLES

# ---------------------------------------------------------------- tidy-frame helpers


def clean_note(frame: pd.DataFrame) -> pd.DataFrame:
    """`note` as strings, "" where empty (CSV readers turn empty notes into NaN)."""
    if "note" not in frame:
        frame["note"] = ""
    frame["note"] = frame["note"].astype(object).where(frame["note"].notna(), "")
    return frame


def with_ids(frame: pd.DataFrame, ids: dict) -> pd.DataFrame:
    """`frame` with the run's id columns in front."""
    frame = frame.copy()
    for i, (k, v) in enumerate(ids.items()):
        frame.insert(i, k, v)
    return clean_note(frame)


def skipped(ids: dict, reason: str) -> pd.DataFrame:
    """The one row a table gets for a run that was not measured, with the reason."""
    return pd.DataFrame([dict(ids, metric="skipped", value=np.nan, note=reason)])


def mark_missing(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    """Non-finite values become NaN with a reason in `note` (never a number)."""
    frame = clean_note(frame.copy())
    bad = ~np.isfinite(frame["value"].astype(float))
    frame.loc[bad, "value"] = np.nan
    frame.loc[bad & (frame["note"] == ""), "note"] = reason
    return frame


def read_status(path) -> tuple[bool, str]:
    """(completed?, reason) from a run's status.json (repro.runs.RunRecord)."""
    record = RunRecord.read(path)
    if record.completed:
        return True, ""
    return False, f"run {record.status}: {record.stop_reason}; skipped"


# ---------------------------------------------------------------- per-run tables


def curves_frame(history_path, record: dict) -> pd.DataFrame:
    hist = pd.read_csv(history_path)
    rows = []
    for split in ("train", "test"):
        part = hist[["epoch", "step"]].copy()
        for metric, values in (("loss", hist[f"{split}_loss"]), ("error", 100 * (1 - hist[f"{split}_acc"]))):
            rows.append(part.assign(split=split, metric=metric, value=values.to_numpy()))
    frame = pd.concat(rows, ignore_index=True)
    frame = mark_missing(frame, "non-finite (diverged)")
    return with_ids(frame, {k: record[k] for k in ID_COLUMNS})


def runs_frame(records: list[dict], status_paths) -> pd.DataFrame:
    rows = []
    for record, path in zip(records, status_paths):
        run = RunRecord.read(path)
        final = run.final
        rows.append(dict(record, status=run.status, stop_reason=run.stop_reason,
                         epochs_completed=run.epochs_completed,
                         train_error=100 * (1 - final["train_acc"]) if "train_acc" in final else np.nan,
                         test_error=100 * (1 - final["test_acc"]) if "test_acc" in final else np.nan))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- Table 1


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Train / test error (%) per (experiment, label): mean and sd over completed seeds."""
    rows = []
    for (exp, label), g in runs.groupby(["experiment", "label"], sort=False):
        done = g[g["status"] == "completed"]
        first = g.iloc[0]
        other = ", ".join(sorted(set(g["status"].astype(str)) - {"completed"}))
        note = "" if len(done) == len(g) else f"{len(g) - len(done)} of {len(g)} runs not completed ({other}; left out)"
        rows.append(dict(experiment=exp, label=label, variant=first["variant"], architecture=first["architecture"],
                         params=first["params"], dataset=first["dataset"], seeds=len(done),
                         train_error_mean=done["train_error"].mean(), train_error_sd=done["train_error"].std(ddof=1),
                         test_error_mean=done["test_error"].mean(), test_error_sd=done["test_error"].std(ddof=1),
                         note=note))
    return pd.DataFrame(rows)


def _pm(mean, sd) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}" if not np.isfinite(sd) else f"{mean:.2f} ± {sd:.2f}"


def table1_markdown(t1: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "Model": t1["experiment"] + " / " + t1["label"], "Variant": t1["variant"], "Architecture": t1["architecture"],
        "Dataset": t1["dataset"], "Params": t1["params"], "Seeds": t1["seeds"],
        "Train error %": [_pm(m, s) for m, s in zip(t1["train_error_mean"], t1["train_error_sd"])],
        "Test error %": [_pm(m, s) for m, s in zip(t1["test_error_mean"], t1["test_error_sd"])]})
    if "note" in t1 and t1["note"].fillna("").astype(str).str.len().any():  # why a row has no numbers
        shown["Note"] = t1["note"].fillna("").astype(str).to_numpy()
    return ("# Table 1 (paper A): train / test error, mean ± sd over seeds\n\n"
            + shown.to_markdown(index=False) + "\n")


def table1_latex(t1: pd.DataFrame) -> str:
    def esc(s):
        return str(s).replace("_", r"\_").replace("%", r"\%")
    lines = [r"\begin{tabular}{lllrrll}", r"\toprule",
             r"Model & Variant & Dataset & Params & Seeds & Train error (\%) & Test error (\%) \\", r"\midrule"]
    for _, r in t1.iterrows():
        tr = _pm(r.train_error_mean, r.train_error_sd).replace("±", r"$\pm$")
        te = _pm(r.test_error_mean, r.test_error_sd).replace("±", r"$\pm$")
        lines.append(f"{esc(r.experiment + ' / ' + r.label)} & {esc(r.variant)} & {esc(r.dataset)} & "
                     f"{int(r.params)} & {int(r.seeds)} & {tr} & {te} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- aggregation


def _read_all(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, keep_default_na=True) for p in paths]
    frames = [f for f in frames if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS + ["metric", "value"])
    return clean_note(out)


def seed_summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean, sd and count over seeds of `value` for each combination of `keys`."""
    f = frame[frame["metric"] != "skipped"]
    g = f.groupby(keys, dropna=False, sort=True)["value"]
    return g.agg(mean="mean", sd="std", seeds="count").reset_index()


SUMMARY_KEYS = {
    "blocks": ["experiment", "label", "variant", "split", "metric", "block", "stage", "position"],
    "drop": ["experiment", "label", "variant", "split", "metric", "kind", "block", "stage", "position"],
    "borderline": ["experiment", "label", "variant", "split", "group", "metric", "offset"],
    "unroll": ["experiment", "label", "variant", "split", "group", "scale", "metric", "step"],
    "heads": ["experiment", "label", "variant", "split", "metric", "epoch", "position"],
    "init": ["experiment", "label", "variant", "metric", "stage", "block"],
    "curves": ["experiment", "label", "variant", "split", "metric", "epoch"],
}


def aggregate(per_run: dict[str, list], histories: list, statuses: list, records: list[dict], out_dir) -> dict:
    """Collect every run's measurements into the tables of results/tables/iterative/.

    Writes <table>.csv (tidy, every seed) and <table>.md (seed means ± sd) for every
    table, plus table1.md and table1.tex. `records` come from measure.run_record.
    Returns the frames.
    """
    out_dir = Path(out_dir)
    tables = {name: _read_all(paths) for name, paths in per_run.items()}
    runs = runs_frame(records, statuses)
    tables["runs"] = runs
    tables["curves"] = pd.concat([curves_frame(h, r) for h, r in zip(histories, records)], ignore_index=True)
    tables["table1"] = table1(runs)
    for name, frame in tables.items():
        atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False))
        if name in SUMMARY_KEYS:
            summary = seed_summary(frame, [k for k in SUMMARY_KEYS[name] if k in frame])
            skipped_rows = frame[frame["metric"] == "skipped"]
            text = f"# Paper A: {name} (mean ± sd over seeds; tidy per-seed values in {name}.csv)\n\n"
            if len(skipped_rows):
                text += "Skipped runs: " + "; ".join(f"{r.experiment}/{r.run} ({r.note})"
                                                     for r in skipped_rows.itertuples()) + "\n\n"
            text += summary.to_markdown(index=False, floatfmt=".4g") + "\n"
            atomic_write_text(out_dir / f"{name}.md", text)
    atomic_write_text(out_dir / "runs.md", "# Paper A: runs\n\n" + runs.to_markdown(index=False, floatfmt=".4g") + "\n")
    atomic_write_text(out_dir / "table1.md", table1_markdown(tables["table1"]))
    atomic_write_text(out_dir / "table1.tex", table1_latex(tables["table1"]))
    return tables


def read_tables(table_dir) -> dict[str, pd.DataFrame]:
    """The tables `aggregate` wrote, by name (TABLES)."""
    out = {}
    for name in TABLES:
        frame = pd.read_csv(Path(table_dir) / f"{name}.csv")
        out[name] = clean_note(frame) if "note" in frame else frame
    return out
