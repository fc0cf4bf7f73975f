"""From a configuration to the run table: one row per training run, readable ids.

:func:`parse_config` is the one parse-time entry point (rules/common.smk): duplicate keys
in the files, then one validation against the one schema (repro.settings: normalising,
defaults), then every expanded run checked again (grid values and `set:` overrides like
hand-written ones) for what a schema cannot say: schedules that do not mean what they
say, duplicates, models that do not fit the data or the machine, sizes beyond the data,
and datasets missing while offline. Every problem is a ``ConfigError`` naming the key
path, the bad value and what is allowed, raised while Snakemake parses the workflow, so
no job starts on a bad config.
"""

from __future__ import annotations

import copy
import itertools
import re

import pandas as pd

from . import config_sizes as sizes
from .config_sizes import INPUT_SHAPES, NUM_CLASSES  # noqa: F401 - re-exported
from .data_files import availability_error
from .config_checks import check_analysis_sizes, check_experiment, check_run
from .runs import lr_over_batch
from .settings import (SCHEMA_DIR, ConfigError, check, check_config_file, normalise_config, short, subschema,
                       validate_config)

SCHEMA_PATH = SCHEMA_DIR / "config.schema.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")
SHORT_KEYS = {"lr": "lr", "batch_size": "bs", "momentum": "mom", "weight_decay": "wd"}

__all__ = ["ConfigError", "SCHEMA_PATH", "parse_config", "expand_runs", "run_config", "run_table",
           "run_models", "snapshot_epochs", "snapshot_steps", "steps_per_epoch", "describe_schema_error", "load_schema"]


def load_schema() -> dict:
    from .settings import load_schema as _load

    return _load("config")


def describe_schema_error(error: Exception) -> str:
    """The one line of a ConfigError (kept for callers of the former two-step check)."""
    return str(error)


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


def expand_runs(config: dict) -> dict[tuple[str, str], dict]:
    """{(experiment, run): resolved run config}, every run checked; raises ConfigError.

    `config` has been through :func:`repro.settings.validate_config` (defaults filled)."""
    runs: dict[tuple[str, str], dict] = {}
    data_root = config.get("data_root", "data")
    limit = sizes.memory_limit(config)
    for name, exp in config["experiments"].items():
        where = f"experiments.{name}"
        _check_name("experiments", name)
        err = availability_error(exp["dataset"], data_root, config.get("download", False))
        if err:
            raise ConfigError(f"{where}.dataset: {err}")
        check(exp, subschema("experiment"), where, fill=False)  # experiment-level keys named without a run
        check_experiment(where, exp)
        seen, resolved_runs = {}, []
        for label, overrides in _expand(name, exp):
            resolved = copy.deepcopy({k: v for k, v in exp.items() if k not in ("grid", "runs", "seeds")})
            for key, value in overrides.items():
                _set_dotted(resolved, key, value)
            here = f"{where} (run {label})"
            resolved = check(resolved, subschema("experiment"), here, fill=False)
            check_run(here, resolved, data_root, limit)
            resolved_runs.append(resolved)
            for seed in exp.get("seeds", [0]):
                run = f"{label}_s{seed}"
                _check_name(where, run)
                if run in seen:
                    raise ConfigError(f"{where}: duplicate run name {run!r} (from {seen[run]} and {label!r}); "
                                      "give explicit runs distinct names")
                seen[run] = label
                runs[(name, run)] = {**resolved, "seed": seed, "experiment": name, "run": run}
        _check_snapshots_used(where, exp, resolved_runs)
    return runs


def _check_snapshots_used(where: str, exp: dict, resolved_runs: list[dict]) -> None:
    """A snapshot epoch beyond every run's epochs would silently never be taken; a step
    schedule needs one number of steps per epoch and distinct snapshot names."""
    spec = exp.get("snapshots") or {}
    step_keys, epoch_keys = STEP_KEYS & set(spec), EPOCH_KEYS & set(spec)
    if step_keys and epoch_keys:
        raise ConfigError(f"{where}.snapshots: {sorted(step_keys)} (by step) and {sorted(epoch_keys)} (by epoch) "
                          "are given together (allowed: one of the two schedules)")
    if step_keys:
        for run in resolved_runs:
            if run["train"].get("batch_schedule"):
                raise ConfigError(f"{where}.snapshots.steps: a run with train.batch_schedule has no fixed number "
                                  "of steps per epoch (allowed: snapshots.at with a batch schedule)")
            epochs = snapshot_epochs(run)
            names = [f"e{e:g}" for e in epochs]
            if len(set(names)) < len(names) or any("e" in n[1:] for n in names):
                raise ConfigError(f"{where}.snapshots.steps: steps {short(snapshot_steps(run))} give snapshot "
                                  f"names {short(names)} that repeat or are not plain decimals (allowed: steps "
                                  "far enough apart for 6 significant digits of their epoch)")
    at = spec.get("at") or []
    longest = max(r["train"]["epochs"] for r in resolved_runs)
    late = [e for e in at if e > longest]
    if late:
        raise ConfigError(f"{where}.snapshots.at: {short(late)} lie beyond the longest run's train.epochs "
                          f"({longest}) and would never be taken (allowed: epochs <= {longest}; a run shorter "
                          "than another skips the snapshots past its own end)")


def parse_config(config: dict, config_files=()) -> dict[tuple[str, str], dict]:
    """Everything checked at parse time, in order; the config is normalised and its defaults
    filled in place. Returns the run table of :func:`expand_runs`."""
    for path in config_files:
        check_config_file(path)
    given = copy.deepcopy(normalise_config(config))
    validate_config(config)
    runs = expand_runs(config)
    check_analysis_sizes(config, given, runs)
    return runs


def run_config(config: dict, experiment: str, run: str) -> dict:
    return expand_runs(config)[(experiment, run)]


STEP_KEYS = {"steps", "every_steps"}
EPOCH_KEYS = {"at", "dense_epochs", "per_epoch", "every"}


def steps_per_epoch(run: dict, data_root="data") -> int:
    """SGD steps in one epoch of a run: the training examples // S (the loop drops the last
    partial batch; repro.train.run_epoch)."""
    return sizes.run_sizes(run, data_root)[0] // int(run["train"]["batch_size"])


def snapshot_steps(run: dict, data_root="data") -> list[int]:
    """Global steps of a step schedule (``snapshots: {steps, every_steps}``): the listed steps
    and every ``every_steps``-th step up to the run's last step, which is always kept."""
    spec = run.get("snapshots") or {}
    last = steps_per_epoch(run, data_root) * int(run["train"]["epochs"])
    steps = {int(s) for s in spec.get("steps", []) if s <= last}
    if spec.get("every_steps"):
        steps |= set(range(0, last + 1, int(spec["every_steps"])))
    return sorted(steps | {last})


def snapshot_epochs(exp: dict, data_root="data") -> list[float]:
    """The (fractional) epochs at which a run of this experiment saves its weights.

    A step schedule (``steps``, ``every_steps``; a resolved run, whose S fixes the steps per
    epoch) is written as epochs too, epoch = step / steps per epoch, so snapshot names
    (e<epoch>) and every reader of them stay as they are; the training loop maps an epoch
    back to its step exactly (repro.train.snapshot_steps).
    """
    spec = exp.get("snapshots") or {}
    epochs = exp["train"]["epochs"]
    if STEP_KEYS & set(spec):
        per = steps_per_epoch(exp, data_root)
        return [step / per for step in snapshot_steps(exp, data_root)]
    if "at" in spec:
        return sorted({float(e) for e in spec["at"] if e <= epochs})
    if not spec:
        return []
    dense, per, every = spec.get("dense_epochs", 0), spec.get("per_epoch", 1), spec.get("every", 1)
    points = {round(e + i / per, 6) for e in range(dense) for i in range(per)}
    points |= {float(e) for e in range(0, epochs + 1, every)} | {float(epochs)}
    return sorted(p for p in points if p <= epochs)


def run_table(runs: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """Tidy table of all runs: ids, paper, data, model and the SGD hyperparameters."""
    rows = []
    for (exp, run), cfg in runs.items():
        tr = cfg["train"]
        rows.append(dict(experiment=exp, run=run, paper=cfg["paper"], seed=cfg["seed"], dataset=cfg["dataset"],
                         model=cfg["model"]["name"], lr=tr["lr"], batch_size=tr["batch_size"],
                         lr_over_batch=lr_over_batch(tr["lr"], tr["batch_size"]), momentum=tr.get("momentum", 0.0),
                         weight_decay=tr.get("weight_decay", 0.0), epochs=tr["epochs"],
                         lr_schedule=(tr.get("lr_schedule") or {}).get("type", "constant"),
                         batch_schedule=(tr.get("batch_schedule") or {}).get("type", "constant")))
    return pd.DataFrame(rows)
