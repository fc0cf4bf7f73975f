"""The tiny config through a real SLURM (snakemake-executor-plugin-slurm), end to end.

A single-node cluster (munged, slurmctld, slurmd on localhost; tests/slurm_cluster.py) runs
the tiny config's two MLP trainings (tests/configs/tiny.yaml) as SLURM jobs submitted by `--profile
profiles/test-slurm`; the trained models and histories must be identical to a local run of
the same config. Where SLURM cannot be started (not installed, not root) the test is skipped
with the reason, unless REPRO_REQUIRE_SLURM=1 (set by .ci/run), where that is a failure.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, snakemake
from slurm_cluster import SlurmCluster, SlurmUnavailable

RUNS = ("lr0.05_s0", "lr0.1_s0")  # tests/configs/tiny.yaml: experiment `tiny`, grid over lr
TARGETS = ["results/run_table.csv"] + [f"results/runs/tiny/{r}/status.json" for r in RUNS]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = Path(os.environ.get("REPRO_SLURM_ROOT") or tmp_path_factory.mktemp("slurm"))
    cluster = SlurmCluster(root)
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        if os.environ.get("REPRO_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM could not be started (REPRO_REQUIRE_SLURM=1): {exc}")
        pytest.skip(f"SLURM could not be started here: {exc}")
    yield cluster
    cluster.stop()
    assert all(p.poll() is not None for p in cluster.started), "a daemon is still running"


def _without_venv_on_path(env):
    """The jobs must find the venv's Python without it being on PATH (nothing activated)."""
    venv_bin = str(REPO / ".venv" / "bin")
    path = ":".join(p for p in env["PATH"].split(":") if p.rstrip("/") != venv_bin)
    return {**env, "PATH": path, "VIRTUAL_ENV": "", "PYTHONPATH": ""}


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_config_through_slurm_matches_local_run(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    with ThreadPoolExecutor(1) as pool:  # the local reference run meanwhile, to save time
        # ("--" keeps the targets apart from --configfile's list of files)
        reference = pool.submit(snakemake, local, "--profile", str(REPO / "profiles" / "local"), "--", *TARGETS)
        proc = snakemake(remote, "--profile", str(REPO / "profiles" / "test-slurm"), "--", *TARGETS,
                         env=_without_venv_on_path(cluster.env), timeout=600)
        reference.result()
    out = proc.stdout + proc.stderr
    assert "slurm" in out.lower()

    # the two trainings really were SLURM jobs, and they completed
    jobs = cluster.run("squeue", "--states=all", "-h", "-o", "%i|%T|%k").split()
    train_jobs = [j.split("|") for j in jobs if "rule_train" in j]
    assert len(train_jobs) == len(RUNS), (jobs, cluster.logs())
    assert {state for _, state, _ in train_jobs} == {"COMPLETED"}
    assert all(any(r in comment for _, _, comment in train_jobs) for r in RUNS)

    # identical results: history, final weights, snapshots, final metrics
    for run in RUNS:
        a, b = local / "results/runs/tiny" / run, remote / "results/runs/tiny" / run
        assert json.loads((b / "status.json").read_text())["status"] == "completed"
        assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()
        for rel in ["model.pt"] + [f"snapshots/{p.name}" for p in sorted((a / "snapshots").glob("*.pt"))]:
            sa = torch.load(a / rel, weights_only=True)["state_dict"]
            sb = torch.load(b / rel, weights_only=True)["state_dict"]
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), rel
        fa, fb = (json.loads((d / "status.json").read_text())["final"] for d in (a, b))
        assert fa == fb
    assert (local / "results/run_table.csv").read_bytes() == (remote / "results/run_table.csv").read_bytes()

    # a second submission has nothing to do
    again = snakemake(remote, "--profile", str(REPO / "profiles" / "test-slurm"), "-n", "--", *TARGETS,
                      env=_without_venv_on_path(cluster.env))
    assert "Nothing to be done" in again.stdout + again.stderr


# ---- the profiles themselves (no cluster needed) ------------------------------------------

PROFILES = REPO / "profiles"
FORBIDDEN_EXTRA = ("--gres", "--gpus", "--mem", "-t ", "--time", "-p ", "--partition")


def profile(name):
    return yaml.safe_load((PROFILES / name / "config.v8+.yaml").read_text())


def test_profiles_are_safe_and_ask_for_gpus_through_resources():
    assert not (PROFILES / "default").exists()  # would apply to every run, tests included
    names = sorted(p.name for p in PROFILES.iterdir() if p.is_dir())
    assert {"local", "slurm", "slurm-gpu", "test-slurm", "workstation-gpus"} <= set(names)
    for name in names:
        text = (PROFILES / name / "config.v8+.yaml").read_text()
        extra = [line for line in text.splitlines() if "slurm_extra" in line and not line.strip().startswith("#")]
        assert not any(flag in line for line in extra for flag in FORBIDDEN_EXTRA), (name, extra)
    for name in ("slurm", "slurm-gpu"):
        cfg = profile(name)
        assert cfg["executor"] == "slurm" and cfg["retries"] >= 1
        assert "attempt" in str(cfg["default-resources"]["runtime"])  # grows per retry
        assert cfg["slurm-status-command"] == "squeue"
        assert any(g.startswith("snapshot_metrics=") for g in cfg["group-components"])
    gpu = profile("slurm-gpu")
    assert gpu["set-resources"]["train"]["gpu"] == 1
    assert gpu["set-resource-scopes"]["gpu"] == "local" and gpu["resources"]["gpu"] == 1
    test = profile("test-slurm")  # the local test cluster has no GPUs (no gres.conf)
    assert test["default-resources"]["gpu"] == 0 and test["set-resources"]["train"]["gpu"] == 0
    assert test["slurm-status-command"] == "squeue" and test["slurm-init-seconds-before-status-checks"] <= 5


@pytest.mark.slow
def test_gpu_profile_as_snakemake_reads_it(tmp_path):
    """Snakemake and the plugin accept the profile; training asks for 1 GPU and 4 threads."""
    proc = snakemake(tmp_path, "--profile", str(PROFILES / "slurm-gpu"), "-n", "--cores", "16")
    out = proc.stdout + proc.stderr
    trains = [block for block in out.split("\nrule ")[1:] if block.startswith("train:")]
    assert len(trains) == len(RUNS)
    for block in trains:
        assert "threads: 4" in block and "gpu=1" in block and "runtime=30" in block, block
