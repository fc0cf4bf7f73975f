"""Bad configurations stop before any job, with a message naming key, value and fix."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError

from conftest import CONFIGS, snakemake
from repro.config import ConfigError, parse_config, run_table, snapshot_epochs

GOOD = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())


def check(config):
    """What the Snakefile does at parse time: one validation (with defaults), then run expansion."""
    return parse_config(config)


def mutate(path, value):
    cfg = copy.deepcopy(GOOD)
    *parents, last = path
    node = cfg
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return cfg


DELETE = object()
E = ("experiments", "tiny")
BAD = [
    ("lr negative", E + ("train", "lr"), -0.1, "lr", "-0.1"),
    ("lr zero", E + ("train", "lr"), 0, "lr", "0"),
    ("lr wrong type", E + ("train", "lr"), "fast", "lr", "fast"),
    ("batch size zero", E + ("train", "batch_size"), 0, "batch_size", "0"),
    ("batch size float", E + ("train", "batch_size"), 12.5, "batch_size", "12.5"),
    ("epochs missing", E + ("train", "epochs"), DELETE, "epochs", "required"),
    ("unknown dataset", E + ("dataset",), "imagenet", "dataset", "imagenet"),
    ("unknown model", E + ("model", "name"), "transformer", "name", "transformer"),
    ("unknown schedule", E + ("train", "lr_schedule"), {"type": "cosine"}, "lr_schedule", "cosine"),
    ("cyclic without bounds", E + ("train", "lr_schedule"), {"type": "cyclic"}, "lr_schedule", "low"),
    ("momentum >= 1", E + ("train", "momentum"), 1.5, "momentum", "1.5"),
    ("unknown train key", E + ("train", "learning_rate"), 0.1, "train", "learning_rate"),
    ("missing paper", E + ("paper",), DELETE, "paper", "required"),
    ("unknown device", ("device",), "tpu", "device", "tpu"),
    ("no experiments", ("experiments",), {}, "experiments", "non-empty"),
    ("experiment name with slash", ("experiments",), {"a/b": GOOD["experiments"]["tiny"]}, "experiments", "a/b"),
    ("experiment name with space", ("experiments",), {"a b": GOOD["experiments"]["tiny"]}, "experiments", "a b"),
    ("experiment name dotdot", ("experiments",), {"a..b": GOOD["experiments"]["tiny"]}, "experiments", "a..b"),
    ("run name with shell chars", E + ("runs",), [{"name": "x;rm -rf ~"}], "name", "x;rm -rf ~"),
    ("grid value of wrong type", E + ("grid",), {"train.lr": ["high"]}, "train.lr", "high"),
    ("grid negative batch", E + ("grid",), {"train.batch_size": [32, -1]}, "batch_size", "-1"),
    ("grid unknown key", E + ("grid",), {"optimizer.lr": [0.1]}, "grid", "optimizer.lr"),
    ("width does not fit", E + ("model",), {"name": "simplecnn"}, "model", "digits"),
    ("resnet depth not 6n+2", E + ("model",), {"name": "resnet", "depth": 33}, "model", "6n+2"),
    ("duplicate run names", E + ("runs",), [{"name": "a"}, {"name": "a"}], "tiny", "duplicate run name 'a_s0'"),
    ("missing data root", E + ("dataset",), "cifar10", "dataset", "cifar-10-batches-py"),
    ("misspelt paper section", ("iterativ",), {"max_examples": 10}, "iterativ", "not one of"),
    ("stop checks without a target loss", E + ("train", "stop_checks_per_epoch"), 4, "stop_checks_per_epoch",
     "stop_at_train_loss"),
]


@pytest.mark.parametrize("label,path,value,key,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_with_key_and_value(label, path, value, key, fragment):
    cfg = mutate(path, value)
    with pytest.raises((WorkflowError, ConfigError)) as info:
        check(cfg)
    text = str(info.value) + " " + " ".join(str(a) for a in getattr(info.value, "args", []))
    assert key in text, text
    assert fragment in text, text


def test_good_config_expands_to_readable_run_ids():
    runs = check(copy.deepcopy(GOOD))
    assert sorted(r for _, r in runs) == ["lr0.05_s0", "lr0.1_s0"]
    table = run_table(runs)
    assert list(table["lr"]) == [0.05, 0.1] and set(table["paper"]) == {"foundation"}
    cfg = runs[("tiny", "lr0.05_s0")]
    assert cfg["train"]["momentum"] == 0.9 and cfg["train"]["weight_decay"] == 0.0  # default filled


def test_dense_snapshot_schedule():
    exp = {"train": {"epochs": 4}, "snapshots": {"dense_epochs": 2, "per_epoch": 4, "every": 2}}
    assert snapshot_epochs(exp) == [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 4]


@pytest.mark.parametrize("mutation,fragment", [
    ((E + ("train", "lr"), -1), "lr"),
    ((E + ("runs",), [{"name": "a"}, {"name": "a"}]), "duplicate run name"),
    ((E + ("dataset",), "fashion_mnist"), "FashionMNIST/raw/train-images-idx3-ubyte"),
])
def test_workflow_stops_before_any_job(tmp_path, mutation, fragment):
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text(yaml.safe_dump(mutate(*mutation)))
    proc = snakemake(tmp_path, configfiles=(cfg_file,), check=False)
    assert proc.returncode != 0
    assert fragment in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()  # nothing ran, nothing written
