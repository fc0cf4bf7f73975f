"""Paper C end to end: the real `heinit` target on the tiny config (no training), and
partial reruns when one sweep's settings change."""

import shutil

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, planned_jobs, snakemake
from repro.claims import COLUMNS

pytestmark = pytest.mark.slow

TINY = "tiny_heinit.yaml"
SWEEPS = ["paper", "width", "depth", "samples", "fresh", "real"]
TABLES = ["per_layer.csv", "summary.csv", "summary.md", "per_layer_paper.md",
          "glorot_slopes.csv", "glorot_slopes.md"]
FIGURES = ["per_layer_paper", "per_layer_digits", "eps_vs_width", "eps_vs_depth",
           "eps_vs_samples", "spread_vs_width", "fresh"]
TARGET = ("--", "heinit")       # after --configfile's list of files
ANALYSIS = {"heinit_tables": 1, "heinit_figures": 1, "heinit_claims": 1, "heinit": 1}


def variant(tmp_path, name, edit):
    cfg = yaml.safe_load((CONFIGS / TINY).read_text())
    edit(cfg)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One complete run of the heinit target on the tiny config."""
    work = tmp_path_factory.mktemp("heinit")
    proc = snakemake(work, *TARGET, configfiles=(TINY,))
    assert "rule train:" not in proc.stdout + proc.stderr          # paper C never trains
    return work


def test_heinit_target_outputs(done):
    res = done / "results"
    assert not (res / "runs").exists()                # the config's experiment is not trained
    for sweep in SWEEPS:
        assert (res / "metrics/heinit" / f"{sweep}.csv").stat().st_size > 0
        assert (res / "benchmarks/heinit" / f"{sweep}.tsv").exists()
    for name in TABLES:
        assert (res / "tables/heinit" / name).stat().st_size > 0
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (res / "figures/heinit" / f"{name}.{ext}").stat().st_size > 1000

    per_layer = pd.read_csv(res / "tables/heinit/per_layer.csv")
    # one row per configuration, layer and metric: counted from the tiny config by hand
    networks = {"paper": 3 * 4, "width": 3 * 3, "depth": 2 * (2 + 4 + 8), "samples": 2 * 3,
                "fresh": 3 * 3, "real": 2 * 3}                # (networks x layers) per sweep
    assert per_layer.groupby("sweep").size().to_dict() == {k: 2 * v for k, v in networks.items()}
    real = per_layer[per_layer.sweep == "real"]
    assert set(real.inputs) == {"digits"} and set(real.input_dim) == {64}
    assert set(real.n_samples) == {300}
    he = per_layer[(per_layer.init == "he") & (per_layer.metric == "forward_ratio")]
    assert ((he["mean"] > 0.5) & (he["mean"] < 1.5)).all()        # He keeps norms near 1
    assert (per_layer["std"] >= 0).all() and (per_layer["eps_max"] >= per_layer["eps_measured"]).all()

    claims = pd.read_csv(res / "claims/heinit.csv")
    assert list(claims.columns) == COLUMNS
    ids = set(claims.id)
    assert {"C1-forward", "C1-backward", "C1u-forward", "C2-forward", "C3-forward",
            "C4-forward"} <= ids
    assert set(claims.verdict) <= {"holds", "fails", "inconclusive"}
    assert claims.set_index("id").loc["C4-forward", "threshold"].startswith("slope/s0 - 1 in [-0.1, 0.1]")
    glorot = pd.read_csv(res / "tables/heinit/glorot_slopes.csv")
    assert len(glorot) == 1 + 3 + 1                  # paper setting, 3 depths, real inputs
    assert set(claims.scale) == {"default"}
    # the tiny config has one seed: every claim read from a seed interval is inconclusive
    # (the protocol needs >= 3 seeds); C1u is an exact test over networks
    seeded = claims[~claims.id.str.startswith("C1u")]
    assert set(seeded.verdict) == {"inconclusive"}


def test_nothing_to_do_then_one_sweep_change_reruns_only_that_sweep(done, tmp_path):
    assert planned_jobs(done, *TARGET, configfiles=(TINY,)) == {}
    work = tmp_path / "w"
    shutil.copytree(done, work, symlinks=True)

    def wider(cfg):
        cfg["heinit"]["width_sweep"]["widths"] = [32, 64, 128, 256]
    changed = variant(tmp_path, "wider.yaml", wider)
    assert planned_jobs(work, *TARGET, configfiles=(changed,)) == {"heinit_sweep": 1, **ANALYSIS}
    proc = snakemake(work, "-n", *TARGET, configfiles=(changed,))
    out = proc.stdout + proc.stderr
    assert "results/metrics/heinit/width.csv" in out
    for other in ("paper", "depth", "samples", "fresh"):
        assert f"output: results/metrics/heinit/{other}.csv" not in out

    def more_seeds(cfg):                              # a shared setting: every sweep reruns
        cfg["heinit"]["seeds"] = [0, 1]
    shared = variant(tmp_path, "seeds.yaml", more_seeds)
    assert planned_jobs(work, *TARGET, configfiles=(shared,)) == {
        "heinit_sweep": 5, "heinit_real": 1, **ANALYSIS}


def test_other_configs_do_not_build_heinit(tmp_path):
    """Only a configuration with a `heinit:` section builds paper C (the tiny foundation
    config of the other tests has none), and a missing real-input dataset stops the
    workflow before any job with the reason."""
    jobs = planned_jobs(tmp_path / "a", configfiles=("tiny.yaml",))
    assert jobs and not any(rule.startswith("heinit") for rule in jobs)

    def torchvision_mnist(cfg):
        cfg["heinit"]["real"]["dataset"] = "mnist"
        cfg["data_root"] = str(tmp_path / "no_data")
    missing = variant(tmp_path, "mnist.yaml", torchvision_mnist)
    proc = snakemake(tmp_path / "b", "-n", *TARGET, configfiles=(missing,), check=False)
    assert proc.returncode != 0
    assert "heinit.real" in proc.stdout + proc.stderr
