"""From a validated config to the run table: one row per training run, readable ids.

The schema (schemas/config.schema.yaml) checks types and allowed values; this module
checks what a schema cannot: every expanded run again (grid values are checked like
hand-written ones), duplicate run names, architectures that do not fit the data, and
datasets that are missing while offline. Every problem is a ``ConfigError`` naming the
key, the bad value and what is allowed, raised while Snakemake parses the workflow, so
no job starts on a bad config.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from .data import availability_error

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")
INPUT_SHAPES = {"mnist5k": (1, 28, 28), "digits": (1, 8, 8), "mnist": (1, 28, 28),
                "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
NUM_CLASSES = {"cifar100": 100}
# training examples before any train_size subset: embedded sets are split by test_fraction
# (stratified per class, so a few examples either way), torchvision sets have an official split
EMBEDDED_SIZES = {"mnist5k": 5000, "digits": 1797}
OFFICIAL_TRAIN_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}
SHORT_KEYS = {"lr": "lr", "batch_size": "bs", "momentum": "mom", "weight_decay": "wd"}


class ConfigError(ValueError):
    """A configuration problem, with the key, the value and what is allowed."""


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def describe_schema_error(error: Exception) -> str:
    """One line for a schema violation wrapped by snakemake.utils.validate: key, value, rule."""
    exc = error
    while exc is not None and not isinstance(exc, jsonschema.ValidationError):
        exc = exc.__cause__ or exc.__context__
    if exc is None:
        return str(error)
    path = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
    allowed = exc.schema.get("description") if exc.validator in ("pattern", "not") else None
    return f"{path}: {exc.message}" + (f" (allowed: {allowed})" if allowed else "")


def _set_dotted(d: dict, key: str, value) -> None:
    section, field = key.split(".", 1)
    d.setdefault(section, {})[field] = value


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _expand(name: str, exp: dict) -> list[tuple[str, dict]]:
    """(run name without seed, overrides) for the grid product and explicit runs."""
    grid = exp.get("grid") or {}
    variants = []
    if grid:
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            label = "_".join(f"{SHORT_KEYS.get(k.split('.')[1], k.split('.')[1])}{_fmt(v)}"
                             for k, v in zip(keys, values))
            variants.append((label, dict(zip(keys, values))))
    for run in exp.get("runs") or []:
        variants.append((run["name"], dict(run.get("set") or {})))
    return variants or [("base", {})]


def run_models(exp: dict) -> dict[str, dict]:
    """{run name without seed: resolved model spec} of an experiment (no data needed)."""
    models = {}
    for label, overrides in _expand("", exp):
        resolved = {"model": copy.deepcopy(exp["model"])}
        for key, value in overrides.items():
            if key.startswith("model."):
                _set_dotted(resolved, key, value)
        models[label] = resolved["model"]
    return models


def _check_name(where: str, name: str) -> None:
    if not NAME_RE.match(name) or ".." in name:
        raise ConfigError(f"{where}: run name {name!r} is not allowed; use letters, digits, "
                          "'.', '_', '+', '-' (no '/', '..', spaces or shell characters)")


def _validate_experiment(where: str, exp: dict, schema: dict) -> None:
    sub = {"$defs": schema["$defs"], "$ref": "#/$defs/experiment"}
    try:
        jsonschema.Draft202012Validator(sub).validate(exp)
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"{where}.{path}: {exc.message}") from None


def _check_model(where: str, exp: dict, checked: dict) -> None:
    """Build the model on the meta device (no memory, no real init) and run a fake batch.

    Each distinct (model, dataset) pair is checked once: a paper config has thousands of
    runs but a handful of architectures.
    """
    import json

    import torch

    from .models import build_model

    key = json.dumps([exp["model"], exp["dataset"]], sort_keys=True)
    if key not in checked:
        shape = INPUT_SHAPES[exp["dataset"]]
        try:
            with torch.device("meta"):
                model = build_model(exp["model"], shape, NUM_CLASSES.get(exp["dataset"], 10))
                model.eval()(torch.zeros(2, *shape))
            checked[key] = None
        except Exception as exc:  # noqa: BLE001 - any build failure is a config error
            checked[key] = f"{exp['model']} does not fit {exp['dataset']} inputs of shape {shape}: {exc}"
    if checked[key]:
        raise ConfigError(f"{where}.model: {checked[key]}")


def _max_train_examples(exp: dict) -> int:
    """An upper bound on the run's training-set size (known without loading the data)."""
    name = exp["dataset"]
    if name in EMBEDDED_SIZES:
        n = math.ceil(EMBEDDED_SIZES[name] * (1 - exp.get("test_fraction", 0.2))) + NUM_CLASSES.get(name, 10)
    else:
        n = OFFICIAL_TRAIN_SIZES[name]
    return min(n, exp.get("train_size") or n)


def _check_train(where: str, exp: dict) -> None:
    """Settings that cannot work: a batch larger than the training set (every epoch would
    take 0 steps and the run would 'complete' untrained); a stop check without a target."""
    train = exp["train"]
    schedule = train.get("batch_schedule") or {}
    batches = [train["batch_size"]] + [schedule[k] for k in ("low", "high") if k in schedule]
    batches += list(schedule.get("values", []))
    n = _max_train_examples(exp)
    if max(batches) > n:
        raise ConfigError(f"{where}.train.batch_size: {max(batches)} is larger than the training set "
                          f"({exp['dataset']}, at most {n} examples); use a batch size <= {n}")
    if train.get("stop_checks_per_epoch", 1) != 1 and train.get("stop_at_train_loss") is None:
        raise ConfigError(f"{where}.train.stop_checks_per_epoch: {train['stop_checks_per_epoch']} has no "
                          "effect without train.stop_at_train_loss; set a target loss or remove it")


def snapshot_epochs(exp: dict) -> list[float]:
    """The (fractional) epochs at which a run of this experiment saves its weights."""
    spec = exp.get("snapshots") or {}
    epochs = exp["train"]["epochs"]
    if "at" in spec:
        return sorted({float(e) for e in spec["at"] if e <= epochs})
    if not spec:
        return []
    dense, per, every = spec.get("dense_epochs", 0), spec.get("per_epoch", 1), spec.get("every", 1)
    points = {round(e + i / per, 6) for e in range(dense) for i in range(per)}
    points |= {float(e) for e in range(0, epochs + 1, every)} | {float(epochs)}
    return sorted(p for p in points if p <= epochs)


def expand_runs(config: dict) -> dict[tuple[str, str], dict]:
    """{(experiment, run): resolved run config}, every run checked; raises ConfigError."""
    schema = load_schema()
    runs: dict[tuple[str, str], dict] = {}
    checked_models: dict[str, str | None] = {}
    for name, exp in config["experiments"].items():
        where = f"experiments.{name}"
        _check_name("experiments", name)
        err = availability_error(exp["dataset"], config.get("data_root", "data"), config.get("download", False))
        if err:
            raise ConfigError(f"{where}.dataset: {err}")
        seen = set()
        for label, overrides in _expand(name, exp):
            resolved = copy.deepcopy({k: v for k, v in exp.items() if k not in ("grid", "runs", "seeds")})
            for key, value in overrides.items():
                _set_dotted(resolved, key, value)
            _validate_experiment(f"{where} (run {label})", resolved, schema)
            _check_model(f"{where} (run {label})", resolved, checked_models)
            _check_train(f"{where} (run {label})", resolved)
            for seed in exp.get("seeds", [0]):
                run = f"{label}_s{seed}"
                _check_name(where, run)
                if run in seen:
                    raise ConfigError(f"{where}: duplicate run name {run!r}; give explicit runs distinct names")
                seen.add(run)
                runs[(name, run)] = {**resolved, "seed": seed, "experiment": name, "run": run}
    return runs


def run_config(config: dict, experiment: str, run: str) -> dict:
    return expand_runs(config)[(experiment, run)]


def run_table(runs: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """Tidy table of all runs: ids, paper, data, model and the SGD hyperparameters."""
    rows = []
    for (exp, run), cfg in runs.items():
        tr = cfg["train"]
        rows.append(dict(experiment=exp, run=run, paper=cfg["paper"], seed=cfg["seed"], dataset=cfg["dataset"],
                         model=cfg["model"]["name"], lr=tr["lr"], batch_size=tr["batch_size"],
                         lr_over_batch=tr["lr"] / tr["batch_size"], momentum=tr.get("momentum", 0.0),
                         weight_decay=tr.get("weight_decay", 0.0), epochs=tr["epochs"],
                         lr_schedule=(tr.get("lr_schedule") or {}).get("type", "constant"),
                         batch_schedule=(tr.get("batch_schedule") or {}).get("type", "constant")))
    return pd.DataFrame(rows)
