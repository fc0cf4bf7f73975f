"""Meaning checks a schema cannot express, each raising a ConfigError that names the key
path, the value and what is allowed: duplicates, schedules, model specs against the data
and the machine, and sizes against the data (explicit settings only: a default documented
as "all if fewer" stays a default)."""

from __future__ import annotations

from . import config_sizes as sizes
from .settings import ConfigError, deep_merge, load_schema, normalise, paper_settings, short


# ---------------------------------------------------------------- experiment level


def _dotted_schema(key: str) -> dict:
    schema = load_schema("config")
    section, field = key.split(".", 1)
    prop = schema["$defs"][section]["properties"].get(field, {})
    return {"$defs": schema["$defs"], **prop}


def _first_repeat(values):
    seen = []
    for i, v in enumerate(values):
        if v in seen:
            return v, seen.index(v), i
        seen.append(v)
    return None


def check_experiment(where: str, exp: dict) -> None:
    """Grid values read like the key they set (1e-4, 64.0); no seed, grid value or run name twice."""
    for key, values in (exp.get("grid") or {}).items():
        schema = _dotted_schema(key)
        values[:] = [normalise(v, schema, f"{where}.grid.{key}[{i}]") for i, v in enumerate(values)]
        repeat = _first_repeat(values)
        if repeat:
            raise ConfigError(f"{where}.grid.{key}: {short(repeat[0])} is given twice (items {repeat[1]} and "
                              f"{repeat[2]}) (allowed: distinct values)")
    repeat = _first_repeat(exp.get("seeds", [0]))
    if repeat:
        raise ConfigError(f"{where}.seeds: seed {repeat[0]} is given twice, a duplicate run name for every "
                          "run of the experiment (allowed: distinct seeds)")
    names = [r.get("name") for r in exp.get("runs") or []]
    repeat = _first_repeat(names)
    if repeat:
        raise ConfigError(f"{where}.runs[{repeat[2]}].name: {repeat[0]!r} is given twice (first runs[{repeat[1]}]), "
                          f"a duplicate run name '{repeat[0]}_s{exp.get('seeds', [0])[0]}' "
                          "(allowed: distinct run names)")


# ---------------------------------------------------------------- run level


def _check_schedule(where: str, schedule: dict | None, epochs: int) -> None:
    if not schedule:
        return
    kind = schedule["type"]
    extra = sorted(set(schedule) - {"type", *{"step": ("milestones", "values", "gamma"),
                                              "cyclic": ("low", "high", "stage_length", "start"),
                                              "constant": ()}[kind]})
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: {short(schedule[extra[0]])} has no effect on a {kind} "
                          "schedule (allowed: step: milestones, values or gamma; cyclic: low, high, "
                          "stage_length, start; constant: nothing)")
    if kind == "step":
        ms = schedule["milestones"]
        bad = [i for i in range(1, len(ms)) if ms[i] <= ms[i - 1]]
        if bad:
            raise ConfigError(f"{where}.milestones: {ms} is not strictly increasing (allowed: increasing epochs)")
        if ms and ms[-1] >= epochs:
            raise ConfigError(f"{where}.milestones: {ms[-1]} is not before the run's end (train.epochs {epochs}) "
                              f"and would never take effect (allowed: milestones < {epochs})")
        if "values" in schedule and len(schedule["values"]) != len(ms):
            raise ConfigError(f"{where}.values: {short(schedule['values'])} has {len(schedule['values'])} values "
                              f"for {len(ms)} milestones (allowed: one value per milestone)")
        if "values" in schedule and "gamma" in schedule:
            raise ConfigError(f"{where}.gamma: {schedule['gamma']:g} would be ignored beside values "
                              "(allowed: values or gamma, not both)")
    if kind == "cyclic" and schedule["low"] > schedule["high"]:
        raise ConfigError(f"{where}.low: {schedule['low']:g} is above high {schedule['high']:g} "
                          "(allowed: low <= high; use start: high to begin at the top)")


def _check_model(where: str, run: dict, limit: tuple[int, str]) -> None:
    spec, dataset = run["model"], run["dataset"]
    name = spec["name"]
    unknown = sorted(set(spec) - {"name"} - sizes.MODEL_KEYS[name])
    if unknown:
        raise ConfigError(f"{where}.model.{unknown[0]}: {short(spec[unknown[0]])} is not a setting of {name} "
                          f"(allowed: {', '.join(sorted(sizes.MODEL_KEYS[name]))})")
    widths = spec.get("widths")
    if name == "simplecnn" and widths is not None and len(widths) != 2:
        raise ConfigError(f"{where}.model.widths: {widths} has {len(widths)} values; simplecnn takes 2 "
                          "(allowed: 2 widths, the channels of its two convolution pairs)")
    if name == "resnet":
        if "depth" in spec and "blocks_per_stage" in spec:
            raise ConfigError(f"{where}.model.depth: {spec['depth']} and blocks_per_stage "
                              f"{spec['blocks_per_stage']} both set the blocks (allowed: one of them)")
        if "depth" in spec and (spec["depth"] - 2) % 6:
            raise ConfigError(f"{where}.model.depth: {spec['depth']} is not allowed; ResNet depth must be "
                              "6n+2 (20, 32, 56, 110 ...)")
        blocks = (spec["depth"] - 2) // 6 if "depth" in spec else spec.get("blocks_per_stage", 5)
        if blocks < 1:
            raise ConfigError(f"{where}.model.depth: {spec['depth']} gives no blocks (allowed: 6n+2 with n >= 1)")
        if spec.get("shared_blocks", 0) >= blocks:
            raise ConfigError(f"{where}.model.shared_blocks: {spec['shared_blocks']} is not below the "
                              f"{blocks} blocks per stage (allowed: 0 .. {blocks - 1})")
        if spec.get("downsample") == "avgpool" and len(set(sizes._widths(spec))) != 1:
            raise ConfigError(f"{where}.model.widths: {sizes._widths(spec)} with downsample avgpool "
                              "(allowed: equal widths per stage)")
    problem = sizes.fit_problem(spec, dataset)
    if problem:
        raise ConfigError(f"{where}.model: {problem}")
    batch = max(_batch_sizes(run["train"]))
    need = sizes.training_bytes(spec, dataset, batch)
    if need > limit[0]:
        params, _ = sizes.estimate(spec, dataset)
        raise ConfigError(f"{where}.model: {short(spec)} needs about {need / 2**30:.1f} GiB to train at batch "
                          f"size {batch} ({params:,} parameters), more than {limit[1]} (allowed: a model "
                          "that fits; declare gpu_memory_gb for GPU machines)")


def _batch_sizes(train: dict) -> list:
    schedule = train.get("batch_schedule") or {}
    return [train["batch_size"]] + [schedule[k] for k in ("low", "high") if k in schedule] + list(
        schedule.get("values", []))


def check_run(where: str, run: dict, data_root, limit: tuple[int, str]) -> None:
    """One expanded run: schedules, model, and sizes against its data."""
    train = run["train"]
    for key in ("lr_schedule", "batch_schedule"):
        _check_schedule(f"{where}.train.{key}", train.get(key), train["epochs"])
    _check_model(where, run, limit)
    available, _, how = sizes.run_sizes({**run, "train_size": None}, data_root)
    if run.get("train_size") and run["train_size"] > available:
        raise ConfigError(f"{where}.train_size: {run['train_size']} exceeds the training set ({how}) "
                          f"(allowed: <= {available})")
    n, _, how = sizes.run_sizes(run, data_root)
    if max(_batch_sizes(train)) > n:
        raise ConfigError(f"{where}.train.batch_size: {max(_batch_sizes(train))} is larger than the training set "
                          f"({how}, at most {n} examples); use a batch size <= {n}")
    if train.get("stop_checks_per_epoch", 1) != 1 and train.get("stop_at_train_loss") is None:
        raise ConfigError(f"{where}.train.stop_checks_per_epoch: {train['stop_checks_per_epoch']} has no "
                          "effect without train.stop_at_train_loss; set a target loss or remove it")


# ---------------------------------------------------------------- analysis subsets


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _explicit(given: dict, paper: str, experiment: str, dotted: str):
    """(value, key path) of a setting the user wrote, the experiment's override first."""
    analysis = (given["experiments"].get(experiment) or {}).get("analysis") or {}
    if _get(analysis, dotted) is not None:
        return _get(analysis, dotted), f"experiments.{experiment}.analysis.{dotted}"
    if _get(given.get(paper) or {}, dotted) is not None:
        return _get(given[paper], dotted), f"{paper}.{dotted}"
    return None, None


def _limit(runs: dict, experiment: str, data_root, split: str = "train"):
    """(smallest size of the split over the experiment's runs, how it is known)."""
    best = None
    for (e, _), run in runs.items():
        if e == experiment:
            train, test, how = sizes.run_sizes(run, data_root)
            n = train if split == "train" else test
            if best is None or n < best[0]:
                best = (n, how if split == "train" else f"{run['dataset']}: {test} test examples")
    return best


def _refuse_above(value, key: str, limit, what: str) -> None:
    if value is not None and limit is not None and value > limit[0]:
        raise ConfigError(f"{key}: {value} exceeds the {what} ({limit[1]}) (allowed: <= {limit[0]})")


def check_analysis_sizes(config: dict, given: dict, runs: dict) -> None:
    """Explicit subset sizes of each paper's analysis against the data its runs hold."""
    root = config.get("data_root", "data")
    for experiment, exp in config["experiments"].items():
        paper = exp["paper"]
        if paper == "iterative":
            settings = paper_settings(config, "iterative", experiment)
            value, key = _explicit(given, paper, experiment, "max_examples")
            for split in sorted(set(settings["splits"]) | set(settings["heads_splits"])):
                _refuse_above(value, key, _limit(runs, experiment, root, split), f"{split} split of {experiment}")
            value, key = _explicit(given, paper, experiment, "init_batch")
            _refuse_above(value, key, _limit(runs, experiment, root), f"training set of {experiment}")
        elif paper == "minima":
            role = ((exp.get("analysis") or {}).get("role")) or "sharpness"
            if role == "sharpness":
                value, key = _explicit(given, paper, experiment, "sharpness.n_examples")
                _refuse_above(value, key, _limit(runs, experiment, root), f"training set of {experiment}")
        elif paper == "breakeven":
            settings = paper_settings(config, "breakeven", experiment)
            limit = _limit(runs, experiment, root)
            for dotted in ("accuracy_examples", "hessian.max_examples"):
                value, key = _explicit(given, paper, experiment, dotted)
                _refuse_above(value, key, limit, f"training set of {experiment}")
            cov = settings["covariance"]
            if cov["mode"] == "per_example":
                value, key = _explicit(given, paper, experiment, "covariance.n_examples")
                _refuse_above(value, key, limit, f"training set of {experiment}")
            elif any(_explicit(given, paper, experiment, f"covariance.{k}")[0] is not None
                     for k in ("n_batches", "batch_size")):
                _refuse_above(cov["n_batches"] * cov["batch_size"],
                              f"{_explicit(given, paper, experiment, 'covariance.n_batches')[1] or 'breakeven.covariance'}"
                              f" x batch_size ({cov['n_batches']} x {cov['batch_size']})",
                              limit, f"training set of {experiment}")
    pairs = ((config.get("minima") or {}).get("interpolation") or {}).get("pairs") or {}
    bn = _get(given.get("minima") or {}, "interpolation.bn_examples")
    for name, pair in pairs.items():
        for end in ("a", "b"):
            run = runs.get(tuple(pair[end].split("/", 1)))
            if run is not None and bn is not None:
                n, _, how = sizes.run_sizes(run, root)
                _refuse_above(bn, "minima.interpolation.bn_examples", (n, how), f"training set of {pair[end]}")
    heinit = given.get("heinit") or {}
    n_real = _get(heinit, "real.n_samples")
    if n_real is not None:
        dataset = config["heinit"]["real"]["dataset"]
        total = sum(sizes.split_sizes(dataset, 0.0, root))
        _refuse_above(n_real, "heinit.real.n_samples", (total, f"{dataset}: {total} images"), "images available")


__all__ = ["check_experiment", "check_run", "check_analysis_sizes", "deep_merge"]
