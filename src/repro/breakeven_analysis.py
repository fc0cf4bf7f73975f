r"""Paper D (the break-even point): curvature along every trajectory, tables, figures, claims.

Pure functions for the Snakemake scripts of rules/breakeven.smk; everything takes plain
arguments (dicts, paths, DataFrames) and can be used without Snakemake.

Pipeline
--------
1-2. The probe subsets (one job per experiment) and the metrics of every snapshot of a run
   (one job per run): :mod:`repro.breakeven_measure`, which says what each metric is.
   This module is imported while the workflow is parsed, so it never imports torch.
3. ``build_tables``: tidy trajectories (one row per run, snapshot and metric), a run summary
   (status, threshold epoch = first snapshot epoch with train accuracy >= threshold), maxima
   over each trajectory (with the epoch of the maximum), and the measurement cost.
4. ``breakeven_claims``: Conjectures 1 and 2 and the early peaks (D1-D3), thresholds fixed
   below before any result was seen.
5. ``plot_*``: seaborn figures, PNG and PDF.

Sweeps are found from the run table: within an experiment, runs sharing S and differing in
lr form a learning-rate sweep; runs sharing lr and differing in S form a batch-size sweep.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import yaml

PAPER = "breakeven"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "breakeven.schema.yaml"

# metrics whose maximum over the trajectory the conjectures compare
MAX_METRICS = {
    "lambda1_K": "max_lambda1_K",
    "lambda1_H": "max_lambda1_H",
    "trace_K": "max_trace_K",
    "conditioning_K": "max_conditioning",
    "trace_over_lambda1_K": "max_trace_over_lambda1",
}
LABELS = {
    "lambda1_K": r"$\lambda_1^K$",
    "lambda1_H": r"$\lambda_1^H$",
    "trace_K": r"Tr$(K)$",
    "conditioning_K": r"$\lambda_*^K/\lambda_1^K$",
    "trace_over_lambda1_K": r"Tr$(K)/\lambda_1^K$",
    "train_acc": "train accuracy",
    "g_over_gtop": r"$\|g\|/\|g_5\|$",
    "alpha_star": r"$\alpha^*$",
    "gamma_norm": r"$\|\gamma\|$ (last BN)",
    "lr_lambda1_H": r"$\eta\,\lambda_1^H$",
}
RUN_KEYS = ["experiment", "run", "seed", "model", "lr", "batch_size"]

# ---- claims: thresholds fixed a priori (before any result was seen) ----------------------
# D1/D2: the fraction of run pairs of a sweep (differing in the swept value, any seeds)
# ordered as the conjecture says; 0.8 = Kendall's tau >= 0.6 over those pairs, a strong
# monotone association that still tolerates seed noise between neighbouring values.
MIN_ORDERED_FRACTION = 0.8
# D3: a peak is "early" when it comes no later than max(2 t, t + 1 epoch), t the threshold
# epoch (the paper: peaks come near the 60%-accuracy epoch); it must hold for >= 80% of runs.
MIN_EARLY_FRACTION = 0.8


def _write_text(path, text: str) -> None:
    from .io import atomic_write_text  # repro.io imports torch: only when a job writes

    atomic_write_text(path, text)


def _claims():
    from . import claims  # imports repro.io (torch): loaded by the claim job only

    return claims


class BreakevenConfigError(ValueError):
    """A breakeven setting that is not allowed, with the key and what is allowed."""


# ======================================================================== settings


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment_settings(paper_settings: dict, analysis: dict | None, where: str = "analysis") -> dict:
    """The paper-wide settings (defaults filled) overridden by an experiment's `analysis:`.

    The override is checked against $defs/experiment_analysis and the merged result against
    the paper schema; any problem is a BreakevenConfigError naming the key.
    """
    schema = load_schema()
    analysis = dict(analysis or {})
    sub = {"$defs": schema["$defs"], "$ref": "#/$defs/experiment_analysis"}
    _validate(sub, analysis, where)
    label = analysis.pop("label", None)
    merged = _deep_merge(paper_settings, analysis)
    _validate(schema, merged, where)
    merged["label"] = label
    return merged


def _validate(schema: dict, data: dict, where: str) -> None:
    try:
        jsonschema.Draft202012Validator(schema).validate(data)
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        raise BreakevenConfigError(f"{where}{'.' + path if path else ''}: {exc.message}") from None


def probe_params(settings: dict) -> dict:
    """What defines the probe subsets of an experiment (params of rule breakeven_probe)."""
    cov = settings["covariance"]
    return dict(probe_seed=settings["probe_seed"], accuracy_examples=settings["accuracy_examples"],
                hessian_fraction=settings["hessian"]["fraction"],
                hessian_max_examples=settings["hessian"]["max_examples"],
                covariance_mode=cov["mode"], covariance_batches=cov["n_batches"],
                covariance_batch_size=cov["batch_size"], covariance_examples=cov["n_examples"])


def measure_params(settings: dict) -> dict:
    """What defines a snapshot measurement besides the probe (params of rule breakeven_snapshot)."""
    h = settings["hessian"]
    return dict(hessian_k=h["k"], hessian_tol=h["tol"], hessian_batch_size=h["batch_size"],
                covariance_top=settings["covariance"]["top"], alpha=dict(settings["alpha"]))


def model_label(cfg: dict, settings: dict | None = None) -> str:
    """SimpleCNN / SimpleCNN-BN (or the model name), unless the experiment sets a label."""
    if settings and settings.get("label"):
        return settings["label"]
    model = cfg["model"]
    if model["name"] == "simplecnn":
        return "SimpleCNN-BN" if model.get("batch_norm") else "SimpleCNN"
    return {"mlp": "MLP", "vgg": "VGG-BN", "resnet": "ResNet"}.get(model["name"], model["name"])


def run_info(cfg: dict, settings: dict, snapshot_epochs: list[float]) -> dict:
    """One row of the run table the table rule needs (from a resolved run config)."""
    tr = cfg["train"]
    return dict(experiment=cfg["experiment"], run=cfg["run"], seed=cfg["seed"], dataset=cfg["dataset"],
                model=model_label(cfg, settings), lr=float(tr["lr"]), batch_size=int(tr["batch_size"]),
                momentum=float(tr.get("momentum", 0.0)), epochs=int(tr["epochs"]),
                snapshots=[float(e) for e in snapshot_epochs],
                threshold_accuracy=float(settings["threshold_accuracy"]))


def run_rows(runs: dict, keys, settings: dict) -> list[dict]:
    """run_info of each (experiment, run) in keys (RUNS is repro.config.expand_runs' table)."""
    from .config import snapshot_epochs

    return [run_info(runs[key], settings[key[0]], snapshot_epochs(runs[key])) for key in keys]


def metric_paths(keys, base: str) -> list[str]:
    """The measurement file of every (experiment, run) in keys: {base}/{experiment}/{run}.json."""
    return [f"{base}/{e}/{r}.json" for e, r in keys]


def dataset_spec(runs: dict, experiment: str) -> dict:
    """The data an experiment's runs train on (dataset, test_fraction, train_size)."""
    cfg = next(cfg for (e, _), cfg in runs.items() if e == experiment)
    return {k: cfg[k] for k in ("dataset", "test_fraction", "train_size") if k in cfg}


# ======================================================================== tables


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


def runs_frame(run_rows: list[dict], statuses: dict, traj: pd.DataFrame) -> pd.DataFrame:
    """One row per run: status, threshold epoch, final accuracy, measured/missing snapshots."""
    out = []
    for info in run_rows:
        key = (info["experiment"], info["run"])
        st = statuses.get(key, {})
        t = traj[(traj.experiment == key[0]) & (traj.run == key[1])]
        acc = t[t.metric == "train_acc"].sort_values("epoch")
        thr = info["threshold_accuracy"]
        t_epoch = threshold_epoch(acc["value"], acc["epoch"], thr)
        n_missing = int((t.metric == "all").sum())
        notes = []
        if st.get("status") != "completed":
            notes.append(f"run {st.get('status', 'unknown')}: {st.get('stop_reason', '')}")
        if math.isnan(t_epoch):
            best = acc["value"].max() if len(acc) else math.nan
            notes.append(f"never reached {thr:.0%} train accuracy (best {best:.3f}); its maxima may lie "
                         "beyond the trained budget, so it is left out of the claims")
        if n_missing:
            notes.append(f"{n_missing} snapshot(s) missing")
        out.append(dict({k: info[k] for k in RUN_KEYS}, dataset=info["dataset"], momentum=info["momentum"],
                        epochs=info["epochs"], status=st.get("status", "unknown"),
                        stop_reason=st.get("stop_reason", ""), threshold_accuracy=thr, threshold_epoch=t_epoch,
                        reached_threshold=not math.isnan(t_epoch),
                        final_train_acc=float(acc["value"].iloc[-1]) if len(acc) else math.nan,
                        n_snapshots=int(t.snapshot.nunique()), n_missing_snapshots=n_missing,
                        valid=(st.get("status") == "completed") and not math.isnan(t_epoch),
                        note="; ".join(notes)))
    return pd.DataFrame(out)


def maxima_frame(traj: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Max over each trajectory of the conjectures' metrics, with the epoch of the maximum."""
    rows = []
    for _, run in runs.iterrows():
        t = traj[(traj.experiment == run.experiment) & (traj.run == run.run)]
        for metric, name in MAX_METRICS.items():
            m = t[(t.metric == metric) & t.value.notna()]
            if len(m):
                best = m.loc[m.value.idxmax()]
                value, at = float(best.value), float(best.epoch)
            else:
                value, at = math.nan, math.nan
            at_end = bool(len(m) > 1 and at == m.epoch.max())
            note = run.note if not run.valid else ("" if len(m) else "no measured snapshot")
            if at_end and run.valid:
                note = "maximum at the last snapshot: a lower bound (the peak may come later)"
            rows.append(dict({k: run[k] for k in RUN_KEYS}, metric=name, value=value, epoch_of_max=at,
                             peak_at_end=at_end, threshold_epoch=run.threshold_epoch,
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
    statuses = {}
    for p in status_paths:  # results/runs/{experiment}/{run}/status.json
        statuses[(Path(p).parent.parent.name, Path(p).parent.name)] = json.loads(Path(p).read_text())
    info = pd.DataFrame(run_rows)
    traj = trajectories_frame(records, info)
    runs = runs_frame(run_rows, statuses, traj)
    maxima = maxima_frame(traj, runs)
    summary = maxima_summary(maxima, runs, reference)
    cost = cost_frame(records)
    _write_text(out["trajectories"], traj.to_csv(index=False))
    wide = traj[traj.metric != "all"].pivot_table(index=RUN_KEYS + ["epoch"], columns="metric", values="value",
                                                  aggfunc="first").reset_index()
    _write_text(out["trajectories_md"], "# Break-even point: trajectories\n\n"
                         + (wide.to_markdown(index=False, floatfmt=".4g") if len(wide) else "_empty_") + "\n")
    _write_text(out["runs"], runs.to_csv(index=False))
    _write_text(out["maxima"], maxima.to_csv(index=False))
    _write_text(out["maxima_md"], maxima_markdown(summary, runs))
    _write_text(out["cost"], cost.to_csv(index=False))
    return dict(trajectories=traj, runs=runs, maxima=maxima, summary=summary, cost=cost)


# ======================================================================== sweeps and claims


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


def ordered_pairs(values: np.ndarray, metric: np.ndarray, direction: int) -> tuple[int, int, list]:
    """(pairs ordered as predicted, pairs compared, violating pairs) over runs with different
    swept values; direction +1: the metric should rise with the value, -1: fall. Ties count
    as not ordered."""
    good, total, bad = 0, 0, []
    for i, j in itertools.combinations(range(len(values)), 2):
        if values[i] == values[j]:
            continue
        if values[i] > values[j]:
            i, j = j, i
        total += 1
        if direction * (metric[j] - metric[i]) > 0:
            good += 1
        else:
            bad.append((values[i], metric[i], values[j], metric[j]))
    return good, total, bad


def _monotone_claim(cid, statement, maxima, runs, sweeps, kind, metric, direction):
    Claim, compare = _claims().Claim, _claims().compare
    good = total = 0
    parts, excluded, monotone, seeds = [], [], [], []
    for sw in (s for s in sweeps if s["kind"] == kind):
        rows = sweep_runs(maxima[maxima.metric == metric], sw)
        excluded += [f"{r.run} ({r.note})" for r in rows[~rows.valid].itertuples()]
        rows = rows[rows.valid]
        g, t, bad = ordered_pairs(rows[kind].to_numpy(dtype=float), rows.value.to_numpy(), direction)
        good, total = good + g, total + t
        means = rows.groupby(kind).value.mean()
        monotone.append(bool(len(means) >= 2 and (direction * np.diff(means.to_numpy()) > 0).all()))
        seeds.append(int(rows.groupby(kind).size().min()) if len(rows) else 0)
        trend = ", ".join(f"{v:g}: {m:.4g}" for v, m in means.items())
        at_init = int((rows.epoch_of_max == 0).sum())
        at_end = rows.run[rows.peak_at_end.astype(bool)].tolist() if "peak_at_end" in rows else []
        parts.append(f"{sw['name']} [{sw['experiment']}]: {g}/{t} ordered; seed means {trend}"
                     + (f"; {at_init} run(s) peak at initialisation (the same network for every "
                        f"value of a seed, so their maxima tie)" if at_init else "")
                     + (f"; maximum at the last snapshot (a lower bound) in {', '.join(at_end)}" if at_end else ""))
    value = good / total if total else math.nan
    verdict = compare(value, ">=", MIN_ORDERED_FRACTION)
    note = "; ".join(parts) or "no sweep of this kind"
    if excluded:
        note += "; left out: " + "; ".join(excluded)
    if verdict == "fails":
        n_seeds = min(seeds, default=0)
        why = (f"the seed means are ordered in every sweep, but with {n_seeds} seed(s) per value single runs "
               "break the pairwise order" if all(monotone) else
               f"the seed means are ordered in {sum(monotone)} of {len(monotone)} sweep(s) ({n_seeds} seed(s) "
               "per value)")
        note += (f"; fails at our scale: {why}; the paper's setting (CIFAR-10, longer training, "
                 "configs/paper.yaml) has not been run")
    arrow = "falls" if direction < 0 else "rises"
    return Claim(cid, PAPER, statement,
                 f"fraction of run pairs (differing in {'η' if kind == 'lr' else 'S'}) where the max {arrow}",
                 f">= {MIN_ORDERED_FRACTION}", value, verdict, note)


def _early_claim(cid, statement, maxima, metric):
    Claim, compare = _claims().Claim, _claims().compare
    rows = maxima[(maxima.metric == metric) & maxima.valid]
    late = []
    n_early = 0
    for r in rows.itertuples():
        limit = max(2 * r.threshold_epoch, r.threshold_epoch + 1)
        if r.epoch_of_max <= limit:
            n_early += 1
        else:
            late.append(f"{r.experiment}/{r.run}: peak at epoch {r.epoch_of_max:g}, threshold epoch "
                        f"{r.threshold_epoch:g}")
    value = n_early / len(rows) if len(rows) else math.nan
    verdict = compare(value, ">=", MIN_EARLY_FRACTION)
    n_invalid = int((~maxima[maxima.metric == metric].valid).sum())
    note = f"{n_early}/{len(rows)} valid runs peak early"
    if late:
        note += "; late: " + "; ".join(late)
    if n_invalid:
        note += f"; {n_invalid} run(s) left out (diverged or never reached the threshold accuracy)"
    return Claim(cid, PAPER, statement, "fraction of runs whose peak epoch <= max(2 t, t + 1), t = threshold epoch",
                 f">= {MIN_EARLY_FRACTION}", value, verdict, note)


def breakeven_claims(maxima: pd.DataFrame, runs: pd.DataFrame) -> list:
    """Claims D1-D3 (Conjectures 1 and 2, early peaks) from the maxima and run tables."""
    sweeps = find_sweeps(runs)
    spec = [
        ("D1a", "Conjecture 1: the maximum of λ₁ᴷ along the trajectory falls as η rises", "lr", "max_lambda1_K", -1),
        ("D1b", "Conjecture 1: the maximum of λ₁ᴴ along the trajectory falls as η rises", "lr", "max_lambda1_H", -1),
        ("D1c", "Conjecture 1: the maximum of λ₁ᴷ along the trajectory rises as S rises", "batch_size",
         "max_lambda1_K", +1),
        ("D1d", "Conjecture 1: the maximum of λ₁ᴴ along the trajectory rises as S rises", "batch_size",
         "max_lambda1_H", +1),
        ("D2a", "Conjecture 2: the maximum of λ*ᴷ/λ₁ᴷ rises as η rises", "lr", "max_conditioning", +1),
        ("D2b", "Conjecture 2: the maximum of Tr(K) falls as η rises", "lr", "max_trace_K", -1),
        ("D2c", "Conjecture 2: the maximum of λ*ᴷ/λ₁ᴷ falls as S rises", "batch_size", "max_conditioning", -1),
        ("D2d", "Conjecture 2: the maximum of Tr(K) rises as S rises", "batch_size", "max_trace_K", +1),
        ("D2e", "Submission's proxy: the maximum of Tr(K)/λ₁ᴷ rises as η rises", "lr", "max_trace_over_lambda1", +1),
    ]
    claims = [_monotone_claim(cid, st, maxima, runs, sweeps, kind, metric, d) for cid, st, kind, metric, d in spec]
    claims.append(_early_claim("D3a", "λ₁ᴷ peaks early: before or near the epoch reaching the threshold accuracy",
                               maxima, "max_lambda1_K"))
    claims.append(_early_claim("D3b", "λ₁ᴴ peaks early: before or near the epoch reaching the threshold accuracy",
                               maxima, "max_lambda1_H"))
    return claims


def write_claims(maxima_path, runs_path, out_path) -> pd.DataFrame:
    maxima, runs = pd.read_csv(maxima_path), pd.read_csv(runs_path)
    frame = _claims().to_frame(breakeven_claims(maxima, runs))
    _write_text(out_path, frame.to_csv(index=False))
    return frame


# ======================================================================== figures


def _palettes(runs: pd.DataFrame) -> dict:
    """One colour per learning rate and per batch size, the same in every figure."""
    import seaborn as sns

    lrs = sorted(runs.lr.unique())
    bss = sorted(runs.batch_size.unique())
    return dict(lr={f"η={v:g}": c for v, c in zip(lrs, sns.color_palette("viridis", len(lrs)))},
                batch_size={f"S={v:g}": c for v, c in zip(bss, sns.color_palette("flare", len(bss)))},
                model={m: c for m, c in zip(sorted(runs.model.unique()), sns.color_palette("colorblind"))})


def _hue(kind: str, value) -> str:
    return f"η={value:g}" if kind == "lr" else f"S={value:g}"


def _save(fig, png, pdf) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _sweep_panel(ax, traj, runs, sweep, metric, palette, log=True, show_threshold=True) -> None:
    import seaborn as sns

    kind = sweep["kind"]
    t = sweep_runs(traj[traj.metric == metric].dropna(subset=["value"]), sweep)
    if t.empty:
        _empty(ax, "no measured value")
        return
    t = t.assign(hue=[_hue(kind, v) for v in t[kind]])
    order = [_hue(kind, v) for v in sweep["values"]]
    sns.lineplot(data=t, x="epoch", y="value", hue="hue", hue_order=order, palette=palette[kind], ax=ax,
                 errorbar=("pi", 100), marker="o", markersize=3, linewidth=1.2)
    if show_threshold:
        r = sweep_runs(runs, sweep)
        for v, g in r.groupby(kind):
            e = g.threshold_epoch.mean()
            if not math.isnan(e):
                ax.axvline(e, color=palette[kind][_hue(kind, v)], linestyle=":", linewidth=1)
    if log and (t.value > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.legend(title=None, fontsize=7)


def plot_trajectories(traj: pd.DataFrame, runs: pd.DataFrame, metrics, png, pdf, title: str) -> None:
    """Rows: metrics; columns: sweeps. Lines = seed mean, band = range over seeds, dotted
    vertical lines = mean threshold epoch per swept value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = find_sweeps(runs)
    pal = _palettes(runs)
    ncol = max(1, len(sweeps))
    fig, axes = plt.subplots(len(metrics), ncol, figsize=(4.2 * ncol, 2.8 * len(metrics)), squeeze=False)
    for j in range(ncol):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            if not sweeps:
                _empty(ax, "no sweep in the configuration")
                continue
            _sweep_panel(ax, traj, runs, sweeps[j], metric, pal, log=metric not in ("train_acc",))
            if metric == "train_acc":
                ax.axhline(runs.threshold_accuracy.iloc[0], color="grey", linestyle="--", linewidth=0.8)
            if i == 0:
                ax.set_title(f"{sweeps[j]['name']}\n[{sweeps[j]['experiment']}]", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def plot_early_phase(traj: pd.DataFrame, runs: pd.DataFrame, png, pdf) -> None:
    """Per learning-rate sweep: lambda1_H against lambda1_K along the trajectory, alpha* and
    lr*lambda1_H against epoch in the early phase (up to twice the latest threshold epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sweeps = [s for s in find_sweeps(runs) if s["kind"] == "lr"] or find_sweeps(runs)
    pal = _palettes(runs)
    nrow = max(1, len(sweeps))
    fig, axes = plt.subplots(nrow, 3, figsize=(13, 3.3 * nrow), squeeze=False)
    if not sweeps:
        for ax in axes[0]:
            _empty(ax, "no sweep in the configuration")
    for i, sw in enumerate(sweeps):
        kind = sw["kind"]
        r = sweep_runs(runs, sw)
        horizon = r.threshold_epoch.max()
        horizon = max(1.0, 2 * horizon) if not math.isnan(horizon) else r.epochs.max()
        t = sweep_runs(traj, sw).dropna(subset=["value"])
        t = t[t.epoch <= horizon].assign(hue=lambda d: [_hue(kind, v) for v in d[kind]])
        order = [_hue(kind, v) for v in sw["values"]]
        wide = t[t.metric.isin(["lambda1_K", "lambda1_H"])].pivot_table(
            index=["run", "hue", "epoch"], columns="metric", values="value").reset_index()
        ax = axes[i][0]
        if {"lambda1_K", "lambda1_H"} <= set(wide.columns) and len(wide):
            for (run, hue), g in wide.sort_values("epoch").groupby(["run", "hue"]):
                ax.plot(g.lambda1_K, g.lambda1_H, "-o", ms=3, color=pal[kind][hue], lw=1, label=hue)
            handles, labels = ax.get_legend_handles_labels()
            uniq = dict(zip(labels, handles))
            ax.legend([uniq[k] for k in order if k in uniq], [k for k in order if k in uniq], fontsize=7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(LABELS["lambda1_K"] + " (mini-batch gradient covariance)")
            ax.set_ylabel(LABELS["lambda1_H"])
        else:
            _empty(ax, "no curvature measured")
        ax.set_title(f"{sw['name']} [{sw['experiment']}]", fontsize=9)
        for ax, metric in ((axes[i][1], "alpha_star"), (axes[i][2], "lr_lambda1_H")):
            m = t[t.metric == metric]
            if m.empty:
                _empty(ax, f"no {metric}")
                continue
            sns.lineplot(data=m, x="epoch", y="value", hue="hue", hue_order=order, palette=pal[kind], ax=ax,
                         errorbar=("pi", 100), marker="o", markersize=3)
            ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("epoch (early phase)")
            ax.set_ylabel(LABELS[metric])
            ax.legend(title=None, fontsize=7)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def plot_bn(traj: pd.DataFrame, maxima: pd.DataFrame, runs: pd.DataFrame, png, pdf) -> None:
    """BN vs no BN: max lambda1_K and max Tr(K)/lambda1_K against lr per model (learning-rate
    sweeps, valid runs, mean and range over seeds), and ||gamma|| of the last BN layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    pal = _palettes(runs)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    lr_sweeps = [s for s in find_sweeps(runs) if s["kind"] == "lr"]
    sel = pd.concat([sweep_runs(maxima, s) for s in lr_sweeps]) if lr_sweeps else maxima.iloc[:0]
    sel = sel[sel.valid]
    for ax, metric in ((axes[0], "max_lambda1_K"), (axes[1], "max_trace_over_lambda1")):
        m = sel[sel.metric == metric]
        if m.empty:
            _empty(ax, "no valid learning-rate sweep")
            continue
        sns.lineplot(data=m, x="lr", y="value", hue="model", palette=pal["model"], ax=ax, errorbar=("pi", 100),
                     marker="o", err_style="bars")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate η")
        base = {"max_lambda1_K": "lambda1_K", "max_trace_over_lambda1": "trace_over_lambda1_K"}[metric]
        ax.set_ylabel("max over trajectory of " + LABELS[base])
        ax.legend(title=None, fontsize=7)
    g = traj[(traj.metric == "gamma_norm")].dropna(subset=["value"])
    if g.empty:
        _empty(axes[2], "no BN network in the configuration")
    else:
        g = g.assign(hue=[_hue("lr", v) for v in g.lr])
        g = g.assign(hue=[f"{m}, {h}" for m, h in zip(g.model, g.hue)] if g.model.nunique() > 1 else g.hue)
        sns.lineplot(data=g, x="epoch", y="value", hue="hue", ax=axes[2], errorbar=("pi", 100),
                     palette=pal["lr"] if g.model.nunique() == 1 else None)
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel(LABELS["gamma_norm"])
        axes[2].legend(title=None, fontsize=7)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def make_figures(trajectories_path, maxima_path, runs_path, out: dict) -> None:
    """All figures (out: trajectories/early/bn/extra -> (png, pdf))."""
    traj = pd.read_csv(trajectories_path)
    maxima, runs = pd.read_csv(maxima_path), pd.read_csv(runs_path)
    plot_trajectories(traj, runs, ["lambda1_K", "lambda1_H", "trace_K", "conditioning_K"], *out["trajectories"],
                      title="Curvature along the trajectory (line: seed mean, band: range over seeds, "
                            "dotted: epoch reaching the threshold accuracy)")
    plot_early_phase(traj, runs, *out["early"])
    plot_bn(traj, maxima, runs, *out["bn"])
    plot_trajectories(traj, runs, ["train_acc", "trace_over_lambda1_K", "g_over_gtop", "alpha_star"], *out["extra"],
                      title="Accuracy, Tr(K)/λ₁ᴷ, ‖g‖/‖g₅‖ and α* along the trajectory")
