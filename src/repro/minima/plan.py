"""Paper B settings and run lists: which runs each analysis reads, and the input/params
functions of rules/minima.smk. Defaults come only from schemas/minima.schema.yaml.

Imported while Snakemake parses the workflow: no torch, no matplotlib."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable

from .. import costs
from ..papers import get as get_paper
from ..runs import lr_over_batch, same_ratio
from ..settings import ConfigError, check_override, deep_merge, schema_defaults

PAPER = get_paper("minima")
KEY = PAPER.key
SECTIONS = ("sharpness", "interpolation", "memorization", "breaking")
# how many runs (pairs) one job measures: job layout only, never part of a measurement's settings
JOB_SIZE = {"sharpness": "runs_per_job", "interpolation": "pairs_per_job"}


def run_id(key: tuple[str, str]) -> str:
    """(experiment, run) -> 'experiment/run', the id used in the config's interpolation pairs."""
    return f"{key[0]}/{key[1]}"


def variant_of(run: str) -> str:
    """Run id without its seed suffix: 'lr0.1_bs32_s0' -> 'lr0.1_bs32'."""
    return re.sub(r"_s\d+$", "", run)


@functools.cache
def _defaults() -> dict:
    return schema_defaults(KEY)


def paper_defaults() -> dict:
    """The paper-wide settings with every schema default filled in (for use outside Snakemake)."""
    return {section: copy.deepcopy(_defaults()[section]) for section in SECTIONS}


def experiment_analysis(name: str, exp: dict) -> dict:
    """The experiment's `analysis:` object, checked against the schema, defaults filled."""
    analysis = check_override(KEY, exp.get("analysis") or {"role": "sharpness"}, f"experiments.{name}.analysis")
    analysis.setdefault("equal_ratio", False)
    return analysis


def default_group(exp: dict) -> str:
    """Experiments with the same dataset and model spec are compared with each other."""
    model = exp["model"]
    extra = " ".join(f"{k}{v}" for k, v in sorted(model.items()) if k != "name")
    return f"{exp['dataset']} {model['name']}" + (f" {extra}" if extra else "")


def sharpness_settings(paper: dict, analysis: dict) -> dict:
    """Paper-wide sharpness settings overridden by the experiment's own (what one run's
    measurement uses; the job size runs_per_job is not among them)."""
    base = deep_merge(_defaults()["sharpness"], paper.get("sharpness"))
    merged = deep_merge(base, analysis.get("sharpness"))
    merged.pop(JOB_SIZE["sharpness"], None)
    return merged


def job_parts(names: list[str], size: int | None) -> dict[str, list[str]]:
    """`names` in order, cut into jobs of at most `size` (None: one job): {part: names}.

    size 1 names each job after its one member (one cached file per run or pair, the paper
    scale); otherwise part<i>of<n>. Which names a part holds is in its rule's input and
    params, so a part whose members or settings change is run again, never reused."""
    if size == 1:
        return {name: [name] for name in names}
    size = size or max(1, len(names))
    chunks = [names[i:i + size] for i in range(0, len(names), size)]
    return {f"part{i}of{len(chunks)}": chunk for i, chunk in enumerate(chunks, start=1)}


def _check_constant(runs: dict, keys: list, why: str, hint: str = "") -> None:
    """Every run in `keys` trains with constant eta and S (its eta/S is one number)."""
    for exp_name, run in keys:
        for key in ("lr_schedule", "batch_schedule"):
            kind = (runs[(exp_name, run)]["train"].get(key) or {}).get("type", "constant")
            if kind != "constant":
                raise ConfigError(f"experiments.{exp_name} (run {run}).train.{key}: {why}, got {kind!r}{hint}")


def plan(config: dict, runs: dict) -> dict:
    """Which runs each analysis reads, checked; raises ConfigError.

    Returns {"experiments": {name: analysis}, "sharpness": [(exp, run)], "schedule": [...],
    "memorization": [...], "breaking": [...],
    "pairs": {name: {"a": (exp, run), "b": (exp, run), "label": str}}}.
    """
    paper = config.get(KEY) or {}
    experiments = {}
    for name, exp in config["experiments"].items():
        if exp.get("paper") != KEY:
            continue
        analysis = experiment_analysis(name, exp)
        analysis.setdefault("group", default_group(exp))
        experiments[name] = analysis
    keyed = {key: cfg for key, cfg in runs.items() if cfg.get("paper") == KEY}
    by_role = {role: [k for k in keyed if experiments[k[0]]["role"] == role]
               for role in ("sharpness", "schedule", "memorization", "breaking")}
    _check_constant(runs, by_role["sharpness"],
                    "a sharpness experiment needs constant eta and S (eta/S must be one number)",
                    "; use role: schedule")
    for role in ("memorization", "breaking"):
        _check_constant(runs, by_role[role], f"role {role} needs constant eta and S")
    for exp_name, run in by_role["memorization"]:
        noise = runs[(exp_name, run)].get("label_noise") or 0.0
        if not noise > 0:
            raise ConfigError(f"experiments.{exp_name}.label_noise: {noise!r} is not allowed with role: "
                              "memorization; use a fraction in (0, 1] of training labels to randomise")
    breaking = by_role["breaking"]
    for exp_name in dict.fromkeys(e for e, _ in breaking):
        ratios = sorted({lr_over_batch(runs[k]["train"]["lr"], runs[k]["train"]["batch_size"])
                         for k in breaking if k[0] == exp_name})
        if not same_ratio(ratios[0], ratios[-1]):
            raise ConfigError(f"experiments.{exp_name}: role breaking needs one eta/S for every run (eta and S "
                              f"scaled together by beta), got eta/S values {ratios}")
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
    return {"experiments": experiments, **by_role, "pairs": pairs}


def data_spec(cfg: dict) -> dict:
    """What defines a run's data (passed to repro.data.load_run_dataset): the split and, for
    memorization runs, the noisy training labels the model was trained on."""
    spec = {"dataset": cfg["dataset"], "test_fraction": cfg.get("test_fraction", 0.2),
            "train_size": cfg.get("train_size")}
    if cfg.get("label_noise"):
        spec.update(label_noise=cfg["label_noise"], label_noise_seed=cfg.get("label_noise_seed", 0))
    return spec


class Workflow:
    """The input and params functions of rules/minima.smk (kept out of the .smk file).

    Built once when the workflow is parsed; raises ConfigError for a bad configuration.
    `run_dir(experiment, run)` is the workflow's one run-folder helper (rules/common.smk)."""

    def __init__(self, config: dict, runs: dict, results: str, run_dir: Callable[[str, str], str]):
        self.config, self.runs, self.results, self._run_dir = config, runs, results, run_dir
        self.plan = plan(config, runs)
        self.metrics = f"{results}/metrics/{KEY}"
        by_experiment: dict[str, list[str]] = {}
        for exp_name, run in self.plan["sharpness"]:
            by_experiment.setdefault(exp_name, []).append(run)
        size = self.paper_settings("sharpness")[JOB_SIZE["sharpness"]]
        # (experiment, part) -> its runs; one experiment's runs share their settings
        self.sharpness_parts = {(exp_name, part): members for exp_name, names in by_experiment.items()
                                for part, members in job_parts(names, size).items()}
        # part -> its pairs
        self.interpolation_parts = job_parts(list(self.plan["pairs"]),
                                             self.paper_settings("interpolation")[JOB_SIZE["interpolation"]])

    def run_dir(self, key) -> str:
        return self._run_dir(*key)

    def sharpness_files(self, wildcards=None) -> list[str]:
        """One JSON per part (a list of per-run records: repro.minima.tables.read_sharpness)."""
        return [f"{self.metrics}/sharpness/{e}/{part}.json" for e, part in self.sharpness_parts]

    def interpolation_files(self, wildcards=None) -> list[str]:
        """One CSV per part (its pairs' tables one after another)."""
        return [f"{self.metrics}/interpolation/{part}.csv" for part in self.interpolation_parts]

    def _sharpness_keys(self, wildcards) -> list[tuple[str, str]]:
        return [(wildcards.experiment, run) for run in self.sharpness_parts[(wildcards.experiment, wildcards.part)]]

    def sharpness_inputs(self, wildcards) -> dict:
        """model.pt and status.json of every run of the part, in the part's order."""
        keys = self._sharpness_keys(wildcards)
        return {"models": [f"{self.run_dir(k)}/model.pt" for k in keys],
                "statuses": [f"{self.run_dir(k)}/status.json" for k in keys]}

    def sharpness_data(self, wildcards) -> list[dict]:
        """Each run's data spec (:func:`data_spec`), in the part's order."""
        return [data_spec(self.runs[k]) for k in self._sharpness_keys(wildcards)]

    def sharpness_runtime(self, wildcards, attempt) -> int:
        """The part's time limit: start-up once plus the sum of its runs' projections."""
        paper = self.paper_settings("sharpness")
        cfgs = [self.runs[k] for k in self._sharpness_keys(wildcards)]
        return costs.measure_runtime_sum_min(
            [(cfg, costs.sharpness_passes(paper, costs.train_images(cfg))) for cfg in cfgs], attempt)

    def role_files(self, role: str, name: str) -> list[str]:
        """`name` (status.json, history.csv) of every run of the experiments with this role."""
        return [f"{self.run_dir(key)}/{name}" for key in self.plan[role]]

    def paper_settings(self, section: str) -> dict:
        """A paper-wide section (memorization, breaking) with its defaults filled."""
        return deep_merge(_defaults()[section], (self.config.get(KEY) or {}).get(section))

    def pair_inputs(self, wildcards) -> dict:
        """model.pt and status.json of both ends of every pair of the part: a, b of the first
        pair, then a, b of the next."""
        keys = [self.plan["pairs"][name][end] for name in self.interpolation_parts[wildcards.part]
                for end in ("a", "b")]
        return {"models": [f"{self.run_dir(k)}/model.pt" for k in keys],
                "statuses": [f"{self.run_dir(k)}/status.json" for k in keys]}

    def sharpness_settings(self, wildcards) -> dict:
        return sharpness_settings(self.config.get(KEY) or {}, self.plan["experiments"][wildcards.experiment])

    def pair_spec(self, name: str) -> dict:
        """What one pair's interpolation needs besides the models: its name, run ids, data spec,
        comparison group and label, and its ``claim_points_only`` flag (its name ends with one
        of minima.interpolation.claim_points_only)."""
        pair = self.plan["pairs"][name]
        endings = tuple(self.paper_settings("interpolation").get("claim_points_only") or ())
        return {"pair": name, "a": run_id(pair["a"]), "b": run_id(pair["b"]), "data": data_spec(self.runs[pair["a"]]),
                "group": self.plan["experiments"][pair["a"][0]]["group"], "label": pair["label"],
                "claim_points_only": bool(endings) and name.endswith(endings)}

    def pair_specs(self, wildcards) -> list[dict]:
        """:meth:`pair_spec` of every pair of the part, in the part's order."""
        return [self.pair_spec(name) for name in self.interpolation_parts[wildcards.part]]

    def interpolation_runtime(self, wildcards) -> int:
        """The part's time limit: the sum over its pairs."""
        return costs.interpolation_runtime_min(len(self.interpolation_parts[wildcards.part]))

    def interpolation_settings(self, wildcards=None) -> dict:
        """The paper-wide interpolation settings every pair shares (a pair's own flag is in
        :meth:`pair_spec`)."""
        settings = self.paper_settings("interpolation")
        drop = ("pairs", "claim_points_only", JOB_SIZE["interpolation"])
        return {k: v for k, v in settings.items() if k not in drop}

    def experiment_flags(self, *keys) -> dict:
        return {name: {k: analysis.get(k) for k in keys} for name, analysis in self.plan["experiments"].items()}
