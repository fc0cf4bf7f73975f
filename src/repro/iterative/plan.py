"""Paper A planning: settings, run lists and the input/params functions of rules/iterative.smk.

Imported when Snakemake parses the workflow, so it imports no torch and no plotting
library. Settings defaults come only from schemas/iterative.schema.yaml: the paper-level
`iterative:` section overrides them, and an experiment's `analysis:` section overrides
those for that experiment's runs.

The names of the tables and figures are fixed here because the rules declare them as
outputs; the modules that write them (tables, figures) use the same tuples.
"""

from __future__ import annotations

import copy
from functools import lru_cache

from ..papers import get as get_paper
from ..settings import check_override, deep_merge, schema_defaults

PAPER = get_paper("iterative")

ID_COLUMNS = ["experiment", "run", "seed", "label", "variant"]
TABLES = ("blocks", "drop", "borderline", "unroll", "heads", "init", "curves", "runs", "table1")  # table1 last
FIGURES = ("cosine", "norm_ratio", "drop", "heads", "borderline", "unroll", "sharing_init", "sharing_curves")
MODEL_TABLES = ("blocks", "drop", "borderline", "unroll")
SNAPSHOT_TABLES = ("heads", "init")
# the settings each per-run job depends on (its params: a change reruns only that job)
MODEL_KEYS = ("max_examples", "subset_seed", "batch_size", "splits", "n_shuffles", "borderline", "unroll")
SNAPSHOT_KEYS = ("max_examples", "subset_seed", "batch_size", "heads_splits", "init_batch")


@lru_cache(maxsize=1)
def _defaults() -> dict:
    return schema_defaults(PAPER.key)


def defaults() -> dict:
    """The paper-A settings defaults (a fresh copy), read from the schema."""
    return copy.deepcopy(_defaults())


def settings_for(paper_settings: dict | None, experiment_analysis: dict | None = None) -> dict:
    """Schema defaults <- paper-level settings <- the experiment's `analysis:` (nested dicts merged)."""
    return deep_merge(deep_merge(_defaults(), paper_settings), experiment_analysis)


def experiment_settings(config: dict, experiment: str, keys=None) -> dict:
    """The settings of one experiment (paper-level `iterative:` <- its `analysis:`), only `keys`."""
    where = f"experiments.{experiment}.analysis"
    analysis = check_override(PAPER.key, config["experiments"][experiment].get("analysis"), where)
    settings = settings_for(config.get(PAPER.key), analysis)
    return settings if keys is None else {k: settings[k] for k in keys}


# ---------------------------------------------------------------- run lists


def paper_runs(runs: dict) -> list[tuple[str, str]]:
    return [key for key, cfg in runs.items() if cfg["paper"] == PAPER.key]


def measured_runs(config: dict, runs: dict) -> list[tuple[str, str]]:
    """Runs whose final models get the block measurements (`measure_variants`)."""
    return [key for key in paper_runs(runs)
            if variant_of(runs[key]["model"]) in experiment_settings(config, key[0])["measure_variants"]]


def metric_paths(config: dict, runs: dict, kind: str, base: str) -> list[str]:
    """Per-run measurement files of one table kind, for every run that has that kind."""
    keys = measured_runs(config, runs) if kind in MODEL_TABLES else paper_runs(runs)
    return [f"{base}/{e}/{r}/{kind}.csv" for e, r in keys]


def sharing_span(runs: dict, experiment: str) -> int | None:
    """Top blocks per stage the init diagnostics span: the experiment's largest shared count
    (so its unshared baseline is measured over the same blocks); None without sharing."""
    return max(cfg["model"].get("shared_blocks", 0) for (e, _), cfg in runs.items() if e == experiment) or None


def sharing_init_settings(config: dict) -> dict | None:
    """The `sharing_init` settings (claim A4a's init-only job), or None when not configured."""
    return settings_for(config.get(PAPER.key)).get("sharing_init")


def sharing_init_run(config: dict, runs: dict) -> dict:
    """A run config of the `sharing_init` experiment (its model and dataset; any of its runs)."""
    experiment = sharing_init_settings(config)["experiment"]
    for (e, _), cfg in runs.items():
        if e == experiment:
            return cfg
    raise KeyError(f"iterative.sharing_init.experiment {experiment!r} is not an experiment of this config")


# ---------------------------------------------------------------- run identity


def variant_of(model_spec: dict) -> str:
    """`unshared` (no parameter sharing), `naive` (shared convolutions and BN) or `UBN`
    (shared convolutions, unshared BN)."""
    if not model_spec.get("shared_blocks"):
        return "unshared"
    return "naive" if model_spec.get("shared_bn", "unshared") == "naive" else "UBN"


def architecture_of(model_spec: dict) -> str:
    """A short readable description, e.g. 'ResNet w8-16-32 x4 blocks (3 shared, UBN)'."""
    m = model_spec
    if m.get("name") != "resnet":
        return m.get("name", "?")
    widths = "-".join(str(w) for w in m.get("widths", (16, 32, 64)))
    n = m.get("blocks_per_stage") if "depth" not in m else (m["depth"] - 2) // 6
    text = f"ResNet w{widths} x{n} blocks"
    if m.get("downsample", "conv") != "conv":
        text += f", {m['downsample']}"
    if m.get("shared_blocks"):
        text += f" ({m['shared_blocks']} shared, {variant_of(m)})"
    return text


def run_ids(run_cfg: dict) -> dict:
    """The id columns of every paper-A table (ID_COLUMNS) for one run."""
    run, seed = run_cfg["run"], run_cfg["seed"]
    label = run[: -len(f"_s{seed}")] if run.endswith(f"_s{seed}") else run
    return dict(experiment=run_cfg["experiment"], run=run, seed=seed, label=label,
                variant=variant_of(run_cfg["model"]))
