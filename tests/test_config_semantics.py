"""Issue 15: configurations that cannot be meant are refused at parse time, one class per
test, each message naming the key path, the value and what is allowed (no traceback, no
schema dump); plausible correct edits are accepted and run as written."""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from conftest import CONFIGS, REPO, snakemake
from repro import config_sizes
from repro.config import ConfigError, parse_config
from repro.settings import schema_defaults

GOOD = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def edit(base=GOOD, **changes):
    """A copy of `base` with dotted paths (experiments.tiny.train.lr=...) replaced."""
    cfg = copy.deepcopy(base)
    for dotted, value in changes.items():
        node, *parents, last = [cfg, *dotted.split("__")]
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def refused(cfg, *fragments) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(cfg)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    assert "allowed" in text or "use " in text, text
    assert "Traceback" not in text and "Failed validating" not in text and len(text) < 500, text
    return text


# 1 -------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("key,value", [
    ("experiments__tiny__train__lr", math.nan), ("experiments__tiny__train__lr", math.inf),
    ("experiments__tiny__train__momentum", -math.inf), ("experiments__tiny__train__weight_decay", math.nan),
    ("experiments__tiny__train__stop_at_train_loss", math.inf), ("experiments__tiny__label_noise", math.nan),
    ("experiments__tiny__grid", {"train.lr": [0.1, math.nan]}),
    ("experiments__tiny__train__lr_schedule", {"type": "step", "milestones": [1], "values": [math.inf]}),
    ("breakeven__threshold_accuracy", math.nan),
])
def test_non_finite_numbers_are_refused(key, value):
    text = refused(edit(**{key: value}), key.split("__")[-1], "finite")
    assert "nan" in text or "inf" in text


# 2 -------------------------------------------------------------- counts as floats
def test_integral_float_counts_are_read_as_integers_and_fractional_ones_refused():
    runs = parse_config(edit(experiments__tiny__train__epochs=2.0, experiments__tiny__train__batch_size=64.0,
                             experiments__tiny__grid={"train.batch_size": [32.0, 64.0]}))
    run = runs[("tiny", "bs32_s0")]
    assert type(run["train"]["epochs"]) is int and type(run["train"]["batch_size"]) is int
    refused(edit(experiments__tiny__train__epochs=2.5), "experiments.tiny.train.epochs", "2.5", "whole number")


# 3 -------------------------------------------------------------- sizes beyond the data
@pytest.mark.parametrize("key,value,fragment", [
    ("experiments__tiny__train_size", 5000, "experiments.tiny (run lr0.05).train_size: 5000"),
    ("experiments__tiny__train__batch_size", 2000, "train.batch_size: 2000"),
])
def test_run_sizes_beyond_the_data_are_refused(key, value, fragment):
    refused(edit(**{key: value}), fragment, "1438")  # digits: 1,797 images, 1,438 for training


@pytest.mark.parametrize("section,value,fragment", [
    ("iterative", {"max_examples": 2000}, "iterative.max_examples: 2000"),
    ("minima", {"sharpness": {"n_examples": 9000}}, "minima.sharpness.n_examples: 9000"),
    ("breakeven", {"accuracy_examples": 5000}, "breakeven.accuracy_examples: 5000"),
    ("breakeven", {"covariance": {"n_batches": 50, "batch_size": 128}}, "x batch_size (50 x 128)"),
    ("heinit", {"real": {"n_samples": 6000}}, "heinit.real.n_samples: 6000"),
])
def test_analysis_subsets_beyond_the_data_are_refused(section, value, fragment):
    cfg = copy.deepcopy(DEFAULT)
    cfg[section] = value
    refused(cfg, fragment, "exceeds")


def test_embedded_split_sizes_are_exact():
    from repro.data import load_dataset

    for name, tf in (("digits", 0.2), ("digits", 0.3), ("mnist5k", 0.2)):
        data = load_dataset(name, test_fraction=tf)
        assert config_sizes.split_sizes(name, tf) == (len(data.y_train), len(data.y_test))


# 4 -------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule,fragment", [
    ({"type": "step", "milestones": [2, 1], "values": [0.01, 0.001]}, "not strictly increasing"),
    ({"type": "step", "milestones": [1], "values": [0.01, 0.001]}, "2 values for 1 milestones"),
    ({"type": "step", "milestones": [5]}, "would never take effect"),
    ({"type": "cyclic", "low": 0.5, "high": 0.1, "stage_length": 1}, "above high"),
    ({"type": "cyclic", "low": 0.1, "high": 0.5, "stage_length": 0}, "stage_length"),
    ({"type": "constant", "milestones": [1]}, "has no effect"),
])
def test_schedules_that_do_not_mean_what_they_say_are_refused(schedule, fragment):
    refused(edit(experiments__tiny__train__lr_schedule=schedule), "experiments.tiny", "lr_schedule", fragment)


def test_snapshot_epochs_beyond_every_run_are_refused():
    refused(edit(experiments__tiny__snapshots={"at": [0, 1, 5]}), "experiments.tiny.snapshots.at", "[5]")


# 5 -------------------------------------------------------------- duplicates
@pytest.mark.parametrize("key,value,fragment", [
    ("experiments__tiny__seeds", [0, 1, 0], "experiments.tiny.seeds: seed 0 is given twice"),
    ("experiments__tiny__grid", {"train.lr": [0.05, 0.1, 0.05]}, "experiments.tiny.grid.train.lr: 0.05 is given twice"),
    ("experiments__tiny__runs", [{"name": "a"}, {"name": "a"}], "experiments.tiny.runs[1].name: 'a' is given twice"),
])
def test_duplicates_are_refused(key, value, fragment):
    refused(edit(**{key: value}), fragment)


@pytest.mark.slow
def test_duplicate_yaml_keys_are_refused_naming_both_lines(tmp_path):
    text = (CONFIGS / "tiny_minima.yaml").read_text() + "minima:\n  sharpness: {n_examples: 100}\n"
    text += "\n".join(["minima:", "  breaking: {tolerance: 0.05}"]) + "\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    first, second = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("minima:")][:2]
    proc = snakemake(tmp_path / "w", "-n", configfiles=(path,), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Invalid configuration" in out, out[-2000:]
    assert f"line {second}: key 'minima' is given twice (first at line {first})" in out, out[-2000:]
    assert str(path) in out and not (tmp_path / "w" / "results").exists()


# 6 -------------------------------------------------------------- model shapes and sizes
@pytest.mark.parametrize("model,fragment", [
    ({"name": "simplecnn", "widths": [8, 16, 32]}, "model.widths: [8, 16, 32] has 3 values; simplecnn takes 2"),
    ({"name": "simplecnn", "widths": [8, 16]}, "does not fit digits inputs of shape (1, 8, 8)"),
    ({"name": "mlp", "widths": [8]}, "model.widths: [8] is not a setting of mlp"),
    ({"name": "resnet", "widths": [4, 8], "blocks_per_stage": 2, "shared_blocks": 2}, "shared_blocks: 2"),
    ({"name": "mlp", "depth": 4, "width": 10_000_000}, "GiB to train"),
])
def test_model_shapes_and_absurd_sizes_are_refused(model, fragment):
    refused(edit(experiments__tiny__model=model), "experiments.tiny (run lr0.05).model", fragment)


def test_gpu_memory_declared_in_the_config_is_the_limit():
    cfg = edit(gpu_memory_gb=1e-5, device="cuda")  # 10 KiB: less than the tiny MLP needs
    refused(cfg, "gpu_memory_gb 1e-05")


@pytest.mark.parametrize("spec,dataset", [
    ({"name": "mlp", "depth": 2, "width": 32}, "digits"),
    ({"name": "simplecnn", "widths": [8, 16], "hidden": 64, "batch_norm": True}, "mnist5k"),
    ({"name": "vgg", "width_factor": 0.25}, "cifar10"),
    ({"name": "resnet", "widths": [4, 8, 16], "blocks_per_stage": 3, "shared_blocks": 1, "shared_bn": "naive"},
     "cifar100"),
    ({"name": "resnet", "widths": [8, 8], "depth": 20, "shared_blocks": 2, "shared_bn": "unshared",
      "downsample": "avgpool"}, "mnist5k"),
    ({"name": "resnet", "widths": [6], "blocks_per_stage": 2, "downsample": "none"}, "digits"),
])
def test_parameter_estimate_matches_torch(spec, dataset):
    from repro.models import build_model, count_parameters

    model = build_model(spec, config_sizes.INPUT_SHAPES[dataset], config_sizes.NUM_CLASSES.get(dataset, 10))
    assert config_sizes.estimate(spec, dataset)[0] == count_parameters(model)


# 7 -------------------------------------------------------------- empty sections
def test_empty_sections_mean_the_defaults_for_every_paper():
    cfg = copy.deepcopy(DEFAULT)
    for section in ("iterative", "minima", "heinit", "breakeven"):
        cfg[section] = None
    cfg["experiments"]["iterative_resnet"]["snapshots"] = None
    parse_config(cfg)
    for section in ("iterative", "minima", "heinit", "breakeven"):
        assert cfg[section] == schema_defaults(section)
    cfg = copy.deepcopy(DEFAULT)
    cfg["minima"] = {"sharpness": None}
    parse_config(cfg)
    assert cfg["minima"]["sharpness"] == schema_defaults("minima")["sharpness"]


@pytest.mark.slow
def test_an_empty_minima_section_is_accepted_by_the_workflow(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text((CONFIGS / "tiny_minima.yaml").read_text().split("\nminima:")[0] + "\nminima:\n")
    snakemake(tmp_path / "w", "-n", configfiles=(path,))


# 8 -------------------------------------------------------------- where: experiment and run
@pytest.mark.parametrize("key,value,fragment", [
    ("experiments__tiny__grid", {"train.batch_size": [64, -1]}, "experiments.tiny (run bs-1).train.batch_size: -1"),
    ("experiments__tiny__runs", [{"name": "fast", "set": {"train.momentum": 1.5}}],
     "experiments.tiny (run fast).train.momentum: 1.5"),
    ("experiments__tiny__runs", [{"name": "odd", "set": {"train.epochs": 2.5}}],
     "experiments.tiny (run odd).train.epochs: 2.5"),
])
def test_errors_in_grid_and_set_name_the_experiment_and_run(key, value, fragment):
    refused(edit(**{key: value}), fragment)


@pytest.mark.parametrize("experiment,analysis,fragment", [
    ("minima_grid", {"role": "sharpnes"}, "experiments.minima_grid.analysis.role: 'sharpnes' is not one of"),
    ("breakeven_cnn", {"hessian": {"k": 0}}, "experiments.breakeven_cnn.analysis.hessian.k: 0"),
    ("iterative_resnet", {"n_shuffles": -1}, "experiments.iterative_resnet.analysis.n_shuffles: -1"),
    ("iterative_resnet", {"max_exmaples": 10}, "experiments.iterative_resnet.analysis"),
])
def test_errors_in_analysis_overrides_name_the_experiment(experiment, analysis, fragment):
    refused(edit(DEFAULT, **{f"experiments__{experiment}__analysis": analysis}), fragment)


# 9 -------------------------------------------------------------- 1e-4 written without a dot
def test_scientific_notation_without_a_dot_is_read_as_a_number():
    text = (CONFIGS / "tiny.yaml").read_text().replace("lr: 0.1, momentum: 0.9", "lr: 1e-1, momentum: 9e-1")
    text = text.replace("train.lr: [0.05, 0.1]", "train.lr: [5e-2, 1e-1]")
    cfg = yaml.safe_load(text)
    assert cfg["experiments"]["tiny"]["train"]["lr"] == "1e-1"  # YAML 1.1 reads it as text
    runs = parse_config(cfg)
    assert runs == parse_config(copy.deepcopy(GOOD))


@pytest.mark.slow
def test_scientific_notation_is_accepted_by_the_workflow(tmp_path):
    path = tmp_path / "sci.yaml"
    path.write_text((CONFIGS / "tiny.yaml").read_text().replace("lr: 0.1,", "lr: 1e-4, weight_decay: 5e-4,"))
    snakemake(tmp_path / "w", "-n", configfiles=(path,))


# plausible correct edits --------------------------------------------------------
@pytest.mark.parametrize("change", [
    {"experiments__minima_grid__train__lr": "1e-4"},
    {"experiments__minima_grid__seeds": [3, 7, 11]},
    {"experiments__minima_grid__grid": {"train.lr": [0.0125, 0.025, 0.05, 0.1, 0.2], "train.batch_size": [32, 64]}},
    {"minima": {}},
    {"experiments__breakeven_cnn__snapshots": {"at": [0, 1, 2]}},
    {"experiments__iterative_resnet__analysis": {"max_examples": 500}},
    {"experiments__iterative_resnet__train__epochs": 8.0},  # milestone 4 stays before the end
])
def test_plausible_correct_edits_are_accepted(change):
    parse_config(edit(DEFAULT, **change))
