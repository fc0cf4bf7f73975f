"""Paper D's settings and what the rules of rules/breakeven.smk need from them.

Imported while Snakemake parses the workflow, so it imports no torch and no plotting
library. The defaults of every setting live only in schemas/breakeven.schema.yaml
(filled in by the rule file's validate()); an experiment's ``analysis:`` overrides them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "breakeven.schema.yaml"


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
    the paper schema; any problem is a repro.config.ConfigError naming the key.
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
        # repro.config imports torch (through repro.data): only when a setting is wrong
        from ..config import ConfigError

        path = ".".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"{where}{'.' + path if path else ''}: {exc.message}") from None


def probe_params(settings: dict) -> dict:
    """What defines the probe subsets of an experiment (params of rule breakeven_probe)."""
    cov = settings["covariance"]
    return dict(probe_seed=settings["probe_seed"], accuracy_examples=settings["accuracy_examples"],
                hessian_fraction=settings["hessian"]["fraction"],
                hessian_max_examples=settings["hessian"]["max_examples"],
                covariance_mode=cov["mode"], covariance_batches=cov["n_batches"],
                covariance_batch_size=cov["batch_size"], covariance_examples=cov["n_examples"])


def measure_params(settings: dict) -> dict:
    """What defines a snapshot measurement besides the probe (params of rule breakeven_curvature)."""
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


def run_rows(runs: dict, keys, settings: dict, snapshot_epochs) -> list[dict]:
    """run_info of each (experiment, run) in keys (RUNS is repro.config.expand_runs' table;
    snapshot_epochs is repro.config.snapshot_epochs, handed in by the rule file)."""
    return [run_info(runs[key], settings[key[0]], snapshot_epochs(runs[key])) for key in keys]


def metric_paths(keys, base: str) -> list[str]:
    """The measurement file of every (experiment, run) in keys: {base}/{experiment}/{run}.json."""
    return [f"{base}/{e}/{r}.json" for e, r in keys]


def dataset_spec(runs: dict, experiment: str) -> dict:
    """The data an experiment's runs train on (dataset, test_fraction, train_size)."""
    cfg = next(cfg for (e, _), cfg in runs.items() if e == experiment)
    return {k: cfg[k] for k in ("dataset", "test_fraction", "train_size") if k in cfg}
