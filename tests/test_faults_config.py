"""Bad input beyond tests/test_config.py (issue 9): malformed run names, unreadable or
non-mapping YAML, a missing config file, a data root that does not exist, and values that
only fail against the data (a batch larger than the training set). Each stops before any
job with one message naming the key (or file), the bad value and what is allowed."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError

from conftest import CONFIGS, snakemake
from repro.config import ConfigError, parse_config

GOOD = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
TINY = GOOD["experiments"]["tiny"]


def check(config):
    """What rules/common.smk does at parse time: schema (with defaults), then run expansion,
    every problem turned into the one line the user sees."""
    try:
        return parse_config(config)
    except ConfigError as error:
        raise ConfigError(f"Invalid configuration: {error}") from None


def with_experiment(**changes):
    cfg = copy.deepcopy(GOOD)
    exp = cfg["experiments"]["tiny"]
    for key, value in changes.items():
        node = exp
        *parents, last = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def message(info) -> str:
    return str(info.value) + " " + " ".join(str(a) for a in getattr(info.value, "args", []))


BAD = [
    # (id, config, key named, fragment naming the value or what is allowed)
    ("run name with slash", with_experiment(runs=[{"name": "a/b"}]), "name", "a/b"),
    ("run name dotdot", with_experiment(runs=[{"name": ".."}]), "name", ".."),
    ("run name with inner dotdot", with_experiment(runs=[{"name": "a..b"}]), "a..b", "'..'"),
    ("run name with space", with_experiment(runs=[{"name": "my run"}]), "name", "my run"),
    ("run name with backquote", with_experiment(runs=[{"name": "a`id`"}]), "name", "a`id`"),
    ("run name with dollar", with_experiment(runs=[{"name": "$(id)"}]), "name", "$(id)"),
    ("run name empty", with_experiment(runs=[{"name": ""}]), "name", "''"),
    ("run name not a string", with_experiment(runs=[{"name": 7}]), "name", "7"),
    ("run without name", with_experiment(runs=[{"set": {"train.lr": 0.1}}]), "name", "required"),
    ("duplicate seeds", with_experiment(seeds=[0, 0]), "tiny", "duplicate run name"),
    ("negative seed", with_experiment(seeds=[-1]), "seeds", "-1"),
    ("seeds not a list", with_experiment(seeds=3), "seeds", "3"),
    ("epochs zero", with_experiment(train__epochs=0), "epochs", "0"),
    ("epochs as text", with_experiment(train__epochs="ten"), "epochs", "ten"),
    ("batch size negative", with_experiment(train__batch_size=-8), "batch_size", "-8"),
    ("lr as list", with_experiment(train__lr=[0.1]), "lr", "[0.1]"),
    ("weight decay negative", with_experiment(train__weight_decay=-1e-4), "weight_decay", "-0.0001"),
    ("step schedule without milestones", with_experiment(train__lr_schedule={"type": "step"}), "lr_schedule",
     "milestones"),
    ("cyclic batch schedule negative", with_experiment(train__batch_schedule={
        "type": "cyclic", "low": -16, "high": 64, "stage_length": 1}), "batch_schedule", "-16"),
    ("mlp width zero", with_experiment(model={"name": "mlp", "depth": 1, "width": 0}), "width", "0"),
    ("resnet without widths", with_experiment(model={"name": "resnet", "widths": []}), "widths", "[]"),
    ("vgg width factor zero", with_experiment(model={"name": "vgg", "width_factor": 0}), "width_factor", "0"),
    ("unknown model key", with_experiment(model={"name": "mlp", "layers": 3}), "model", "layers"),
    ("unknown init", with_experiment(model={"name": "mlp", "init": "xavier"}), "init", "xavier"),
    ("negative snapshot epoch", with_experiment(snapshots={"at": [-1, 1]}), "at", "-1"),
    ("test fraction one", with_experiment(test_fraction=1.0), "test_fraction", "1.0"),
    ("grid empty list", with_experiment(grid={"train.lr": []}), "train.lr", "[]"),
    ("threads zero", {**copy.deepcopy(GOOD), "threads": 0}, "threads", "0"),
    ("download not a boolean", {**copy.deepcopy(GOOD), "download": "yes"}, "download", "yes"),
    ("experiments a list", {**copy.deepcopy(GOOD), "experiments": [TINY]}, "experiments", "not of type 'object'"),
    ("missing data root", {**with_experiment(dataset="mnist"), "data_root": "/nonexistent/data"}, "dataset",
     "/nonexistent/data"),
]


@pytest.mark.parametrize("label,config,key,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_naming_key_and_value(label, config, key, fragment):
    with pytest.raises((WorkflowError, ConfigError)) as info:
        check(copy.deepcopy(config))
    text = message(info)
    assert key in text, text
    assert fragment in text, text


def test_batch_larger_than_the_training_set_is_rejected():
    cfg = with_experiment(train__batch_size=100_000)  # digits has 1,438 training examples
    with pytest.raises(ConfigError) as info:
        check(cfg)
    assert "batch_size" in message(info) and "100000" in message(info)


# ---------------------------------------------------------------- files Snakemake reads


def run_with_file(tmp_path, text: str | None, name="bad.yaml"):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    return snakemake(tmp_path / "w", "-n", configfiles=(path,), check=False), path


FILES = [
    # Snakemake reads --configfile itself, before the Snakefile runs: these are its messages
    # (they do not name the line; the file is the one given on the command line)
    ("unreadable yaml", "experiments:\n  tiny: {paper: foundation\n   dataset: [digits\n",
     ["Config file is not valid JSON or YAML"]),
    ("tab-indented yaml", "experiments:\n\ttiny: {}\n", ["Config file is not valid JSON or YAML", "tab"]),
    ("yaml is a list", "- experiments\n- tiny\n", ["must be given as JSON or YAML with keys at top level"]),
    ("empty yaml", "", ["must be given as JSON or YAML with keys at top level"]),
    ("config file missing", None, ["No such file or directory", "bad.yaml"]),
    ("no experiments key", "device: cpu\n", ["Invalid configuration", "'experiments' is a required property"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("label,text,fragments", FILES, ids=[f[0] for f in FILES])
def test_unreadable_config_file_stops_before_any_job(tmp_path, label, text, fragments):
    proc, path = run_with_file(tmp_path, text)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for fragment in fragments:
        assert fragment in out, out[-3000:]
    assert not (tmp_path / "w" / "results").exists()


@pytest.mark.slow
def test_bad_run_name_in_a_config_file_stops_the_workflow_naming_it(tmp_path):
    cfg = with_experiment(runs=[{"name": "../../escape"}])
    proc, _ = run_with_file(tmp_path, yaml.safe_dump(cfg))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Invalid configuration" in out and "../../escape" in out
    assert not (tmp_path / "w" / "results").exists() and not (tmp_path / "escape").exists()
