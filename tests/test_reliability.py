"""Faults injected: an interrupted workflow, a full disk, corrupt or malicious files."""

import errno
import os
import pickle
import signal
import subprocess
import time

import pytest
import torch
import yaml

from conftest import CONFIGS, REPO, SNAKEMAKE, planned_jobs, snakemake
from repro import io
from repro.train import load_model


def test_atomic_write_on_full_disk_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    target = tmp_path / "model.pt"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        io.save_torch({"w": torch.ones(3)}, target)
    assert list(tmp_path.iterdir()) == []  # no target, no temporary left behind


def test_existing_artifact_survives_a_failed_overwrite(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    io.atomic_write_json(target, {"status": "completed"})
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "disk full")))
    with pytest.raises(OSError):
        io.atomic_write_json(target, {"status": "half"})
    assert "completed" in target.read_text()


def test_corrupt_snapshot_is_detected_not_used(tmp_path):
    path = tmp_path / "e1.pt"
    io.save_torch({"state_dict": {}, "model": {"name": "mlp"}, "input_shape": [1, 8, 8], "num_classes": 10}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(io.CorruptArtifact, match="checksum mismatch"):
        load_model(path)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_loading_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Exploit()}, path)
    (tmp_path / "evil.pt.sha256").write_text(__import__("hashlib").sha256(path.read_bytes()).hexdigest())
    with pytest.raises(io.CorruptArtifact, match="cannot be loaded"):
        io.load_torch(path)


@pytest.mark.slow
@pytest.mark.xfail(reason="open (issue 9): after SIGINT of the whole workflow, the rerun planned all 3 "
                          "trainings although 1 had completed; results are still identical. Not yet diagnosed.",
                   strict=False)
def test_sigint_mid_workflow_then_rerun_redoes_only_incomplete_work(tmp_path):
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    exp = cfg["experiments"]["tiny"]
    exp["train"].update(epochs=6, batch_size=8)
    exp["grid"] = {"train.lr": [0.05, 0.1, 0.2]}
    cfg_file = tmp_path / "slow.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    ref = tmp_path / "ref"
    snakemake(ref, configfiles=(cfg_file,))

    work = tmp_path / "work"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "1", "--configfile", str(cfg_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = work / "results" / "runs" / "tiny"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("*/status.json"))) < 1:
        time.sleep(0.05)
    time.sleep(1.0)  # the next training job is now under way
    assert proc.poll() is None, "workflow finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    finished = {p.parent.name: p.stat().st_mtime for p in runs.glob("*/status.json")}
    assert 1 <= len(finished) < 3

    # Snakemake flags the interrupted job's outputs as incomplete; the README's command
    # (make reproduce) and profiles/local rerun them with --rerun-incomplete.
    jobs = planned_jobs(work, "--rerun-incomplete", configfiles=(cfg_file,))
    assert jobs["train"] == 3 - len(finished)  # complete runs are not redone
    snakemake(work, "--rerun-incomplete", configfiles=(cfg_file,))
    for run, mtime in finished.items():
        assert (runs / run / "status.json").stat().st_mtime == mtime
    for run in ("lr0.05_s0", "lr0.1_s0", "lr0.2_s0"):
        assert (runs / run / "history.csv").read_bytes() == \
            (ref / "results/runs/tiny" / run / "history.csv").read_bytes()
