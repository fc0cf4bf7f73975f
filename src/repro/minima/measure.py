"""Paper B's torch jobs: sharpness of saved models at their matched train loss (rule
minima_sharpness) and the 1-D interpolation between pairs of saved models (rule
minima_interpolate). One job measures several runs (pairs) one after another, each exactly
as a job of its own would (:func:`as_if_alone`); see repro.minima for what each number means."""

from __future__ import annotations

import contextlib
import json
import math
import random
import time

import numpy as np
import pandas as pd
import torch

from ..io import atomic_write_json, atomic_write_text
from ..runs import FINAL_METRICS, RunRecord


def load_run_data(spec: dict, data_root="data", download=False):
    """The run's data split (repro.data.load_run_dataset of :func:`repro.minima.plan.data_spec`)."""
    from ..data import load_run_dataset

    return load_run_dataset(spec, data_root, download)


class DataCache:
    """Each distinct data spec loaded once per job (a job's runs often share their data set;
    the measurements only read its tensors)."""

    def __init__(self, data_root="data", download=False):
        self.data_root, self.download, self._loaded = data_root, download, {}

    def __call__(self, spec: dict):
        key = json.dumps(spec, sort_keys=True)
        if key not in self._loaded:
            self._loaded[key] = load_run_data(spec, self.data_root, self.download)
        return self._loaded[key]


@contextlib.contextmanager
def as_if_alone(device="cpu"):
    """Run one measurement from the random state the job started with and restore it after,
    so a run's numbers never depend on which runs share its job. (The measurements draw only
    from their own seeded generators; this also fences off any global draw: torch, CUDA,
    numpy, random.)"""
    dev = torch.device(device)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def run_facts(record: RunRecord) -> dict:
    """experiment, run, seed, lr, batch_size, eta/S, target and the matched-loss verdict:
    matched = the run completed at or below its target train loss (stop_at_train_loss)."""
    target = record.train.get("stop_at_train_loss")
    train_loss = record.final.get("train_loss")
    matched = bool(record.completed and target is not None and train_loss is not None
                   and math.isfinite(train_loss) and train_loss <= target)
    if not record.completed:
        note = record.failure
    elif target is None:
        note = "no target train loss set: measured after a fixed budget, not at matched loss"
    elif not matched:
        note = f"did not reach the target train loss {target:g} ({record.stop_reason})"
    else:
        note = ""
    return dict(experiment=record.experiment, run=record.run, seed=record.seed, lr=record.lr,
                batch_size=record.batch_size, lr_over_batch=record.lr_over_batch, target_loss=target,
                status=record.status, stop_reason=record.stop_reason, matched=matched,
                epoch=record.epochs_completed, step=record.steps, note=note,
                final={k: record.final.get(k) for k in FINAL_METRICS} if record.completed else {})


def sharpness_batches(data, n_examples: int, seed: int, batch_size: int, device="cpu") -> list:
    """A fixed class-balanced subset of the training set, as a list of (x, y) chunks."""
    from ..data import stratified_subset

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
    record = RunRecord.read(status_path)
    out = {**run_facts(record), "settings": dict(settings), "device": str(device)}
    out["sharpness"] = {"lambda_max": None, "eigenvalues": [], "hessian_trace": None,
                        "hessian_trace_stderr": None, "subset_loss": None}
    if not record.completed:
        return out
    from .. import curvature
    from ..interpolate import evaluate_split
    from ..train import load_model

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


def sharpness_job(model_paths, status_paths, data_specs, out_path, settings: dict, data_root="data",
                  download=False, device="cpu") -> list[dict]:
    """Rule minima_sharpness: measure each run of a part (model, status and data spec, in
    order; data loaded only when there is a model to measure) and write their records as one
    JSON list, each record what a job of its own would have written."""
    datasets = DataCache(data_root, download)
    results = []
    for model_path, status_path, spec in zip(model_paths, status_paths, data_specs, strict=True):
        dataset = datasets(spec) if RunRecord.read(status_path).completed else None
        with as_if_alone(device):
            results.append(measure_sharpness(model_path, status_path, dataset, settings, device))
    atomic_write_json(out_path, results)
    return results


def claim_alphas(d: float) -> list[float]:
    """The six alphas of claims B7: -d, 0, d at model a and 1-d, 1, 1+d at model b."""
    return sorted({round(a, 9) for a in (-d, 0.0, d, 1 - d, 1.0, 1 + d)})


def interpolation_alphas(settings: dict) -> list[float]:
    """The evenly spaced grid plus the six points of claims B7 (:func:`claim_alphas`, d =
    side_offset), so the second differences use exact evaluations, never interpolated ones.
    ``claim_points_only`` (a seed replicate of a pair): the six points alone."""
    from ..interpolate import alphas_grid

    d = settings.get("side_offset")
    extra = claim_alphas(d) if d else []
    if settings.get("claim_points_only") and extra:
        return extra
    grid = alphas_grid(settings["alpha_min"], settings["alpha_max"], settings["num"])
    return sorted(set(grid) | set(extra))


def interpolate_pair(pair: str, a: dict, b: dict, settings: dict, data_root="data", download=False,
                     device="cpu", group: str | None = None, label: str | None = None,
                     datasets: DataCache | None = None) -> pd.DataFrame:
    """Loss/accuracy along the line between two saved runs; a = {model, status, data} paths
    and data spec. `group`: the comparison group of run a's experiment (claims B7 compare
    pairs within it); `label`: the comparison this pair repeats over seeds (claims B7);
    `datasets`: the job's :class:`DataCache` (default: load the data)."""
    from ..interpolate import interpolation_curve
    from ..train import load_model

    ends = {end: RunRecord.read(d["status"]) for end, d in (("a", a), ("b", b))}
    head = {"pair": pair, "group": group if group is not None else "", "label": label if label is not None else pair}
    for end, rec in ends.items():
        head.update({f"{end}_experiment": rec.experiment, f"{end}_run": rec.run, f"{end}_seed": rec.seed,
                     f"{end}_lr": rec.lr,
                     f"{end}_batch_size": rec.batch_size, f"{end}_lr_over_batch": rec.lr_over_batch})
    alphas = interpolation_alphas(settings)
    bad = [f"run {r.experiment}/{r.run} {r.status}: {r.stop_reason}" for r in ends.values() if not r.completed]
    if bad:
        rows = [{**head, "alpha": al, "split": s, "metric": m, "value": math.nan, "note": "; ".join(bad)}
                for al in alphas for s in ("train", "test") for m in ("loss", "accuracy")]
        return pd.DataFrame(rows)
    data = (datasets or DataCache(data_root, download))(a["data"])
    model_a, _ = load_model(a["model"], device)
    model_b, _ = load_model(b["model"], device)
    splits = {"train": (data.x_train.to(device), data.y_train.to(device)),
              "test": (data.x_test.to(device), data.y_test.to(device))}
    bn_batches = sharpness_batches(data, settings["bn_examples"], 0, 500, device)
    curve = interpolation_curve(model_a, model_b, splits, alphas, bn=settings["bn"], bn_batches=bn_batches)
    return pd.concat([pd.DataFrame([head] * len(curve)), curve], axis=1)


def interpolation_job(pairs: list[dict], model_paths, status_paths, out_path, settings: dict, data_root="data",
                      download=False, device="cpu") -> pd.DataFrame:
    """Rule minima_interpolate: :func:`interpolate_pair` for each pair of a part, its tables
    one after another in one CSV. `pairs`: repro.minima.plan's pair specs (pair, data, group,
    label, claim_points_only); `model_paths`, `status_paths`: ends a and b of the first pair,
    then of the next."""
    if len(model_paths) != 2 * len(pairs) or len(status_paths) != 2 * len(pairs):
        raise ValueError(f"{len(pairs)} pairs need {2 * len(pairs)} models and status files, "
                         f"got {len(model_paths)} and {len(status_paths)}")
    datasets = DataCache(data_root, download)
    tables = []
    for i, spec in enumerate(pairs):
        a, b = ({"model": model_paths[j], "status": status_paths[j], "data": spec["data"]} for j in (2 * i, 2 * i + 1))
        own = {**settings, "claim_points_only": spec["claim_points_only"]}
        with as_if_alone(device):
            tables.append(interpolate_pair(spec["pair"], a, b, own, data_root, download, device, spec["group"],
                                           spec["label"], datasets))
    table = pd.concat(tables, ignore_index=True)
    atomic_write_text(out_path, table.to_csv(index=False))
    return table
