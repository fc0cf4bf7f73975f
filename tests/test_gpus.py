"""GPU claiming for local multi-GPU runs (repro.gpus), on CPU with a simulated device count."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from conftest import SNAKEMAKE
from repro import gpus
from repro.train import resolve_device


@pytest.fixture
def sim(monkeypatch, tmp_path):
    """Two simulated GPUs, locks in a private folder, no SLURM job around us."""
    monkeypatch.setenv(gpus.COUNT_ENV, "2")
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return tmp_path / "locks"


def test_candidates_follow_simulation_then_visible_devices(monkeypatch):
    monkeypatch.setenv(gpus.COUNT_ENV, "3")
    assert gpus.candidate_devices() == ["0", "1", "2"]
    monkeypatch.delenv(gpus.COUNT_ENV)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert gpus.candidate_devices() == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.candidate_devices() == []


def test_claims_are_distinct_and_released(sim):
    a = gpus.claim_gpus(1, timeout=0)
    b = gpus.claim_gpus(1, timeout=0)
    assert (a.ids, b.ids) == (["0"], ["1"])
    with pytest.raises(gpus.GpuClaimError, match="no 1 free GPU"):
        gpus.claim_gpus(1, timeout=0)
    a.release()
    c = gpus.claim_gpus(1, timeout=0)
    assert c.ids == ["0"]  # the released device is free again
    b.release(), c.release()
    both = gpus.claim_gpus(2, timeout=0)
    assert both.ids == ["0", "1"] and both.indices == [0, 1]
    both.release()


def test_partial_claim_is_given_back(sim):
    one = gpus.claim_gpus(1, timeout=0)
    with pytest.raises(gpus.GpuClaimError):
        gpus.claim_gpus(2, timeout=0)  # only device 1 free: must not keep it
    assert gpus.claim_gpus(1, timeout=0).ids == ["1"]
    one.release()


def test_more_gpus_than_exist_fails_at_once(sim):
    with pytest.raises(gpus.GpuClaimError, match="asks for 3 GPU"):
        gpus.claim_gpus(3)


def test_waits_for_a_device_to_be_freed(sim):
    held = [gpus.claim_gpus(1, timeout=0), gpus.claim_gpus(1, timeout=0)]
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from repro import gpus
        c = gpus.claim_gpus(1, timeout=30, poll=0.05)
        print(c.ids[0], flush=True)
    """)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    time.sleep(1.0)
    assert child.poll() is None  # still waiting: both devices held
    held[1].release()
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "1"
    held[0].release()


def test_claim_of_a_killed_process_is_released(sim):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from repro import gpus
        c = gpus.claim_gpus(2, timeout=0)
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(gpus.GpuClaimError):
        gpus.claim_gpus(1, timeout=0)
    child.send_signal(signal.SIGKILL)  # dies without releasing anything itself
    child.wait(timeout=10)
    claim = gpus.claim_gpus(2, timeout=5)
    assert claim.ids == ["0", "1"]
    claim.release()


def test_claimed_device_sets_and_restores_visible_devices(sim, monkeypatch):
    with gpus.claimed_device("auto", 1) as dev0:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        with gpus.claimed_device("auto", 1) as dev1:
            assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"  # restored to the outer value
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert dev0 == dev1 == expected
    assert gpus.claim_gpus(2, timeout=0).ids == ["0", "1"]  # everything released


def test_user_restriction_maps_to_physical_ids(sim, monkeypatch):
    monkeypatch.delenv(gpus.COUNT_ENV)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    blocker = gpus.claim_gpus(1, timeout=0)  # takes physical 2
    with gpus.claimed_device("auto", 1):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,7"
    blocker.release()


def test_cuda_already_initialised_uses_device_index(sim, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    blocker = gpus.claim_gpus(1, timeout=0)
    with gpus.claimed_device("cuda", 1) as device:
        assert device == torch.device("cuda:1")
        assert "CUDA_VISIBLE_DEVICES" not in os.environ  # would have no effect any more
    blocker.release()


@pytest.mark.parametrize("requested, n, slurm", [("auto", 0, False), ("cpu", 1, False),
                                                 ("cuda:1", 1, False), ("auto", 1, True)])
def test_no_claim_when_not_asked(sim, monkeypatch, requested, n, slurm):
    if slurm:
        monkeypatch.setenv("SLURM_JOB_ID", "42")
    with gpus.claimed_device(requested, n) as device:
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
        assert gpus.claim_gpus(2, timeout=0).ids == ["0", "1"]  # nothing was taken
    assert device == resolve_device(requested)


def test_claim_for_job_holds_for_the_process_and_is_reused(sim, monkeypatch):
    monkeypatch.setattr(gpus, "_process_claim", None)
    job = SimpleNamespace(params={"device": "auto"}, resources={"gpu": 1})
    device = gpus.claim_for_job(job)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert gpus.claim_for_job(job) == device
    with gpus.job_device(job) as again:  # e.g. scripts/train.py after start_job claimed
        assert again == device and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert gpus.claim_gpus(1, timeout=0).ids == ["1"]  # device 0 still held by this "job"
    gpus._process_claim[0].__exit__(None, None, None)
    assert gpus.claim_gpus(1, timeout=0).ids == ["0"]


SNAKEFILE = """
rule all:
    input:
        expand("out/{i}.csv", i=range(4)),


rule job:
    output:
        "out/{i}.csv",
    params:
        device="auto",
    resources:
        gpu=1,
    script:
        "job.py"
"""

JOB = """
import os, time
from repro.gpus import job_device
with job_device(snakemake) as device:
    start = time.time()
    visible = os.environ["CUDA_VISIBLE_DEVICES"]
    time.sleep(3)
    end = time.time()
with open(snakemake.output[0], "w") as f:
    f.write(f"job,visible,device,start,end\\n{snakemake.wildcards.i},{visible},{device},{start},{end}\\n")
"""


@pytest.mark.slow
def test_snakemake_gpu_jobs_run_side_by_side_on_distinct_devices(tmp_path):
    """--resources gpu=2 with 4 jobs of gpu=1: two at a time, never on the same device."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "job.py").write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID",
                                                           gpus.LOCK_DIR_ENV)}
    env[gpus.COUNT_ENV] = "2"
    proc = subprocess.run([SNAKEMAKE, "--cores", "4", "--resources", "gpu=2", "-d", str(tmp_path),
                           "-s", str(tmp_path / "Snakefile")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.concat([pd.read_csv(p, dtype={"visible": str}) for p in sorted((tmp_path / "out").glob("*.csv"))])
    assert sorted(rows["visible"].unique()) == ["0", "1"]  # both devices used
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert set(rows["device"]) == {expected}
    overlapping = 0
    recs = rows.to_dict("records")
    for i, a in enumerate(recs):
        for b in recs[i + 1:]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlapping += 1
                assert a["visible"] != b["visible"], (a, b)
    assert overlapping >= 1  # jobs really ran side by side
    assert (tmp_path / ".snakemake" / "gpu_locks" / "gpu0.lock").exists()  # per-workflow lock folder



def gpu_rules_and_scripts():
    """{rule: script file} for every rule in rules/*.smk whose gpu resource is not literally 0."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = {}
    for smk in sorted((root / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            gpu = re.search(r"\bgpu=([^,\n]+)", block)
            script = re.search(r'script:\s*\n\s*"\.\./(scripts/[\w.]+)"', block)
            if name and gpu and script and gpu.group(1).strip() != "0":
                out[name.group(1)] = root / script.group(1)
    return out


def test_every_rule_that_may_ask_for_a_gpu_claims_one():
    """Two local jobs asking for gpu=1 must land on distinct devices: their scripts claim
    through repro.gpus (job_device / claim_for_job), as scripts/train.py does."""
    rules = gpu_rules_and_scripts()
    assert {"breakeven_curvature", "iterative_model_metrics", "iterative_snapshot_metrics"} <= set(rules)
    claiming = {r for r, path in rules.items() if re.search(r"job_device\(snakemake|claim_for_job\(", path.read_text())}
    assert set(rules) - claiming == set()
