"""Paper B, "Three Factors Influencing Minima in SGD": sharpness, eta/S, schedules, claims.

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

import copy
import itertools
import json
import math
import re
import time
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import torch
import yaml

from .claims import Claim, compare, to_frame
from .config import ConfigError
from .io import atomic_write_json, atomic_write_text

PAPER = "minima"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "minima.schema.yaml"
REL_TOL = 1e-6
FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
SCHEDULE_ORDER = ("cyclic BS", "cyclic LR", "constant")


# ------------------------------------------------------------------ configuration


def run_id(key: tuple[str, str]) -> str:
    """(experiment, run) -> 'experiment/run', the id used in the config's interpolation pairs."""
    return f"{key[0]}/{key[1]}"


def variant_of(run: str) -> str:
    """Run id without its seed suffix: 'lr0.1_bs32_s0' -> 'lr0.1_bs32'."""
    return re.sub(r"_s\d+$", "", run)


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def paper_defaults() -> dict:
    """The paper-wide settings with every schema default filled in (for use outside Snakemake)."""
    schema = _schema()
    out = {}
    for section in ("sharpness", "interpolation", "memorization", "breaking"):
        props = schema["properties"][section]["properties"]
        out[section] = {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}
    return out


def experiment_analysis(name: str, exp: dict) -> dict:
    """The experiment's `analysis:` object, checked against the schema, defaults filled."""
    schema = _schema()
    sub = {"$defs": schema["$defs"], "$ref": "#/$defs/experiment_analysis"}
    analysis = copy.deepcopy(exp.get("analysis") or {"role": "sharpness"})
    try:
        jsonschema.Draft202012Validator(sub).validate(analysis)
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"experiments.{name}.analysis{'.' + path if path else ''}: {exc.message}") from None
    analysis.setdefault("equal_ratio", False)
    return analysis


def default_group(exp: dict) -> str:
    """Experiments with the same dataset and model spec are compared with each other."""
    model = exp["model"]
    extra = " ".join(f"{k}{v}" for k, v in sorted(model.items()) if k != "name")
    return f"{exp['dataset']} {model['name']}" + (f" {extra}" if extra else "")


def sharpness_settings(paper: dict, analysis: dict) -> dict:
    """Paper-wide sharpness settings overridden by the experiment's own."""
    base = {**paper_defaults()["sharpness"], **(paper.get("sharpness") or {})}
    return {**base, **(analysis.get("sharpness") or {})}


def plan(config: dict, runs: dict) -> dict:
    """Which runs each analysis reads, checked; raises ConfigError.

    Returns {"experiments": {name: analysis}, "sharpness": [(exp, run)], "schedule": [...],
    "pairs": {name: {"a": (exp, run), "b": (exp, run), "label": str}}}.
    """
    paper = config.get(PAPER) or {}
    experiments = {}
    for name, exp in config["experiments"].items():
        if exp.get("paper") != PAPER:
            continue
        analysis = experiment_analysis(name, exp)
        analysis.setdefault("group", default_group(exp))
        experiments[name] = analysis
    keyed = {key: cfg for key, cfg in runs.items() if cfg.get("paper") == PAPER}
    sharp = [k for k in keyed if experiments[k[0]]["role"] == "sharpness"]
    for exp_name, run in sharp:
        for key in ("lr_schedule", "batch_schedule"):
            kind = (runs[(exp_name, run)]["train"].get(key) or {}).get("type", "constant")
            if kind != "constant":
                raise ConfigError(f"experiments.{exp_name} (run {run}).train.{key}: a sharpness experiment needs "
                                  f"constant eta and S (eta/S must be one number), got {kind!r}; use role: schedule")
    sched = [k for k in keyed if experiments[k[0]]["role"] == "schedule"]
    memo = [k for k in keyed if experiments[k[0]]["role"] == "memorization"]
    breaking = [k for k in keyed if experiments[k[0]]["role"] == "breaking"]
    for exp_name, run in memo + breaking:
        cfg = runs[(exp_name, run)]
        for key in ("lr_schedule", "batch_schedule"):
            kind = (cfg["train"].get(key) or {}).get("type", "constant")
            if kind != "constant":
                raise ConfigError(f"experiments.{exp_name} (run {run}).train.{key}: role "
                                  f"{experiments[exp_name]['role']} needs constant eta and S, got {kind!r}")
    for exp_name, run in memo:
        noise = runs[(exp_name, run)].get("label_noise") or 0.0
        if not noise > 0:
            raise ConfigError(f"experiments.{exp_name}.label_noise: {noise!r} is not allowed with role: "
                              "memorization; use a fraction in (0, 1] of training labels to randomise")
    for exp_name in dict.fromkeys(e for e, _ in breaking):
        ratios = {runs[k]["train"]["lr"] / runs[k]["train"]["batch_size"] for k in breaking if k[0] == exp_name}
        if max(ratios) > min(ratios) * (1 + 1e-3):
            raise ConfigError(f"experiments.{exp_name}: role breaking needs one eta/S for every run (eta and S "
                              f"scaled together by beta), got eta/S values {sorted(ratios)}")
    pairs = {}
    for pname, spec in ((paper.get("interpolation") or {}).get("pairs") or {}).items():
        ends = {}
        for end in ("a", "b"):
            key = tuple(spec[end].split("/", 1))
            if key not in runs:
                known = ", ".join(f"{e}/{r}" for e, r in list(keyed)[:6])
                raise ConfigError(f"minima.interpolation.pairs.{pname}.{end}: no run {spec[end]!r}; "
                                  f"use experiment/run ids such as {known}")
            ends[end] = key
        da, db = (runs[ends[e]] for e in ("a", "b"))
        if (da["dataset"], da["model"]) != (db["dataset"], db["model"]):
            raise ConfigError(f"minima.interpolation.pairs.{pname}: the two runs must share dataset and model "
                              f"({da['dataset']} {da['model']} vs {db['dataset']} {db['model']})")
        pairs[pname] = {**ends, "label": spec.get("label", pname)}
    return {"experiments": experiments, "sharpness": sharp, "schedule": sched, "memorization": memo,
            "breaking": breaking, "pairs": pairs}


class Workflow:
    """The input and params functions of rules/minima.smk (kept out of the .smk file).

    Built once when the workflow is parsed; raises ConfigError for a bad configuration."""

    def __init__(self, config: dict, runs: dict, results: str = "results"):
        self.config, self.runs, self.results = config, runs, results
        self.plan = plan(config, runs)
        self.metrics = f"{results}/metrics/{PAPER}"

    def run_dir(self, key) -> str:
        return f"{self.results}/runs/{key[0]}/{key[1]}"

    def sharpness_files(self, wildcards=None) -> list[str]:
        return [f"{self.metrics}/sharpness/{e}/{r}.json" for e, r in self.plan["sharpness"]]

    def interpolation_files(self, wildcards=None) -> list[str]:
        return [f"{self.metrics}/interpolation/{pair}.csv" for pair in self.plan["pairs"]]

    def schedule_files(self, name: str) -> list[str]:
        return [f"{self.run_dir(key)}/{name}" for key in self.plan["schedule"]]

    def role_files(self, role: str, name: str) -> list[str]:
        """`name` (status.json, history.csv) of every run of the experiments with this role."""
        return [f"{self.run_dir(key)}/{name}" for key in self.plan[role]]

    def paper_settings(self, section: str) -> dict:
        """A paper-wide section (memorization, breaking) with its defaults filled."""
        return {**paper_defaults()[section], **((self.config.get(PAPER) or {}).get(section) or {})}

    def pair_inputs(self, wildcards) -> dict:
        pair = self.plan["pairs"][wildcards.pair]
        return {f"{end}_{name}": f"{self.run_dir(pair[end])}/{name}.{ext}"
                for end in ("a", "b") for name, ext in (("model", "pt"), ("status", "json"))}

    def sharpness_settings(self, wildcards) -> dict:
        return sharpness_settings(self.config.get(PAPER) or {}, self.plan["experiments"][wildcards.experiment])

    def run_data(self, wildcards) -> dict:
        return data_spec(self.runs[(wildcards.experiment, wildcards.run)])

    def pair_spec(self, wildcards) -> dict:
        pair = self.plan["pairs"][wildcards.pair]
        return {"a": run_id(pair["a"]), "b": run_id(pair["b"]), "data": data_spec(self.runs[pair["a"]]),
                "group": self.plan["experiments"][pair["a"][0]]["group"]}

    def interpolation_settings(self, wildcards=None) -> dict:
        settings = {**paper_defaults()["interpolation"], **((self.config.get(PAPER) or {}).get("interpolation") or {})}
        return {k: v for k, v in settings.items() if k != "pairs"}

    def experiment_flags(self, *keys) -> dict:
        return {name: {k: analysis.get(k) for k in keys} for name, analysis in self.plan["experiments"].items()}


def data_spec(cfg: dict) -> dict:
    """What defines a run's data (passed to repro.data.load_run_dataset): the split and, for
    memorization runs, the noisy training labels the model was trained on."""
    spec = {"dataset": cfg["dataset"], "test_fraction": cfg.get("test_fraction", 0.2),
            "train_size": cfg.get("train_size")}
    if cfg.get("label_noise"):
        spec.update(label_noise=cfg["label_noise"], label_noise_seed=cfg.get("label_noise_seed", 0))
    return spec


def load_run_data(spec: dict, data_root="data", download=False):
    from .data import load_run_dataset

    return load_run_dataset(spec, data_root, download)


# ------------------------------------------------------------------ per-run facts


def read_status(path) -> dict:
    """status.json of results/runs/{experiment}/{run}/, with the experiment and run ids added."""
    path = Path(path)
    return {**json.loads(path.read_text()), "experiment": path.parent.parent.name, "run": path.parent.name}


def run_facts(status: dict) -> dict:
    """experiment, run, seed, lr, batch_size, eta/S, target and the matched-loss verdict.

    `status` as returned by :func:`read_status`."""
    cfg = status["config"]
    tr = cfg["train"]
    target = tr.get("stop_at_train_loss")
    final = status.get("final") or {}
    completed = status["status"] == "completed"
    train_loss = final.get("train_loss")
    matched = bool(completed and target is not None and train_loss is not None
                   and math.isfinite(train_loss) and train_loss <= target)
    if not completed:
        note = f"{status['status']}: {status.get('stop_reason', '')}"
    elif target is None:
        note = "no target train loss set: measured after a fixed budget, not at matched loss"
    elif not matched:
        note = f"did not reach the target train loss {target:g} ({status.get('stop_reason', '')})"
    else:
        note = ""
    return dict(experiment=status["experiment"], run=status["run"], seed=cfg["seed"], lr=tr["lr"],
                batch_size=tr["batch_size"], lr_over_batch=tr["lr"] / tr["batch_size"], target_loss=target,
                status=status["status"], stop_reason=status.get("stop_reason", ""), matched=matched,
                epoch=status.get("epochs_completed"), step=status.get("steps"), note=note,
                final={k: final.get(k) for k in FINAL_METRICS} if completed else {})


def sharpness_batches(data, n_examples: int, seed: int, batch_size: int, device="cpu") -> list:
    """A fixed class-balanced subset of the training set, as a list of (x, y) chunks."""
    from .data import stratified_subset

    y = data.y_train
    if n_examples < len(y):
        idx = torch.from_numpy(stratified_subset(y.numpy(), n_examples, seed))
    else:
        idx = torch.arange(len(y))
    x, y = data.x_train[idx].to(device), y[idx].to(device)
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def measure_sharpness(model_path, status_path, data, settings: dict, device="cpu") -> dict:
    """Sharpness of one saved model at the point where its training stopped (JSON-able).

    A run that did not complete (diverged) gets no numbers, only the reason."""
    status = read_status(status_path)
    out = {**run_facts(status), "settings": dict(settings), "device": str(device)}
    out["sharpness"] = {"lambda_max": None, "eigenvalues": [], "hessian_trace": None,
                        "hessian_trace_stderr": None, "subset_loss": None}
    if status["status"] != "completed":
        return out
    from . import curvature
    from .interpolate import evaluate_split
    from .train import load_model

    t0 = time.perf_counter()
    model, _ = load_model(model_path, device)
    batches = sharpness_batches(data, settings["n_examples"], settings["subset_seed"], settings["batch_size"], device)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    subset_loss, _ = evaluate_split(model, x, y, settings["batch_size"])
    weights_finite = all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    if not (weights_finite and math.isfinite(subset_loss)):  # ARPACK would fail on NaN products
        out["note"] = ((out["note"] + "; " if out["note"] else "")
                       + "non-finite weights (or loss); sharpness not measured")
        return out
    eig_info, trace_info = {}, {}
    eigs = curvature.hessian_eigs(model, loss_fn, batches, k=settings["top_k"], tol=settings["tol"],
                                  seed=settings["probe_seed"], info=eig_info)
    trace, stderr = curvature.hessian_trace(model, loss_fn, batches, n_probes=settings["n_probes"],
                                            rtol=settings.get("trace_rtol"), seed=settings["probe_seed"],
                                            info=trace_info)
    eig_list = [_finite_or_none(e) for e in torch.as_tensor(eigs).flatten().tolist()]
    out["sharpness"] = {"lambda_max": eig_list[0] if eig_list else None, "eigenvalues": eig_list,
                        "hessian_trace": _finite_or_none(trace), "hessian_trace_stderr": _finite_or_none(stderr),
                        "subset_loss": _finite_or_none(subset_loss), "n_examples": int(len(y)),
                        "lanczos_products": eig_info.get("n_products"), "trace_probes": trace_info.get("n_probes")}
    if any(v is None for v in (out["sharpness"]["lambda_max"], out["sharpness"]["hessian_trace"])):
        out["note"] = (out["note"] + "; " if out["note"] else "") + "non-finite curvature estimate"
    out["wall_s"] = time.perf_counter() - t0
    return out


def sharpness_job(model_path, status_path, out_path, settings: dict, data: dict, data_root="data",
                  download=False, device="cpu") -> dict:
    """Rule minima_sharpness: measure one run (data loaded only when there is a model to measure)."""
    done = json.loads(Path(status_path).read_text())["status"] == "completed"
    dataset = load_run_data(data, data_root, download) if done else None
    result = measure_sharpness(model_path, status_path, dataset, settings, device)
    atomic_write_json(out_path, result)
    return result


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


def _is_ratio_in(value: float, ratios) -> bool:
    return any(abs(value - r) <= REL_TOL * max(abs(value), abs(r)) for r in ratios)


def runs_table(results: list[dict], experiments: dict) -> pd.DataFrame:
    """Tidy per-run table: one row per run and metric; missing values carry their reason."""
    ratios = equal_ratio_values(results, experiments)
    rows = []
    for r in sorted(results, key=lambda r: (r["lr_over_batch"], r["lr"], r["experiment"], r["seed"])):
        base = {k: r[k] for k in ("experiment", "run", "seed", "lr", "batch_size", "lr_over_batch", "status",
                                  "matched", "target_loss", "epoch", "step")}
        group = experiments.get(r["experiment"], {}).get("group") or r["experiment"]
        base["group"] = group
        base["equal_ratio"] = _is_ratio_in(r["lr_over_batch"], ratios.get(group, ()))
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


def _fmt(value, digits=3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def runs_markdown(table: pd.DataFrame) -> str:
    wide = runs_wide(table)
    lines = ["# Paper B: per-run summary", "",
             "Sharpness measured where each run first reached its target train loss (see `target`). "
             "Diverged runs have no numbers: their status says why.", ""]
    if wide.empty:
        return "\n".join(lines + ["_No minima runs._", ""])
    out = pd.DataFrame({
        "group": wide.group, "experiment": wide.experiment, "run": wide.run, "eta": wide.lr.map(_fmt), "S": wide.batch_size,
        "eta/S": wide.lr_over_batch.map(lambda v: f"{v:.3g}"), "equal eta/S set": wide.equal_ratio.map({True: "yes", False: ""}),
        "status": [s if s != "completed" else ("matched" if m else "completed, not matched")
                   for s, m in zip(wide.status, wide.matched)],
        "epochs": wide.epoch, "target": wide.target_loss.map(_fmt), "train loss": wide.train_loss.map(_fmt),
        "lambda_max": wide.lambda_max.map(_fmt),
        "Tr(H) ± se": [f"{_fmt(t)} ± {_fmt(s, 2)}" if not math.isnan(t) else "" for t, s in
                       zip(wide.hessian_trace, wide.hessian_trace_stderr)],
        "test acc": wide.test_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "note": wide.note})
    if wide.group.nunique() <= 1:
        out = out.drop(columns="group")
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def write_runs_table(results: list[dict], experiments: dict, csv_path, md_path) -> pd.DataFrame:
    table = runs_table(results, experiments)
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, runs_markdown(table))
    return table


# ------------------------------------------------------------------ interpolation


def interpolation_alphas(settings: dict) -> list[float]:
    """The evenly spaced grid plus the two side points -d and 1 + d of claims B7 (d =
    side_offset), so the side rises are exact evaluations, never interpolated."""
    from .interpolate import alphas_grid

    grid = alphas_grid(settings["alpha_min"], settings["alpha_max"], settings["num"])
    d = settings.get("side_offset")
    extra = [round(-d, 9), round(1 + d, 9)] if d else []
    return sorted(set(grid) | set(extra))


def interpolate_pair(pair: str, a: dict, b: dict, settings: dict, data_root="data", download=False,
                     device="cpu", group: str | None = None) -> pd.DataFrame:
    """Loss/accuracy along the line between two saved runs; a = {experiment, run, model, status}.
    `group`: the comparison group of run a's experiment (claims B7 compare pairs within it)."""
    from .interpolate import alphas_grid, interpolation_curve
    from .train import load_model

    facts = {end: run_facts(read_status(d["status"])) for end, d in (("a", a), ("b", b))}
    head = {"pair": pair, "group": group if group is not None else ""}
    for end in ("a", "b"):
        head.update({f"{end}_experiment": facts[end]["experiment"], f"{end}_run": facts[end]["run"],
                     f"{end}_lr": facts[end]["lr"], f"{end}_batch_size": facts[end]["batch_size"],
                     f"{end}_lr_over_batch": facts[end]["lr_over_batch"]})
    alphas = interpolation_alphas(settings)
    bad = [f"run {f['experiment']}/{f['run']} {f['status']}: {f['stop_reason']}" for f in facts.values()
           if f["status"] != "completed"]
    if bad:
        rows = [{**head, "alpha": al, "split": s, "metric": m, "value": math.nan, "note": "; ".join(bad)}
                for al in alphas for s in ("train", "test") for m in ("loss", "accuracy")]
        return pd.DataFrame(rows)
    data = load_run_data(a["data"], data_root, download)
    model_a, _ = load_model(a["model"], device)
    model_b, _ = load_model(b["model"], device)
    splits = {"train": (data.x_train.to(device), data.y_train.to(device)),
              "test": (data.x_test.to(device), data.y_test.to(device))}
    bn_batches = sharpness_batches(data, settings["bn_examples"], 0, 500, device)
    curve = interpolation_curve(model_a, model_b, splits, alphas, bn=settings["bn"], bn_batches=bn_batches)
    return pd.concat([pd.DataFrame([head] * len(curve)), curve], axis=1)


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
                     "train loss a": _fmt(val(0, "train", "loss")), "train loss b": _fmt(val(1, "train", "loss")),
                     "max train loss, 0<=alpha<=1": _fmt(inner.max() if len(inner) else math.nan),
                     "train loss alpha=-1": _fmt(val(-1, "train", "loss")),
                     "train loss alpha=2": _fmt(val(2, "train", "loss")),
                     "test acc a": _fmt(val(0, "test", "accuracy")), "test acc b": _fmt(val(1, "test", "accuracy")),
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
                        "lr_over_batch": h.lr / h.batch_size, "steps": steps})
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


def schedule_tables(items: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """items: {"status": dict, "history": DataFrame}. Returns (final table, curves), both long."""
    finals, curves = [], []
    for item in items:
        status, hist = item["status"], item["history"]
        cfg = status["config"]
        label = schedule_label(cfg["train"])
        base = dict(experiment=status["experiment"], run=status["run"], seed=cfg["seed"], schedule=label,
                    kind=schedule_kind(label), lr=cfg["train"]["lr"], batch_size=cfg["train"]["batch_size"],
                    status=status["status"], epoch=status.get("epochs_completed"))
        completed = status["status"] == "completed"
        note = "" if completed else f"{status['status']}: {status.get('stop_reason', '')}"
        final = status.get("final") or {}
        by_epoch, by_step = mean_ratio(hist)
        values = {k: final.get(k) if completed else None for k in FINAL_METRICS}
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
                                   lr_over_batch=ratio.get(row.epoch, row.lr / row.batch_size),
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
                   "final train loss": _fmt(r.train_loss), "mean eta/S": f"{r.mean_lr_over_batch:.3g}"}
            if paper:
                row[f"paper (%){' — ' + setting if setting else ''}"] = _fmt(paper.get(r.variant), 4)
            rows.append(row)
        lines += [f"## {exp}", "", pd.DataFrame(rows).to_markdown(index=False), ""]
    return "\n".join(lines)


def write_schedule_tables(status_paths, history_paths, experiments: dict, csv_path, md_path, curves_path):
    items = [{"status": read_status(s), "history": pd.read_csv(h)}
             for s, h in zip(status_paths, history_paths)]
    finals, curves = schedule_tables(items)
    atomic_write_text(csv_path, finals.to_csv(index=False))
    atomic_write_text(curves_path, curves.to_csv(index=False))
    atomic_write_text(md_path, schedules_markdown(finals, experiments))
    return finals, curves


# ------------------------------------------------------------------ statistics


def spearman(x, y) -> tuple[float, float, int]:
    """(Spearman rho, two-sided p, n) over pairs where both are finite; NaN if n < 3."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return math.nan, math.nan, n
    res = spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue), n


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of x and y with z held fixed: the partial correlation of the ranks,
    (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)); NaN if undefined."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return math.nan
    rxy, rxz, ryz = spearman(x[ok], y[ok])[0], spearman(x[ok], z[ok])[0], spearman(y[ok], z[ok])[0]
    denom = math.sqrt(max((1 - rxz ** 2) * (1 - ryz ** 2), 0.0))
    if any(math.isnan(v) for v in (rxy, rxz, ryz)) or denom == 0:
        return math.nan
    return (rxy - rxz * ryz) / denom


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def ratio_pairs(wide: pd.DataFrame) -> tuple[list, list, float]:
    """Pairs of runs (same seed) with equal eta/S (different eta), and pairs one grid step apart.

    A one-step pair shares eta or S and its eta/S factor equals the grid step: the smallest
    factor > 1 among all pairs that share eta or S. Returns (equal, step, step factor)."""
    equal, shared = [], []
    for _, g in wide.groupby("seed"):
        recs = g.to_dict("records")
        for p, q in itertools.combinations(recs, 2):
            if _close(p["lr_over_batch"], q["lr_over_batch"]):
                if not _close(p["lr"], q["lr"]):
                    equal.append((p, q))
            elif _close(p["lr"], q["lr"]) or p["batch_size"] == q["batch_size"]:
                f = max(p["lr_over_batch"], q["lr_over_batch"]) / min(p["lr_over_batch"], q["lr_over_batch"])
                shared.append((p, q, f))
    if not shared:
        return equal, [], math.nan
    step = min(f for *_, f in shared)
    return equal, [(p, q) for p, q, f in shared if _close(f, step)], step


def _larger_eta_lower(pairs, metric: str) -> tuple[int, int]:
    """(pairs where the larger-eta run has the lower metric, pairs with both values finite)."""
    lower = counted = 0
    for p, q in pairs:
        a, b = p[metric], q[metric]
        if math.isfinite(a) and math.isfinite(b) and a != b:
            counted += 1
            big, small = (p, q) if p["lr"] > q["lr"] else (q, p)
            lower += int(big[metric] < small[metric])
    return lower, counted


def closeness_ratio(equal, step, metric: str, log: bool) -> tuple[float, float, float]:
    """(mean |diff| over equal pairs, over step pairs, their ratio); log: compare log values."""
    def diffs(pairs):
        out = []
        for p, q in pairs:
            a, b = p[metric], q[metric]
            if not (math.isfinite(a) and math.isfinite(b)) or (log and (a <= 0 or b <= 0)):
                continue
            out.append(abs(math.log(a) - math.log(b)) if log else abs(a - b))
        return out

    de, ds = diffs(equal), diffs(step)
    if not de or not ds:
        return math.nan, math.nan, math.nan
    me, ms = float(np.mean(de)), float(np.mean(ds))
    return me, ms, (me / ms if ms > 0 else math.nan)


# ------------------------------------------------------------------ claims


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
    groups = list(dict.fromkeys(wide.group)) if len(wide) and "group" in wide else []
    if len(groups) <= 1:
        return _group_sharpness_claims(wide)
    out = []
    for g in groups:
        for c in _group_sharpness_claims(wide[wide.group == g]):
            c.id = f"{c.id}[{g}]"
            out.append(c)
    return out


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
        note = why + (f"{n} matched runs, {n_ratios} eta/S values, p = {_fmt(p, 2)}; {loss_range}; "
                      f"partial rho given that loss = {_fmt(partial, 2)}")
        if excluded:
            note += f"; {excluded}"
        if verdict == "fails":
            spread = m.groupby("lr_over_batch")[metric].std().mean()
            note += (f". Fails at our scale: over the grid {name} spans {_fmt(m[metric].min())}–"
                     f"{_fmt(m[metric].max())}, with an sd of {_fmt(spread)} among runs of equal eta/S; the paper's "
                     "grid (FashionMNIST MLP, configs/paper.yaml) has not been run")
        return Claim(cid, PAPER, statement, f"Spearman rho(eta/S, {name})", f"{op} {threshold}",
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
        me, ms, ratio = closeness_ratio(equal, step, metric, log) if len(m) else (math.nan,) * 3
        verdict = compare(ratio, "<", 1.0)
        note = (f"mean |diff| {_fmt(me)} over {len(equal)} equal-eta/S pairs vs {_fmt(ms)} over {len(step)} pairs "
                f"one grid step (eta/S x{_fmt(factor)}) apart, pairs within a seed")
        lower, counted = _larger_eta_lower(equal, metric)
        if counted:
            note += (f"; within equal-eta/S pairs the run with the larger eta has the lower {name.split()[-1]} "
                     f"in {lower} of {counted}")
        if verdict == "inconclusive":
            note = "needs equal-eta/S pairs and one-step pairs among matched runs; " + note
        claims.append(Claim(cid, PAPER, f"Runs with equal eta/S are closer in {name.split()[-1] if log else name} "
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
        claims.append(Claim(f"B4a{suffix}", PAPER, "Cyclic batch size and cyclic learning rate end within noise "
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
                loss_note = (f"; the constants end at a higher train loss ({_fmt(const.train_loss.min())} vs "
                             f"<= {_fmt(cyc_loss)} for the cycles): part of the gap may be convergence, not noise")
            note = (f"worse cycle {100 * cyc_min:.2f}% vs best constant {best_const.schedule} "
                    f"{100 * best_const['mean']:.2f}%" + loss_note)
            value = round(margin, 5)
        else:
            value, verdict, note = None, "inconclusive", "needs cyclic-BS, cyclic-LR and constant schedules"
        claims.append(Claim(f"B4b{suffix}", PAPER, "Both cyclic schedules beat both constant schedules "
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


PAIR_EQUAL_FACTOR = math.sqrt(2.0)


def pair_equal_ratio(ratio_a: float, ratio_b: float) -> bool:
    """Interpolation pairs: 'equal eta/S' when the two differ by less than a factor sqrt(2),
    i.e. closer to equal than to one factor-2 grid step (the paper's own equal pair, ResNet
    0.1/1024 vs 0.01/128, differs by 1.25); 'differing' otherwise."""
    return max(ratio_a, ratio_b) / min(ratio_a, ratio_b) < PAIR_EQUAL_FACTOR


def side_table(table: pd.DataFrame, offset: float) -> pd.DataFrame:
    """One row per pair: the two ends' eta/S, their side rises, and

    * ``equal_ratio``: the ends share eta/S (:func:`pair_equal_ratio`);
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
        equal = pair_equal_ratio(ra, rb)
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
    sides = side_table(table, offset)
    groups = list(dict.fromkeys(sides.group)) if len(sides) else []
    if len(groups) <= 1:
        return _group_interpolation_claims(sides, offset)
    out = []
    for g in groups:
        for c in _group_interpolation_claims(sides[sides.group == g], offset):
            c.id = f"{c.id}[{g}]"
            out.append(c)
    return out


def _group_interpolation_claims(sides: pd.DataFrame, offset: float) -> list[Claim]:
    diff, equal = sides[~sides.equal_ratio.astype(bool)], sides[sides.equal_ratio.astype(bool)]
    where = f"train loss at alpha = -{offset:g} and 1 + {offset:g}"

    def describe(frame):
        return "; ".join(f"{r.pair}: rises {_fmt(r.rise_a)} (a, eta/S {r.a_lr_over_batch:.3g}) / {_fmt(r.rise_b)} "
                         f"(b, eta/S {r.b_lr_over_batch:.3g}), end losses {_fmt(r.loss_a)} / {_fmt(r.loss_b)}"
                         + (f" [{r.note}]" if r.note else "") for r in frame.itertuples())

    if len(diff) and diff.ratio.notna().all():
        value = float(diff.ratio.min())
        verdict, note = compare(value, ">", 1.0), describe(diff)
    else:
        value, verdict = math.nan, "inconclusive"
        note = ("needs an interpolation pair whose ends differ in eta/S, with the loss rising beside both ends"
                + (f"; {describe(diff)}" if len(diff) else ""))
    claims = [Claim("B7a", PAPER, "Along the line between a high- and a low-eta/S model the loss rises faster "
                    "beside the low-eta/S model (it sits in the sharper minimum)",
                    f"min over differing-eta/S pairs of rise(low-eta/S end) / rise(high-eta/S end), {where}",
                    "> 1", None if math.isnan(value) else round(value, 4), verdict, note)]
    if len(diff) and len(equal) and diff.ratio.notna().all() and equal.ratio.notna().all():
        num, den = float(equal.log_ratio.abs().max()), float(diff.log_ratio.abs().min())
        value = num / den if den > 0 else math.inf
        verdict = compare(value, "<", 1.0)
        note = (f"max |log rise ratio| over {len(equal)} equal-eta/S pair(s) {_fmt(num)}, min over {len(diff)} "
                f"differing pair(s) {_fmt(den)}; equal pairs: {describe(equal)}")
    else:
        value, verdict = math.nan, "inconclusive"
        note = ("needs equal-eta/S and differing-eta/S pairs with the loss rising beside every end"
                + (f"; equal pairs: {describe(equal)}" if len(equal) else ""))
    claims.append(Claim("B7b", PAPER, "Two models with equal eta/S sit in alike minima: their side rises are closer "
                        "to each other than those of a pair whose eta/S differs",
                        f"max |log rise ratio| (equal-eta/S pairs) / min |log rise ratio| (differing pairs), {where}",
                        "< 1", None if math.isnan(value) else round(value, 4), verdict, note))
    return claims


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
    """items: {"status": dict (read_status), "history": DataFrame}. One row per run and metric.

    Diverged runs get no numbers (NaN with the reason): they are listed, never compared."""
    rows = []
    for item in items:
        st, hist = item["status"], item["history"]
        cfg, tr = st["config"], st["config"]["train"]
        noise = float(cfg.get("label_noise") or 0.0)
        target = memorization_target(noise, level)
        base = dict(group=(experiments.get(st["experiment"]) or {}).get("group") or st["experiment"],
                    experiment=st["experiment"], run=st["run"], seed=cfg["seed"], label_noise=noise,
                    momentum=float(tr.get("momentum", 0.0)), lr=tr["lr"], batch_size=tr["batch_size"],
                    lr_over_batch=tr["lr"] / tr["batch_size"], status=st["status"], target_train_acc=target)
        completed = st["status"] == "completed"
        point = memorization_point(hist, target) if completed else None
        final = st.get("final") or {}
        values = {"epoch_at_level": point and point["epoch"], "train_acc_at_level": point and point["train_acc"],
                  "test_acc_at_level": point and point["test_acc"],
                  "final_train_acc": final.get("train_acc") if completed else None,
                  "final_test_acc": final.get("test_acc") if completed else None,
                  "final_train_loss": final.get("train_loss") if completed else None}
        if not completed:
            note = f"{st['status']}: {st.get('stop_reason', '')}"
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
        "eta": wide.lr.map(_fmt), "S": wide.batch_size, "eta/S": wide.lr_over_batch.map(lambda v: f"{v:.3g}"),
        "status": wide.status, "target train acc": wide.target_train_acc.map(lambda v: f"{100 * v:.1f}%"),
        "epoch at target": wide.epoch_at_level.map(_fmt),
        "test acc at target": wide.test_acc_at_level.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "final train acc": wide.final_train_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "final test acc": wide.final_test_acc.map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}%"),
        "note": wide.note})
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def memorization_curves(items: list[dict]) -> pd.DataFrame:
    rows = []
    for item in items:
        st, hist = item["status"], item["history"]
        tr = st["config"]["train"]
        for r in hist.itertuples():
            rows.append(dict(experiment=st["experiment"], run=st["run"], seed=st["config"]["seed"],
                             label_noise=float(st["config"].get("label_noise") or 0.0),
                             momentum=float(tr.get("momentum", 0.0)), lr_over_batch=tr["lr"] / tr["batch_size"],
                             status=st["status"], epoch=r.epoch, train_acc=r.train_acc, test_acc=r.test_acc))
    return pd.DataFrame(rows, columns=["experiment", "run", "seed", "label_noise", "momentum", "lr_over_batch",
                                       "status", "epoch", "train_acc", "test_acc"])


def write_memorization(status_paths, history_paths, experiments: dict, level: float, csv_path, md_path,
                       png, pdf) -> pd.DataFrame:
    items = [{"status": read_status(s), "history": pd.read_csv(h)} for s, h in zip(status_paths, history_paths)]
    table = memorization_table(items, experiments, level)
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, memorization_markdown(table, level))
    plot_memorization(table, memorization_curves(items), png, pdf)
    return table


def memorization_claims(table: pd.DataFrame | None) -> list[Claim]:
    """B5, per (group, label noise, momentum): Spearman rho(eta/S, clean test accuracy at
    equal memorization) > 0.5 over the runs that reach the memorization target (>= 4 runs
    over >= 3 eta/S values, else inconclusive)."""
    statement = "Higher eta/S generalizes better at equal memorization (random labels)"
    stat = "Spearman rho(eta/S, test accuracy at equal memorization)"
    if table is None or table.empty:
        return [Claim("B5", PAPER, statement, stat, "> 0.5", None, "inconclusive",
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
                 f"p = {_fmt(p, 2)}")
        if len(ok):
            note += (f"; epochs to target {_fmt(ok.epoch_at_level.min())}–{_fmt(ok.epoch_at_level.max())}, "
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
        claims.append(Claim(f"B5{suffix}", PAPER, statement, stat, "> 0.5",
                            None if math.isnan(rho) else round(rho, 4), verdict, note))
    return claims


# ------------------------------------------------------------------ breaking point (B6)


BREAK_RUN_COLUMNS = ["group", "experiment", "run", "seed", "train_size", "lr", "batch_size", "lr_over_batch", "beta",
                     "status", "test_acc", "train_loss", "note"]
BREAK_COLUMNS = ["group", "experiment", "train_size", "beta", "lr", "batch_size", "n", "n_diverged", "mean_test_acc",
                 "sd_test_acc", "reference_acc", "drop", "within_tolerance", "breaking_beta", "censored", "note"]


def _size_key(size) -> float:
    return math.inf if size is None or (isinstance(size, float) and math.isnan(size)) else float(size)


def breaking_runs(statuses: list[dict], experiments: dict) -> pd.DataFrame:
    """One row per run; beta = S / (smallest S among the breaking runs of its group), so
    every train size of a group is on one beta scale."""
    rows = []
    for st in statuses:
        cfg, tr = st["config"], st["config"]["train"]
        completed = st["status"] == "completed"
        final = st.get("final") or {}
        rows.append(dict(group=(experiments.get(st["experiment"]) or {}).get("group") or st["experiment"],
                         experiment=st["experiment"], run=st["run"], seed=cfg["seed"],
                         train_size=cfg.get("train_size"), lr=tr["lr"], batch_size=tr["batch_size"],
                         lr_over_batch=tr["lr"] / tr["batch_size"], beta=math.nan, status=st["status"],
                         test_acc=final.get("test_acc") if completed else math.nan,
                         train_loss=final.get("train_loss") if completed else math.nan,
                         note="" if completed else f"{st['status']}: {st.get('stop_reason', '')}"))
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
        "train size": summary.train_size.map(lambda v: "full" if _size_key(v) == math.inf else f"{int(v)}"),
        "experiment": summary.experiment, "beta": summary.beta.map(_fmt), "eta": summary.lr.map(_fmt),
        "S": summary.batch_size, "seeds": summary.n,
        "test acc (%)": [("" if math.isnan(m) else f"{100 * m:.2f}" + ("" if math.isnan(s) else f" ± {100 * s:.2f}"))
                         for m, s in zip(summary.mean_test_acc, summary.sd_test_acc)],
        "drop (points)": summary["drop"].map(lambda v: "" if math.isnan(v) else f"{100 * v:.2f}"),
        "within tolerance": summary.within_tolerance.map({True: "yes", False: "no"}),
        "breaking beta": [("" if math.isnan(b) else (">= " if c else "") + f"{b:g}")
                          for b, c in zip(summary.breaking_beta, summary.censored)],
        "note": summary.note})
    return "\n".join(lines + [out.to_markdown(index=False), ""])


def write_breaking(status_paths, experiments: dict, tolerance: float, csv_path, md_path, png, pdf):
    runs = breaking_runs([read_status(s) for s in status_paths], experiments)
    summary = breaking_summary(runs, tolerance)
    atomic_write_text(csv_path, summary.to_csv(index=False))
    atomic_write_text(md_path, breaking_markdown(summary, tolerance))
    plot_breaking(runs, summary, tolerance, png, pdf)
    return summary


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
        return [Claim("B6", PAPER, statement, stat, threshold, None, "inconclusive",
                      "not run at this scale: no role: breaking experiment in the config "
                      "(the paper-scale VGG-11 ladders at 12k/22.5k/45k are in configs/paper.yaml)")]
    claims = []
    groups = list(dict.fromkeys(summary.group))
    for group in groups:
        g = summary[summary.group == group]
        sizes = (g.drop_duplicates("experiment")[["experiment", "train_size", "breaking_beta", "censored"]]
                 .assign(size_key=lambda d: d.train_size.map(_size_key)).sort_values("size_key"))
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
        claims.append(Claim(f"B6{suffix}", PAPER, statement, stat, threshold, value, verdict, note))
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
    frame = minima_claims(runs_csv, schedules_csv, memorization_csv, breaking_csv, interpolation_csv, side_offset)
    atomic_write_text(out_csv, frame.to_csv(index=False))
    return frame


# ------------------------------------------------------------------ figures

RATIO_LABEL = "η/S  (learning rate / batch size, per example)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    return plt, sns


def _save(fig, png, pdf) -> None:
    for path in (png, pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")


def batch_palette(sizes) -> dict:
    """One colour per batch size, ordered small -> large (same in every figure)."""
    _, sns = _pyplot()
    sizes = sorted({int(s) for s in sizes})
    return dict(zip(sizes, sns.color_palette("viridis", max(len(sizes), 1))))


def _marker_legend(pal: dict, extra: list) -> list:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", ls="none", label=f"S = {s}") for s, c in pal.items()]
    handles += [Line2D([], [], color="grey", marker="o", ls="none", label="grid run (mean ± sd over seeds)"),
                Line2D([], [], color="grey", marker="D", mec="black", ls="none", label="same η/S as the β runs")]
    return handles + extra


def _top_markers(ax, frame: pd.DataFrame, handles: list) -> None:
    """Runs without a value: an x at the top edge at their eta/S (never a zero)."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    groups = (("diverged (no value)", frame[frame.status != "completed"], "crimson"),
              ("did not reach target loss", frame[(frame.status == "completed") & ~frame.matched], "dimgrey"))
    for label, sub, colour in groups:
        if len(sub):
            ax.plot(sub.lr_over_batch, [0.97] * len(sub), "x", color=colour, ms=9, mew=2, transform=trans,
                    clip_on=False)
            if not any(h.get_label() == label for h in handles):
                handles.append(Line2D([], [], color=colour, marker="x", ls="none", mew=2, label=label))


def _plain_log_ticks(axis, values) -> None:
    """Log axis with plain numbers (5, 10, 20) instead of 5x10^0; minor labels on short ranges."""
    from matplotlib import ticker

    fmt = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    short = len(values) and values.max() / values.min() < 20
    axis.set_minor_formatter(fmt if short else ticker.NullFormatter())


def _ratio_ticks(ax, ratios) -> None:
    """Ticks at the eta/S values that were run (when there are few), labelled 7.8e-04."""
    from matplotlib import ticker

    values = sorted({float(r) for r in ratios if np.isfinite(r) and r > 0})
    if 0 < len(values) <= 8:
        ax.xaxis.set_major_locator(ticker.FixedLocator(values))
        ax.xaxis.set_major_formatter(ticker.FixedFormatter([f"{v:.2g}" for v in values]))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=30)


def _target_text(wide: pd.DataFrame) -> str:
    targets = sorted({float(t) for t in wide.target_loss.dropna()})
    if not targets:
        return "no target train loss set: sharpness after a fixed budget (not matched)"
    return ("each run measured at the first check (every epoch end, or train.stop_checks_per_epoch times per "
            "epoch) whose full train loss ≤ " + ", ".join(f"{t:g}" for t in targets))


def _groups(wide: pd.DataFrame) -> list:
    return list(dict.fromkeys(wide.group)) if len(wide) and "group" in wide else [None]


def plot_vs_ratio(wide: pd.DataFrame, panels, png, pdf, title: str) -> None:
    """panels: [(column, y label, log y, scale)]; one row per group of comparable runs; one
    point per (eta, S) with the seeds as error bars (mean ± sd) and as faint dots."""
    plt, sns = _pyplot()
    groups = _groups(wide)
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(5.2 * len(panels), 4.2 * len(groups)),
                             squeeze=False)
    pal = batch_palette(wide.batch_size) if len(wide) else {}
    handles = _marker_legend(pal, [])
    for row, group in zip(axes, groups):
        gw = wide if group is None else wide[wide.group == group]
        matched = gw[gw.matched] if len(gw) else gw
        for ax, (col, ylabel, logy, scale) in zip(row, panels):
            d = matched[np.isfinite(matched[col].astype(float))].copy() if len(matched) else matched
            if len(d):
                d["_y"] = d[col] * scale
                for eq, marker in ((False, "o"), (True, "D")):
                    sub = d[d.equal_ratio == eq]
                    if len(sub):
                        ax.scatter(sub.lr_over_batch, sub._y, c=[pal[int(v)] for v in sub.batch_size],
                                   marker=marker, s=14, alpha=0.35, linewidths=0)
                agg = d.groupby(["lr", "batch_size", "lr_over_batch", "equal_ratio"])["_y"].agg(
                    ["mean", "std", "count"]).reset_index()
                for _, r in agg.iterrows():
                    colour = pal[int(r.batch_size)]
                    ax.errorbar(r.lr_over_batch, r["mean"], yerr=r["std"] if r["count"] > 1 else None,
                                fmt="D" if r.equal_ratio else "o", color=colour, ms=7, capsize=3,
                                mec="black" if r.equal_ratio else colour, elinewidth=1.2)
            else:
                ax.text(0.5, 0.5, "no matched runs", ha="center", va="center", transform=ax.transAxes)
            if len(gw):
                _top_markers(ax, gw, handles)
            ax.set_xscale("log")
            _ratio_ticks(ax, gw.lr_over_batch if len(gw) else [])
            if logy and len(d):
                ax.set_yscale("log")
                _plain_log_ticks(ax.yaxis, d["_y"])
            ax.set_xlabel(RATIO_LABEL)
            ax.set_ylabel(ylabel)
            if group is not None and len(groups) > 1:
                ax.set_title(group, fontsize=9, loc="left")
    fig.suptitle(f"{title}\n{_target_text(wide) if len(wide) else ''}", fontsize=11)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def _heatmap(ax, wide: pd.DataFrame, sns) -> None:
    lrs, sizes = sorted(wide.lr.unique()), sorted(wide.batch_size.unique())
    mean = np.full((len(sizes), len(lrs)), np.nan)
    labels = np.full(mean.shape, "", dtype=object)
    for (lr, s), g in wide.groupby(["lr", "batch_size"]):
        i, j = sizes.index(s), lrs.index(lr)
        acc = g.test_acc.dropna() * 100
        n_div = int((g.status != "completed").sum())
        n_unm = int(((g.status == "completed") & ~g.matched).sum())
        if len(acc):
            mean[i, j] = acc.mean()
            labels[i, j] = f"{acc.mean():.1f}" + (f"\n±{acc.std(ddof=1):.1f}" if len(acc) > 1 else "")
        if n_div:
            labels[i, j] += ("\n" if labels[i, j] else "") + ("diverged" if not len(acc) else f"({n_div} div.)")
        if n_unm:
            labels[i, j] += f"\n({n_unm} not at target)"
    frame = pd.DataFrame(mean, index=sizes, columns=[f"{v:g}" for v in lrs])
    limits = {"vmin": 0, "vmax": 100} if np.isnan(mean).all() else {}
    sns.heatmap(frame, annot=False, cmap="viridis", ax=ax, cbar_kws={"label": "test accuracy (%)"},
                mask=np.isnan(mean), linewidths=0.5, linecolor="white", **limits)
    ax.set_facecolor("#dddddd")
    for i in range(len(sizes)):
        for j in range(len(lrs)):
            if labels[i, j]:
                if np.isnan(mean[i, j]):
                    colour = "crimson"
                else:
                    colour = "white" if mean[i, j] < np.nanmean(mean) else "black"
                ax.text(j + 0.5, i + 0.5, labels[i, j], ha="center", va="center", fontsize=8, color=colour)
    ax.invert_yaxis()


def plot_accuracy_heatmap(wide: pd.DataFrame, png, pdf) -> None:
    """Mean test accuracy over seeds per (eta, S), one panel per group; diverged cells say so."""
    plt, sns = _pyplot()
    groups = _groups(wide)
    n_lr = max([wide[wide.group == g].lr.nunique() for g in groups if g is not None] or [3])
    n_bs = max([wide[wide.group == g].batch_size.nunique() for g in groups if g is not None] or [3])
    fig, axes = plt.subplots(1, len(groups), figsize=((1.3 * max(n_lr, 3) + 2) * len(groups), 0.8 * max(n_bs, 3) + 1.5),
                             squeeze=False)
    for ax, group in zip(axes[0], groups):
        gw = wide if group is None else wide[wide.group == group]
        if len(gw):
            _heatmap(ax, gw, sns)
        ax.set_xlabel("learning rate η")
        ax.set_ylabel("batch size S (examples)")
        if group is not None and len(groups) > 1:
            ax.set_title(group, fontsize=9, loc="left")
    fig.suptitle("Test accuracy (%) per (η, S), mean ± sd over seeds\n" + (_target_text(wide) if len(wide) else ""),
                 fontsize=10)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def plot_ratio_figures(runs_csv, out: dict) -> None:
    """Sharpness vs eta/S, accuracy vs eta/S and the (eta, S) heatmap from runs.csv."""
    wide = runs_wide(pd.read_csv(runs_csv))
    for col in ("lambda_max", "hessian_trace", "test_acc"):
        if col not in wide:
            wide[col] = np.nan
    plot_vs_ratio(wide, [("lambda_max", "λ_max(H)  (top Hessian eigenvalue)", True, 1.0),
                         ("hessian_trace", "Tr(H)  (Hutchinson)", True, 1.0)],
                  out["sharpness_png"], out["sharpness_pdf"], "Sharpness of the minimum vs η/S")
    plot_vs_ratio(wide, [("test_acc", "test accuracy (%)", False, 100.0)],
                  out["accuracy_png"], out["accuracy_pdf"], "Test accuracy vs η/S")
    plot_accuracy_heatmap(wide, out["heatmap_png"], out["heatmap_pdf"])


def plot_interpolation(table: pd.DataFrame, png, pdf) -> None:
    """Per pair: loss (log) and accuracy along alpha, train solid, test dashed."""
    plt, sns = _pyplot()
    pairs = list(dict.fromkeys(table.pair)) if len(table) else []
    fig, axes = plt.subplots(max(len(pairs), 1), 2, figsize=(11, 3.6 * max(len(pairs), 1)), squeeze=False)
    colours = dict(zip(("train", "test"), sns.color_palette("colorblind", 2)))
    for row, pair in zip(axes, pairs):
        g = table[table.pair == pair]
        first = g.iloc[0]
        for ax, metric, ylabel in ((row[0], "loss", "cross-entropy loss (nats, log scale)"),
                                   (row[1], "accuracy", "accuracy (%)")):
            for split, ls in (("train", "-"), ("test", "--")):
                s = g[(g.split == split) & (g.metric == metric)].sort_values("alpha")
                y = s.value * (100 if metric == "accuracy" else 1)
                ax.plot(s.alpha, y, ls, color=colours[split], marker=".", label=split)
            for a in (0, 1):
                ax.axvline(a, color="grey", lw=0.8, ls=":")
            if metric == "loss" and g[g.metric == "loss"].value.gt(0).any():
                ax.set_yscale("log")
            ax.set_xlabel("α  (θ = (1−α)·θ_a + α·θ_b)")
            ax.set_ylabel(ylabel)
            if g.value.isna().all():
                ax.text(0.5, 0.5, "no values: " + "; ".join(sorted(set(g.note.dropna())))[:110], ha="center",
                        va="center", transform=ax.transAxes, fontsize=8, color="crimson", wrap=True)
                ax.set_yticks([])
        row[0].set_title(f"{pair}: a = {first.a_run} (η/S {first.a_lr_over_batch:.2g}) at α=0, "
                         f"b = {first.b_run} (η/S {first.b_lr_over_batch:.2g}) at α=1", fontsize=9, loc="left")
        row[1].legend(title="split", loc="lower center")
    if not pairs:
        axes[0][0].text(0.5, 0.5, "no interpolation pairs configured", ha="center", va="center")
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def schedule_palette(labels) -> dict:
    _, sns = _pyplot()
    order = {k: i for i, k in enumerate(SCHEDULE_ORDER)}
    labels = sorted(set(labels), key=lambda l: (order.get(schedule_kind(l), 9), l))
    return dict(zip(labels, sns.color_palette("colorblind", max(len(labels), 1))))


def plot_schedules(curves: pd.DataFrame, png, pdf) -> None:
    """Test accuracy, train loss and eta/S per epoch for each schedule; seeds as sd bands."""
    plt, sns = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    if len(curves):
        pal = schedule_palette(curves.schedule)
        acc = curves[(curves.metric == "test_acc") & (curves.epoch >= 1)].assign(value=lambda d: d.value * 100)
        loss = curves[(curves.metric == "train_loss")]
        ratio = curves[(curves.metric == "train_loss") & (curves.epoch >= 1)]
        sns.lineplot(data=acc, x="epoch", y="value", hue="schedule", palette=pal, errorbar="sd", ax=axes[0])
        sns.lineplot(data=loss, x="epoch", y="value", hue="schedule", palette=pal, errorbar="sd", ax=axes[1],
                     legend=False)
        # eta/S of epoch e applies on (e-1, e]; identical curves (a cycle and its mirror) are drawn
        # wide-to-thin so both stay visible
        for i, (label, g) in enumerate(ratio.groupby("schedule", sort=False)):
            g = g.groupby("epoch", as_index=False).lr_over_batch.mean()
            axes[2].plot(np.r_[g.epoch.iloc[0] - 1, g.epoch], np.r_[g.lr_over_batch.iloc[0], g.lr_over_batch],
                         drawstyle="steps-pre", color=pal[label], lw=max(4.5 - 1.2 * i, 1.0), alpha=0.85)
        axes[1].set_yscale("log")
        axes[2].set_yscale("log")
        _plain_log_ticks(axes[2].yaxis, ratio.lr_over_batch)
        sns.move_legend(axes[0], "lower right", title="schedule (band: ± sd over seeds)", fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no schedule runs", ha="center", va="center", transform=axes[0].transAxes)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("full train loss (cross-entropy, log)")
    axes[2].set_ylabel("η/S used in the epoch (log)")
    from matplotlib import ticker

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    fig.suptitle("Exchanging learning-rate and batch-size schedules", fontsize=11)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def _empty_panel(fig, ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_memorization(table: pd.DataFrame, curves: pd.DataFrame, png, pdf) -> None:
    """Per (label noise, momentum): clean test accuracy against accuracy on the noisy training
    labels along training (one line per run, colour = eta/S), the equal-memorization target as
    a dotted line; below, test accuracy at that target against eta/S. Diverged runs: an x at
    the top edge of the lower panel (no value)."""
    plt, sns = _pyplot()
    from matplotlib import cm, colors

    wide = memo_wide(table) if len(table) else pd.DataFrame()
    cells = list(dict.fromkeys(zip(wide.label_noise, wide.momentum))) if len(wide) else []
    fig, axes = plt.subplots(2, max(len(cells), 1), figsize=(5 * max(len(cells), 1) + 1, 8.4), squeeze=False,
                             layout="constrained")
    if not cells:
        _empty_panel(fig, axes[0][0], "no memorization runs at this scale\n(role: memorization: configs/paper.yaml)")
        _empty_panel(fig, axes[1][0], "")
    else:
        ratios = wide.lr_over_batch.astype(float)
        norm = colors.LogNorm(vmin=ratios.min(), vmax=max(ratios.max(), ratios.min() * 1.0001))
        cmap = plt.get_cmap("viridis")
        for col, (noise, mom) in enumerate(cells):
            top, bottom = axes[0][col], axes[1][col]
            cw = wide[(wide.label_noise == noise) & (wide.momentum == mom)]
            cc = curves[(curves.label_noise == noise) & (curves.momentum == mom)]
            for (_, run), g in cc.groupby(["experiment", "run"], sort=False):
                g = g.sort_values("epoch")
                ls = "-" if g.status.iloc[0] == "completed" else ":"
                top.plot(100 * g.train_acc, 100 * g.test_acc, ls, color=cmap(norm(g.lr_over_batch.iloc[0])), lw=1.2)
            target = cw.target_train_acc.iloc[0]
            top.axvline(100 * target, color="grey", ls=":", lw=1)
            top.set_xlabel("accuracy on the noisy training labels (%)")
            top.set_ylabel("test accuracy, clean labels (%)")
            top.set_title(f"{100 * noise:g}% random labels, momentum {mom:g}", fontsize=10, loc="left")
            ok = cw[cw.test_acc_at_level.notna()]
            if len(ok):
                bottom.scatter(ok.lr_over_batch, 100 * ok.test_acc_at_level, c=[cmap(norm(v)) for v in ok.lr_over_batch],
                               s=30, edgecolors="black", linewidths=0.4)
            else:
                bottom.text(0.5, 0.5, "no run reached the target", ha="center", va="center",
                            transform=bottom.transAxes)
            from matplotlib.transforms import blended_transform_factory

            trans = blended_transform_factory(bottom.transData, bottom.transAxes)
            div = cw[cw.status != "completed"]
            never = cw[(cw.status == "completed") & cw.test_acc_at_level.isna()]
            for sub, colour, label in ((div, "crimson", "diverged (no value)"),
                                       (never, "dimgrey", "never reached the target")):
                if len(sub):
                    bottom.plot(sub.lr_over_batch, [0.97] * len(sub), "x", color=colour, ms=9, mew=2, transform=trans,
                                clip_on=False, label=label)
            if len(div) or len(never):
                bottom.legend(loc="lower right", fontsize=8)
            bottom.set_xscale("log")
            _ratio_ticks(bottom, cw.lr_over_batch)
            bottom.set_xlabel(RATIO_LABEL)
            bottom.set_ylabel(f"test accuracy at {100 * target:.1f}% noisy-train acc. (%)")
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), label="η/S (line and dot colour)",
                     shrink=0.6)
    fig.suptitle("Memorization with random labels: generalization at equal memorization\n"
                 "(equal memorization = first epoch at the dotted noisy-train accuracy)", fontsize=11)
    _save(fig, png, pdf)
    plt.close(fig)


def plot_breaking(runs: pd.DataFrame, summary: pd.DataFrame, tolerance: float, png, pdf) -> None:
    """Final test accuracy against beta (eta and S scaled together), one line per train size,
    seeds as dots; the tolerance band below each size's reference and its breaking beta as a
    vertical line; diverged runs as an x at the top edge."""
    plt, sns = _pyplot()
    from matplotlib.transforms import blended_transform_factory

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if summary.empty:
        _empty_panel(fig, ax, "no breaking-point runs at this scale\n(role: breaking: configs/paper.yaml)")
    else:
        exps = list(summary.drop_duplicates("experiment").assign(size_key=lambda d: d.train_size.map(_size_key))
                    .sort_values("size_key").experiment)
        pal = dict(zip(exps, sns.color_palette("colorblind", len(exps))))
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        for exp in exps:
            s = summary[summary.experiment == exp].sort_values("beta")
            r = runs[runs.experiment == exp]
            size = s.train_size.iloc[0]
            label = f"train size {'full' if _size_key(size) == math.inf else int(size)}"
            colour = pal[exp]
            ax.plot(s.beta, 100 * s.mean_test_acc, "-o", color=colour, label=label)
            ok = r[r.status == "completed"]
            ax.scatter(ok.beta, 100 * ok.test_acc, color=colour, s=12, alpha=0.4)
            ref = s.reference_acc.iloc[0]
            if not math.isnan(ref):
                ax.axhspan(100 * (ref - tolerance), 100 * ref, color=colour, alpha=0.08)
            b = s.breaking_beta.iloc[0]
            if not math.isnan(b):
                ax.axvline(b, color=colour, ls="--" if not s.censored.iloc[0] else ":", lw=1)
            div = r[r.status != "completed"]
            if len(div):
                ax.plot(div.beta, [0.97] * len(div), "x", color="crimson", ms=9, mew=2, transform=trans,
                        clip_on=False)
        ax.set_xscale("log", base=2)
        _plain_log_ticks(ax.xaxis, summary.beta)
        ax.legend(title=f"band: {100 * tolerance:g}-point tolerance; dashed: breaking β", fontsize=8)
    ax.set_xlabel("β  (η = η₀β, S = S₀β: equal η/S)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Breaking point of the η/S scaling by train-set size (x at top: diverged)", fontsize=10)
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)
