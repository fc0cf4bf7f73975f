"""Paper B settings and run lists: which runs each analysis reads, and the input/params
functions of rules/minima.smk. Defaults come only from schemas/minima.schema.yaml.

Imported while Snakemake parses the workflow: no torch, no matplotlib."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable

from ..papers import get as get_paper
from ..runs import lr_over_batch, same_ratio
from ..settings import ConfigError, check_override, deep_merge, schema_defaults

PAPER = get_paper("minima")
KEY = PAPER.key
SECTIONS = ("sharpness", "interpolation", "memorization", "breaking")


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
    """Paper-wide sharpness settings overridden by the experiment's own."""
    base = deep_merge(_defaults()["sharpness"], paper.get("sharpness"))
    return deep_merge(base, analysis.get("sharpness"))


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

    def run_dir(self, key) -> str:
        return self._run_dir(*key)

    def sharpness_files(self, wildcards=None) -> list[str]:
        return [f"{self.metrics}/sharpness/{e}/{r}.json" for e, r in self.plan["sharpness"]]

    def interpolation_files(self, wildcards=None) -> list[str]:
        return [f"{self.metrics}/interpolation/{pair}.csv" for pair in self.plan["pairs"]]

    def role_files(self, role: str, name: str) -> list[str]:
        """`name` (status.json, history.csv) of every run of the experiments with this role."""
        return [f"{self.run_dir(key)}/{name}" for key in self.plan[role]]

    def paper_settings(self, section: str) -> dict:
        """A paper-wide section (memorization, breaking) with its defaults filled."""
        return deep_merge(_defaults()[section], (self.config.get(KEY) or {}).get(section))

    def pair_inputs(self, wildcards) -> dict:
        pair = self.plan["pairs"][wildcards.pair]
        return {f"{end}_{name}": f"{self.run_dir(pair[end])}/{name}.{ext}"
                for end in ("a", "b") for name, ext in (("model", "pt"), ("status", "json"))}

    def sharpness_settings(self, wildcards) -> dict:
        return sharpness_settings(self.config.get(KEY) or {}, self.plan["experiments"][wildcards.experiment])

    def run_data(self, wildcards) -> dict:
        return data_spec(self.runs[(wildcards.experiment, wildcards.run)])

    def pair_spec(self, wildcards) -> dict:
        pair = self.plan["pairs"][wildcards.pair]
        return {"a": run_id(pair["a"]), "b": run_id(pair["b"]), "data": data_spec(self.runs[pair["a"]]),
                "group": self.plan["experiments"][pair["a"][0]]["group"], "label": pair["label"]}

    def interpolation_settings(self, wildcards=None) -> dict:
        """The interpolation settings one pair's job needs; with a pair (wildcards), its
        ``claim_points_only`` flag: its name ends with one of minima.interpolation.claim_points_only."""
        settings = self.paper_settings("interpolation")
        endings = tuple(settings.get("claim_points_only") or ())
        out = {k: v for k, v in settings.items() if k not in ("pairs", "claim_points_only")}
        if wildcards is not None and hasattr(wildcards, "pair"):
            out["claim_points_only"] = bool(endings) and wildcards.pair.endswith(endings)
        return out

    def experiment_flags(self, *keys) -> dict:
        return {name: {k: analysis.get(k) for k in keys} for name, analysis in self.plan["experiments"].items()}
