"""The cost model (repro.costs) and the SLURM requests it makes at paper scale (issue 17)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro import costs

ROOT = Path(__file__).resolve().parents[1]
GPU_PROFILE = ROOT / "profiles" / "slurm-gpu" / "config.v8+.yaml"


def test_flops_of_a_known_layer_and_the_resnet110_parameters():
    mlp = costs.architecture({"name": "mlp", "depth": 1, "width": 256}, "mnist")
    # 784 -> 256 -> 10: 2 FLOPs per multiply-add
    assert mlp["flops_per_image"] == 2 * (784 * 256 + 256 * 10)
    assert mlp["params"] == 784 * 256 + 256 + 256 * 10 + 10
    r110 = costs.architecture({"name": "resnet", "depth": 110, "widths": [16, 32, 64]}, "cifar10")
    assert abs(r110["params"] - 1.737e6) / 1.737e6 < 0.05  # paper A, Table 1


def test_runtime_grows_with_epochs_and_attempts():
    run = {"dataset": "cifar10", "model": {"name": "simplecnn", "widths": [32, 64], "hidden": 128},
           "train": {"epochs": 200, "batch_size": 128}}
    longer = {**run, "train": {"epochs": 400, "batch_size": 128}}
    assert costs.train_cost(longer)["flops"] == pytest.approx(2 * costs.train_cost(run)["flops"])
    assert costs.train_runtime_min(run, attempt=2) == 2 * costs.train_runtime_min(run)


def test_a_batched_job_asks_the_sum_of_its_runs_time_and_the_largest_memory():
    cnn = {"dataset": "cifar10", "model": {"name": "resnet", "depth": 110, "widths": [16, 32, 64]},
           "train": {"epochs": 300, "batch_size": 128}}
    mlp = {"dataset": "mnist5k", "model": {"name": "mlp", "depth": 2, "width": 128},
           "train": {"epochs": 16, "batch_size": 32}}
    for attempt in (1, 2):
        # what rule train asks for each run alone: max(train_runtime x attempt, the projection)
        alone = [max(30 * attempt, costs.train_runtime_min(run, attempt)) for run in (cnn, mlp)]
        assert alone[0] > 30 * attempt and alone[1] == 30 * attempt  # one projected, one at the floor
        assert costs.train_batch_runtime_min([cnn, mlp], attempt, floor_min=30) == sum(alone)
    assert costs.train_batch_mem_mb([cnn, mlp]) == max(costs.train_mem_mb(cnn), costs.train_mem_mb(mlp))


def test_a_job_measuring_several_runs_pays_start_up_once_and_the_sum_of_their_work():
    small = {"dataset": "mnist5k", "model": {"name": "mlp", "depth": 2, "width": 128}, "train": {}}
    big = {"dataset": "cifar10", "model": {"name": "resnet", "depth": 56, "widths": [16, 32, 64]}, "train": {}}
    assert costs.measure_runtime_sum_min([(big, 500.0)], attempt=2) == costs.measure_runtime_min(big, 500.0, attempt=2)
    seconds = sum(costs.architecture(r["model"], r["dataset"])["flops_per_image"] * p * costs.train_images(r)
                  for r, p in ((big, 500.0), (small, 80.0), (big, 500.0))) / costs.GPU_FLOPS
    both = costs.measure_runtime_sum_min([(big, 500.0), (small, 80.0), (big, 500.0)])
    assert both == math.ceil(costs.OVERHEAD_MIN + costs.SAFETY * seconds / 60)
    assert costs.measure_runtime_min(big, 500.0) <= both <= 2 * costs.measure_runtime_min(big, 500.0) + \
        costs.measure_runtime_min(small, 80.0)
    assert costs.interpolation_runtime_min(1) == costs.INTERPOLATION_PAIR_MIN == 60  # paper scale: one pair a job
    assert costs.interpolation_runtime_min(9) == 9 * 60


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper_dry")
    # the official dataset sizes, as on a cluster (download on: a dry run downloads nothing)
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
                          "--configfile", str(ROOT / "configs" / "paper.yaml"), "--config",
                          f"data_root={work / 'data'}", "download=True", "--profile", str(GPU_PROFILE.parent), "-n"],
                         capture_output=True, text=True, cwd=work)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.slow
def test_no_paper_scale_job_asks_for_more_than_the_gpu_profile_allows(paper_dry_run):
    profile = yaml.safe_load(GPU_PROFILE.read_text())
    gpu_limit = profile["resources"]["gpu"]
    jobs = re.findall(r"resources: (.*)", paper_dry_run)
    assert len(jobs) > 500
    for line in jobs:
        res = dict(kv.split("=", 1) for kv in line.split(", "))
        assert int(res["gpu"]) <= gpu_limit, line
        assert int(res["runtime"]) <= costs.SLURM_GPU_LIMITS["runtime"], line
        assert int(res["mem_mb"]) <= costs.SLURM_GPU_LIMITS["mem_mb"], line
    assert any(int(dict(kv.split("=", 1) for kv in line.split(", "))["runtime"]) > 240 for line in jobs), \
        "the cost model gives the wide ResNets more than the old flat 4 h"


@pytest.mark.parametrize("profile", ["slurm", "slurm-gpu"])
def test_slurm_profiles_group_the_tiny_jobs(profile):
    config = yaml.safe_load((ROOT / "profiles" / profile / "config.v8+.yaml").read_text())
    grouped = {entry.split("=")[0] for entry in config["groups"]}
    tiny = {"iterative_snapshot_metrics", "iterative_tables", "iterative_figures", "iterative_claims",
            "minima_runs_table", "minima_breaking", "minima_memorization", "minima_schedules",
            "minima_interpolation_summary", "minima_ratio_figures", "minima_claims", "heinit_tables",
            "heinit_figures", "heinit_claims", "breakeven_tables", "breakeven_figures", "breakeven_claims",
            "claims", "paper_comparison", "paper_page"}
    assert tiny - grouped == set()
    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk")), re.M))
    assert grouped <= rules, grouped - rules


@pytest.mark.parametrize("spec, dataset", [
    ({"name": "resnet", "depth": 110, "widths": [16, 32, 64]}, "cifar10"),
    ({"name": "resnet", "widths": [160, 320, 640], "blocks_per_stage": 4}, "cifar100"),
    ({"name": "simplecnn", "batch_norm": True}, "mnist5k"),
    ({"name": "vgg", "cfg": "vgg11"}, "cifar10"),
    ({"name": "mlp", "depth": 4, "width": 256}, "fashion_mnist"),
])
def test_torch_free_flop_count_equals_torchs_flop_counter(spec, dataset):
    """The cost model counts FLOPs from the spec (no torch while the DAG is built); torch's
    FlopCounterMode on the real model, built on the meta device, is the reference."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from repro.config_sizes import INPUT_SHAPES, NUM_CLASSES
    from repro.models import build_model, count_parameters

    shape = INPUT_SHAPES[dataset]
    with torch.device("meta"):
        model = build_model(spec, shape, NUM_CLASSES.get(dataset, 10))
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, *shape))
    arch = costs.architecture(spec, dataset)
    assert arch["flops_per_image"] == counter.get_total_flops()
    assert arch["params"] == count_parameters(model)
