"""Paper D's settings and what the rules of rules/breakeven.smk need from them.

Imported while Snakemake parses the workflow, so it imports no torch and no plotting
library. The defaults of every setting live only in schemas/breakeven.schema.yaml
(filled in by repro.settings); an experiment's ``analysis:`` overrides them.
"""

from __future__ import annotations

from ..config_sizes import run_sizes
from ..papers import get as get_paper
from ..settings import check, check_override, deep_merge, load_schema

PAPER = get_paper("breakeven")


def experiment_settings(paper_settings: dict, analysis: dict | None, where: str = "analysis") -> dict:
    """The paper-wide settings overridden by an experiment's `analysis:` (repro.settings).

    The override is checked against what paper D allows there and the merged result against
    the paper schema (defaults filled from it); any problem is a ConfigError naming the key.
    `label` is no paper-wide setting: it is taken out before the merge and put back after.
    """
    override = check_override(PAPER.key, analysis, where)
    label = override.pop("label", None)
    merged = check(deep_merge(paper_settings, override), load_schema(PAPER.key), where)
    merged["label"] = label
    return merged


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
    h, cov = settings["hessian"], settings["covariance"]
    return dict(hessian_k=h["k"], hessian_tol=h["tol"], hessian_batch_size=h["batch_size"],
                covariance_top=cov["top"], alpha=dict(settings["alpha"]),
                bn_modes=dict(hessian=h["bn_mode"], covariance=cov["bn_mode"]),
                measure_eval_mode_too=settings["measure_eval_mode_too"])


def model_label(cfg: dict, settings: dict | None = None) -> str:
    """SimpleCNN / SimpleCNN-BN (or the model name), unless the experiment sets a label."""
    if settings and settings.get("label"):
        return settings["label"]
    model = cfg["model"]
    if model["name"] == "simplecnn":
        return "SimpleCNN-BN" if model.get("batch_norm") else "SimpleCNN"
    return {"mlp": "MLP", "vgg": "VGG-BN", "resnet": "ResNet"}.get(model["name"], model["name"])


def has_batch_norm(model: dict) -> bool:
    """Whether the model spec has BatchNorm layers (repro.models: SimpleCNN with batch_norm,
    VGG-BN and the ResNets; not the MLP): the BN η sweep is its own claim (suffix -bn)."""
    return {"simplecnn": bool(model.get("batch_norm")), "mlp": False}.get(model["name"], True)


def run_info(cfg: dict, settings: dict, snapshot_epochs: list[float]) -> dict:
    """One row of the run table the table rule needs (from a resolved run config)."""
    tr = cfg["train"]
    return dict(experiment=cfg["experiment"], run=cfg["run"], seed=cfg["seed"], dataset=cfg["dataset"],
                model=model_label(cfg, settings), lr=float(tr["lr"]), batch_size=int(tr["batch_size"]),
                momentum=float(tr.get("momentum", 0.0)), epochs=int(tr["epochs"]),
                snapshots=[float(e) for e in snapshot_epochs],
                steps_per_epoch=run_sizes(cfg)[0] // int(tr["batch_size"]),
                batch_norm=has_batch_norm(cfg["model"]),
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
