"""Faults injected into real Snakemake runs (issue 9); docs/RELIABILITY.md lists each one,
its outcome and the command that reproduces it.

- a training job SIGKILLed mid-run: Snakemake retries it, it resumes from its checkpoint
  and ends bitwise identical to an uninterrupted run, snapshots included;
- the whole workflow SIGKILLed and its newest checkpoint corrupted: the rerun warns,
  resumes from the previous checkpoint and ends bitwise identical;
- a corrupted snapshot consumed by a metric rule: a clear error, never a number;
- a diverging run in every paper that trains: recorded as diverged, the workflow completes,
  tables / claims show it as diverged with the reason (no numbers for it);
- a full disk (a real, tiny tmpfs) and a read-only or blocked results directory: a clear
  error, nothing half-written that looks complete;
- targets that try to escape results/ or smuggle shell characters: no rule matches them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import CONFIGS, REPO, SNAKEMAKE, snakemake
from repro import io

pytestmark = pytest.mark.slow

EXP, RUN = "killme", "a_s0"
# Long enough (8 epochs of 359 steps) that a kill lands mid-run; augmentation on, so the
# replayed epoch must also replay the random translations/flips; fractional snapshots.
KILL_CFG = {
    "device": "cpu",
    "threads": 1,
    "experiments": {EXP: {
        "paper": "foundation", "dataset": "digits", "seeds": [0],
        "model": {"name": "mlp", "depth": 2, "width": 32},
        "train": {"epochs": 8, "batch_size": 4, "lr": 0.02, "momentum": 0.9, "translate": 1, "flip": True},
        "snapshots": {"at": [0, 0.5, 1, 2, 8]},
        "runs": [{"name": "a"}],
    }},
}
SNAPSHOTS = ["e0.pt", "e0.5.pt", "e1.pt", "e2.pt", "e8.pt"]


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def start(workdir: Path, cfg_file: Path, *args: str) -> subprocess.Popen:
    """Snakemake in the background, in its own session (so the test can signal all of it)."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1", *args,
           "--configfile", str(cfg_file)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300, what: str = "") -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"workflow ended before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def session_pids(sid: int, needle: str) -> list[int]:
    """Processes of session `sid` whose command line contains `needle`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ProcessLookupError):
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def checkpoint_epoch(path: Path) -> int | None:
    try:
        return io.load_torch(path)["epoch"]
    except (OSError, io.CorruptArtifact, KeyError):
        return None


def state(path: Path) -> dict:
    return io.load_torch(path)["state_dict"]


def assert_same_run(work: Path, ref: Path, exp: str = EXP, run: str = RUN, snapshots=SNAPSHOTS) -> None:
    got, want = work / "results/runs" / exp / run, ref / "results/runs" / exp / run
    assert (got / "history.csv").read_bytes() == (want / "history.csv").read_bytes()
    for name in ["model.pt", *(f"snapshots/{s}" for s in snapshots)]:
        a, b = state(got / name), state(want / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert sorted(p.name for p in (got / "snapshots").glob("*.pt")) == sorted(snapshots)


@pytest.fixture(scope="module")
def kill_cfg(tmp_path_factory):
    return write_config(tmp_path_factory.mktemp("cfg") / "kill.yaml", KILL_CFG)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, kill_cfg):
    """The reference: the same workflow run once without faults."""
    ref = tmp_path_factory.mktemp("ref")
    snakemake(ref, configfiles=(kill_cfg,))
    return ref


def kill_training_job(work, cfg_file, ckpt, script, what):
    """Start the workflow, SIGKILL its training job (Snakemake runs `script` as a temp copy)
    once `ckpt` holds a rotated checkpoint, and let Snakemake finish: (process, output)."""
    proc = start(work, cfg_file)
    try:
        wait_for(lambda: (ckpt / "previous.pt.sha256").exists(), proc, what=what)
        jobs = session_pids(proc.pid, script)
        assert len(jobs) >= 1, f"training job process ({script}) not found"
        for pid in jobs:
            os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, out


def test_sigkilled_training_job_is_retried_resumes_and_ends_bitwise_identical(tmp_path, kill_cfg, uninterrupted):
    work = tmp_path / "w"
    ckpt = work / "results/checkpoints" / EXP / RUN
    # epoch 2 checkpointed (the rotation has made previous.pt): the job is in epoch 3 of 8
    proc, out = kill_training_job(work, kill_cfg, ckpt, ".train.py", "the second checkpoint")
    # Snakemake saw the job fail, deleted its outputs (snapshots/ too) and retried it (retries: 1)
    assert proc.returncode == 0, out[-3000:]
    assert "Trying to restart job" in out
    status = json.loads((work / "results/runs" / EXP / RUN / "status.json").read_text())
    assert status["status"] == "completed" and status["resumed_from_epoch"] >= 1
    log = (work / "results/logs/train" / EXP / f"{RUN}.log").read_text()
    assert f"resuming from the checkpoint after epoch {status['resumed_from_epoch']}" in log
    # weights, history and every snapshot (those taken before the kill were put back) identical
    assert_same_run(work, uninterrupted)


def test_sigkilled_batch_job_is_retried_and_every_run_resumes_from_its_own_checkpoint(
        tmp_path, uninterrupted):
    """train_batch {by: seed}: seeds 1 then 0 of the run spec in one job, killed while seed 0
    trains. Snakemake deletes the outputs of both runs and retries the job: seed 1 (finished)
    is rewritten from its final checkpoint, seed 0 resumes mid-run and ends bitwise identical
    to the same run trained in a one-run job."""
    cfg = {**KILL_CFG, "train_batch": {"by": "seed"},
           "experiments": {EXP: {**KILL_CFG["experiments"][EXP], "seeds": [1, 0]}}}
    cfg_file = write_config(tmp_path / "batched.yaml", cfg)
    work = tmp_path / "w"
    ckpt = work / "results/checkpoints" / EXP / RUN
    proc, out = kill_training_job(work, cfg_file, ckpt, ".train_batch.py", "seed 0's second checkpoint")
    assert proc.returncode == 0, out[-3000:]
    assert "Trying to restart job" in out
    first = json.loads((work / "results/runs" / EXP / "a_s1/status.json").read_text())
    assert first["status"] == "completed" and first["resumed_from_epoch"] == 8  # not trained again
    status = json.loads((work / "results/runs" / EXP / RUN / "status.json").read_text())
    assert status["status"] == "completed" and 1 <= status["resumed_from_epoch"] < 8
    log = (work / "results/logs/train_batch" / EXP / "a_s1+0.log").read_text()
    assert "resuming from the checkpoint after epoch 8" in log
    assert f"resuming from the checkpoint after epoch {status['resumed_from_epoch']}" in log
    assert_same_run(work, uninterrupted)


def test_killed_workflow_with_corrupt_last_checkpoint_resumes_from_previous_with_warning(
        tmp_path, kill_cfg, uninterrupted):
    work = tmp_path / "w"
    ckpt = work / "results/checkpoints" / EXP / RUN
    proc = start(work, kill_cfg)
    try:
        wait_for(lambda: (checkpoint_epoch(ckpt / "last.pt") or 0) >= 3, proc, what="the third checkpoint")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole workflow: Snakemake and the job
        proc.communicate(timeout=60)
    previous = checkpoint_epoch(ckpt / "previous.pt")
    assert previous is not None and previous >= 2
    # the newest checkpoint is corrupted (e.g. a disk error): one flipped byte in the middle
    data = bytearray((ckpt / "last.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ckpt / "last.pt").write_bytes(bytes(data))
    assert not (work / "results/runs" / EXP / RUN / "status.json").exists()

    # what a user does after a crash: unlock, then rerun (make reproduce / the profiles do this)
    snakemake(work, "--unlock", configfiles=(kill_cfg,))
    snakemake(work, "--rerun-incomplete", configfiles=(kill_cfg,))
    log = (work / "results/logs/train" / EXP / f"{RUN}.log").read_text()
    assert "WARNING" in log and "ignoring checkpoint" in log and "checksum mismatch" in log
    assert f"resuming from the checkpoint after epoch {previous}" in log
    status = json.loads((work / "results/runs" / EXP / RUN / "status.json").read_text())
    assert status["resumed_from_epoch"] == previous
    assert_same_run(work, uninterrupted)


def test_corrupt_snapshot_fails_the_metric_job_with_a_clear_error(tmp_path):
    cfg = yaml.safe_load((CONFIGS / "faults_diverge.yaml").read_text())
    cfg["experiments"] = {"breakeven_div": cfg["experiments"]["breakeven_div"]}
    cfg["experiments"]["breakeven_div"]["runs"] = [{"name": "ok"}]
    for paper in ("iterative", "minima"):
        cfg.pop(paper)
    cfg_file = write_config(tmp_path / "c.yaml", cfg)
    work = tmp_path / "w"
    snakemake(work, "--until", "train", configfiles=(cfg_file,))
    snap = work / "results/runs/breakeven_div/ok_s0/snapshots/e1.pt"
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))

    proc = snakemake(work, "--keep-going", configfiles=(cfg_file,), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # the failing job is the paper-D curvature job that read the snapshot; Snakemake names its log,
    # whose last line names the file and the reason
    failed = re.search(r"Error in rule (breakeven_\w+):.*?log: (\S+) \(check log", out, re.S)
    assert failed, out[-3000:]
    last = (work / failed.group(2)).read_text().strip().splitlines()[-1]
    assert "CorruptArtifact" in last and "snapshots/e1.pt: checksum mismatch" in last, last
    # no number was measured on the corrupt file, and nothing was built on top of it
    for path in (work / "results/metrics/breakeven").rglob("*.json"):
        assert '"snapshot": "e1"' not in path.read_text(), path
    assert not (work / "results/tables/breakeven/runs.csv").exists()
    assert not (work / "results/claims/breakeven.csv").exists()


@pytest.fixture(scope="module")
def diverged_workflow(tmp_path_factory):
    work = tmp_path_factory.mktemp("diverge")
    proc = snakemake(work, configfiles=("faults_diverge.yaml",), timeout=1800)
    return work, proc


def test_diverging_runs_in_every_paper_leave_the_workflow_complete(diverged_workflow):
    work, proc = diverged_workflow
    res = work / "results"
    for exp in ("iterative_div", "minima_div", "breakeven_div"):
        bad = json.loads((res / "runs" / exp / "huge_lr_s0/status.json").read_text())
        assert bad["status"] == "diverged" and bad["stop_reason"], exp
        good = json.loads((res / "runs" / exp / "ok_s0/status.json").read_text())
        assert good["status"] == "completed", exp
    for paper in ("iterative", "minima", "breakeven"):
        assert any((res / "figures" / paper).glob("*.png")), paper
        assert any((res / "figures" / paper).glob("*.pdf")), paper
    assert (res / "claims.md").exists()
    assert planned_nothing(work)


def planned_nothing(work) -> bool:
    proc = snakemake(work, "-n", configfiles=("faults_diverge.yaml",))
    return "Nothing to be done" in proc.stdout + proc.stderr


def test_diverged_run_is_a_reason_not_a_number_in_every_table(diverged_workflow):
    work, _ = diverged_workflow
    tables = work / "results/tables"
    # A: per-run table says diverged; Table 1 leaves it out with a note; no block numbers for it
    runs = pd.read_csv(tables / "iterative/runs.csv").set_index("run")
    assert runs.loc["huge_lr_s0", "status"] == "diverged"
    t1 = pd.read_csv(tables / "iterative/table1.csv").set_index("label")
    assert t1.loc["huge_lr", "seeds"] == 0 and pd.isna(t1.loc["huge_lr", "test_error_mean"])
    assert "not completed" in t1.loc["huge_lr", "note"]
    assert "not completed" in (tables / "iterative/table1.md").read_text()
    blocks = pd.read_csv(tables / "iterative/blocks.csv")
    bad = blocks[blocks.run == "huge_lr_s0"]
    assert len(bad) >= 1 and (bad.metric == "skipped").all() and bad.value.isna().all()
    assert bad.note.str.contains("diverged").all()
    assert blocks[blocks.run == "ok_s0"].value.notna().any()
    # B: no sharpness for the diverged run, the reason instead
    mruns = pd.read_csv(tables / "minima/runs.csv")
    lam = mruns[mruns.metric == "lambda_max"].set_index("run")
    assert lam.loc["huge_lr_s0", "status"] == "diverged" and pd.isna(lam.loc["huge_lr_s0", "value"])
    assert "diverged" in lam.loc["huge_lr_s0", "note"]
    assert lam.loc["ok_s0", "value"] > 0
    assert "diverged" in (tables / "minima/runs.md").read_text()
    # D: the run is not valid; its snapshots after the divergence are missing with the reason
    druns = pd.read_csv(tables / "breakeven/runs.csv").set_index("run")
    assert druns.loc["huge_lr_s0", "status"] == "diverged" and not druns.loc["huge_lr_s0", "valid"]
    assert "diverged" in druns.loc["huge_lr_s0", "note"]
    traj = pd.read_csv(tables / "breakeven/trajectories.csv")
    gone = traj[(traj.run == "huge_lr_s0") & traj.value.isna()]
    assert len(gone) >= 1 and gone.note.str.contains("diverged|non-finite").all()
    # its maxima cover only the snapshots before the divergence (e.g. e0) and say so
    maxima = pd.read_csv(tables / "breakeven/maxima.csv")
    bad = maxima[maxima.run == "huge_lr_s0"]
    assert len(bad) >= 1 and bad.note.fillna("").str.contains("diverged").all()
    assert not bad.valid.astype(bool).any()  # and the claims leave them out


def test_claims_name_the_diverged_runs(diverged_workflow):
    work, _ = diverged_workflow
    claims = pd.read_csv(work / "results/claims.csv")
    assert set(claims.verdict) <= {"holds", "fails", "inconclusive"}
    for paper, run in (("A", "huge_lr_s0"), ("B", "diverged"), ("D", "huge_lr_s0")):
        notes = " ".join(claims[claims.paper == paper].note.fillna(""))
        assert run in notes, (paper, notes[:500])
    assert "huge_lr" in (work / "results/claims.md").read_text()


# ---------------------------------------------------------------- disks and directories

def _namespaces_work() -> bool:
    """Can this machine mount a tmpfs in a private user+mount namespace (no real root needed)?"""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || exit 1"],
                           capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(),
                                      reason="unshare -rm cannot mount a tmpfs here (no user namespaces)")


def run_in_namespace(script: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True, timeout=timeout)


def assert_nothing_half_written(results: Path) -> None:
    """Every artifact left behind is complete: no temporary files; every .pt verifies
    against its checksum and loads; every status.json parses; every run that has a status
    has all its outputs."""
    assert not [p for p in results.rglob("*.tmp")], "temporary files left behind"
    for pt in results.rglob("*.pt"):
        io.load_torch(pt)  # raises CorruptArtifact on a truncated file or a missing checksum
    for status in results.rglob("runs/*/*/status.json"):
        json.loads(status.read_text())
        for name in ("model.pt", "history.csv", "timing.csv"):
            assert (status.parent / name).exists(), status.parent / name


@needs_namespaces
def test_full_disk_mid_run_is_a_clear_error_and_rerun_completes(tmp_path, kill_cfg, uninterrupted):
    """results/ on a real 160 KiB tmpfs: it fills up during training (ENOSPC). Snakemake
    must fail with the reason shown, leave nothing that looks complete, and a rerun with
    space must finish identical to the uninterrupted run."""
    work = tmp_path / "w"
    (work / "results").mkdir(parents=True)
    copy = tmp_path / "after"
    cmd = (f"{SNAKEMAKE} -s {REPO / 'Snakefile'} -d {work} --cores 1 --configfile {kill_cfg}")
    script = (f"mount -t tmpfs -o size=160k tmpfs {work / 'results'} && cd {tmp_path} && "
              f"{{ {cmd} > {tmp_path / 'out.txt'} 2>&1; echo $? > {tmp_path / 'rc'}; }}; "
              f"cp -a {work / 'results'} {copy}")  # the tmpfs vanishes with the namespace
    proc = run_in_namespace(script)
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "out.txt").read_text()
    assert int((tmp_path / "rc").read_text()) != 0
    # Snakemake names the failed training job and its log; the reason (ENOSPC) is the log's
    # last line, or - when even the log could not take it - in Snakemake's own output
    assert "Error in rule train" in out and f"log: results/logs/train/{EXP}/{RUN}.log" in out, out[-3000:]
    train_log = copy / "logs/train" / EXP / f"{RUN}.log"
    tail = train_log.read_text()[-2000:] if train_log.exists() else ""
    assert "No space left on device" in tail or "No space left on device" in out, (tail, out[-3000:])
    assert not (copy / "runs" / EXP / RUN / "status.json").exists()
    assert_nothing_half_written(copy)

    # space again: copy what survived back and rerun
    shutil.rmtree(work / "results")
    shutil.copytree(copy, work / "results", symlinks=True)
    snakemake(work, "--rerun-incomplete", configfiles=(kill_cfg,))
    assert_same_run(work, uninterrupted)


@needs_namespaces
def test_read_only_results_directory_is_a_clear_error(tmp_path, kill_cfg):
    work = tmp_path / "w"
    (work / "results").mkdir(parents=True)
    cmd = f"{SNAKEMAKE} -s {REPO / 'Snakefile'} -d {work} --cores 1 --configfile {kill_cfg}"
    script = (f"mount -t tmpfs -o size=1m,ro tmpfs {work / 'results'} && "
              f"{{ {cmd}; echo rc=$?; }}; ls -A {work / 'results'} | wc -l")
    proc = run_in_namespace(script)
    rc, n_files = proc.stdout.split()  # "rc=<snakemake's exit status>", then the count of entries in results/
    assert rc != "rc=0"
    assert "Cannot write results:" in proc.stderr and "read-only file system" in proc.stderr, proc.stderr[-3000:]
    assert n_files == "0"  # nothing written in results/


def test_results_path_blocked_by_a_file_is_a_clear_error(tmp_path, kill_cfg):
    """Where no mount is possible (and root ignores chmod): results/runs is a regular file,
    so no output folder can be created under it; the workflow says so before any job."""
    work = tmp_path / "w"
    (work / "results").mkdir(parents=True)
    (work / "results/runs").write_text("not a folder\n")
    proc = snakemake(work, configfiles=(kill_cfg,), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Cannot write results: results/runs exists but is not a folder" in out, out[-3000:]
    assert not (work / "results/checkpoints").exists() or not any((work / "results/checkpoints").rglob("*.pt"))
    assert (work / "results/runs").read_text() == "not a folder\n"  # the user's file is untouched


# ---------------------------------------------------------------- paths and wildcards

ESCAPES = [
    "results/runs/../../outside/model.pt",
    "results/runs/killme/../../../outside/model.pt",
    "results/runs/killme/a b/model.pt",
    "results/runs/killme/a;touch pwned/model.pt",
    "results/runs/killme/$(touch pwned)/model.pt",
    "results/metrics/breakeven/x/y/e1;id.json",
    "/tmp/outside/runs/killme/a_s0/model.pt",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_target_outside_results_or_with_shell_characters_matches_no_rule(tmp_path, kill_cfg, target):
    proc = snakemake(tmp_path, "-n", "--", target, configfiles=(kill_cfg,), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "MissingRuleException" in out or "No rule to produce" in out, out[-2000:]
    assert not (tmp_path / "pwned").exists() and not (tmp_path.parent / "outside").exists()
