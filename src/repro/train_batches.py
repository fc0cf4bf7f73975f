"""Which training runs share one job: the config's ``train_batch`` setting.

Why: every training job is a fresh Python process that pays ~4.5 s before it computes
(``import torch``, then torch._dynamo on the first optimizer step). At the default scale a
run trains in seconds, so the start-up is a large share of it; training the seeds of one
run spec one after another in one job pays it once. Each run keeps its own files under
runs/<experiment>/<run>/, its own checkpoint folder and its own resumption
(``repro.train.train_run``), and gives the same bytes as when trained alone (tested).

``train_batch: {by: none}`` (the default; configs/paper.yaml) keeps one run per job: a
paper-scale run is hours on a GPU, and SLURM schedules, retries and caches it on its own.
``{by: seed}`` puts the seeds of one run spec (one grid cell or named run of an experiment)
into one job, at most ``max_runs`` runs per job. A batch of one run is no batch: that run
stays with the one-run rule. This module plans only (no torch): the Snakefile reads it
while it builds the DAG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainBatch:
    """Runs of one experiment trained one after another in one job."""

    experiment: str
    name: str               # the run spec and its seeds: "lr0.05_bs64_s0+1+2"
    runs: tuple[str, ...]   # run names, in seed order as the config lists them
    rule: str               # a Snakemake rule name (letters, digits, '_'), unique


def run_spec(run: str, seed: int) -> str:
    """The run name without its seed suffix: "lr0.05_bs64_s2" -> "lr0.05_bs64"."""
    suffix = f"_s{seed}"
    if not run.endswith(suffix):
        raise ValueError(f"run {run!r} does not end in {suffix!r}")
    return run[:-len(suffix)]


def _chunks(items: list, size: int | None) -> list[list]:
    size = size or len(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def train_batches(runs: dict[tuple[str, str], dict], setting: dict | None) -> list[TrainBatch]:
    """The batches of ``runs`` ({(experiment, run): run config}, repro.config.expand_runs)
    under ``setting`` (the config's ``train_batch``); only batches of two or more runs."""
    setting = setting or {}
    if setting.get("by", "none") == "none":
        return []
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for (experiment, run), cfg in runs.items():
        groups.setdefault((experiment, run_spec(run, cfg["seed"])), []).append((cfg["seed"], run))
    batches, taken = [], set()
    for (experiment, spec), members in groups.items():
        for chunk in _chunks(members, setting.get("max_runs")):
            if len(chunk) < 2:
                continue
            name = f"{spec}_s" + "+".join(str(seed) for seed, _ in chunk)
            rule = re.sub(r"\W", "_", f"train_{experiment}_{name}")
            while rule in taken:  # "lr0.05" and "lr0_05" spell the same rule name
                rule += "_"
            taken.add(rule)
            batches.append(TrainBatch(experiment, name, tuple(run for _, run in chunk), rule))
    return batches
