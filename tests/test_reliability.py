"""Faults injected: an interrupted workflow, a full disk, unwritable paths, corrupt or
malicious files, metrics that come out NaN; and the security rules (weights-only loading,
no shell, constrained wildcards). Workflow-level faults: tests/test_faults_workflow.py;
the list of faults and outcomes: docs/RELIABILITY.md."""

import ast
import errno
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
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


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """mkstemp creates 0600 files; an artifact must be readable like any file the user writes."""
    out = tmp_path / "claims.md"
    io.atomic_write_text(out, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


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


def test_crash_between_data_and_checksum_never_leaves_a_trusted_artifact(tmp_path, monkeypatch):
    """save_torch writes the data, then its checksum: a full disk at the second write leaves
    a file that load_torch refuses (missing or stale checksum), never one it trusts."""
    target = tmp_path / "e1.pt"
    calls = []

    def second_fails(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", second_fails)
    with pytest.raises(OSError, match="No space left"):
        io.save_torch({"w": torch.ones(3)}, target)
    with pytest.raises(io.CorruptArtifact, match="checksum file e1.pt.sha256 is missing"):
        io.load_torch(target)
    # an overwrite that dies the same way leaves the old checksum beside new bytes: a mismatch
    monkeypatch.undo()
    io.save_torch({"w": torch.ones(3)}, target)
    calls.clear()
    monkeypatch.setattr(os, "fsync", second_fails)
    with pytest.raises(OSError):
        io.save_torch({"w": torch.zeros(3)}, target)
    with pytest.raises(io.CorruptArtifact, match="checksum mismatch"):
        io.load_torch(target)
    assert not list(tmp_path.glob(".*.tmp"))


def test_writing_under_a_path_blocked_by_a_file_fails_naming_the_path(tmp_path):
    """An unwritable results folder as root (where chmod does not stop root): a path
    component is a regular file, so every write under it fails."""
    (tmp_path / "results").write_text("a file, not a folder\n")
    target = tmp_path / "results" / "runs" / "e" / "r" / "model.pt"
    for write in (lambda: io.save_torch({"w": torch.ones(2)}, target),
                  lambda: io.atomic_write_json(target.with_name("status.json"), {"status": "completed"})):
        with pytest.raises((NotADirectoryError, FileExistsError)) as info:
            write()
        assert "results" in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    assert (tmp_path / "results").read_text() == "a file, not a folder\n"


# ---------------------------------------------------------------- resuming after Snakemake cleaned up

RESUME_CFG = dict(seed=1, dataset="digits", model=dict(name="mlp", depth=1, width=16),
                  train=dict(epochs=3, batch_size=32, lr=0.05, momentum=0.9))
RESUME_SNAPS = [0, 0.5, 1, 3]


def _snapshot_states(out):
    return {p.name: io.load_torch(p)["state_dict"] for p in sorted((out / "snapshots").glob("*.pt"))}


def _same_states(a, b):
    return a.keys() == b.keys() and all(all(torch.equal(a[n][k], b[n][k]) for k in a[n]) for n in a)


def test_resumed_run_puts_back_the_snapshots_snakemake_deleted(tmp_path, digits, one_thread):
    """Snakemake empties a failed job's declared outputs (snapshots/ too) before the retry;
    the resumed run restores the snapshots taken before its checkpoint (from the checkpoint
    folder), so downstream rules never see a snapshot 'missing' that was taken."""
    import shutil

    from repro.train import train_run

    train_run(RESUME_CFG, digits, tmp_path / "ref/out", tmp_path / "ref/ckpt", snapshot_epochs=RESUME_SNAPS)
    work = tmp_path / "w"
    train_run(RESUME_CFG, digits, work / "out", work / "ckpt", snapshot_epochs=RESUME_SNAPS)
    for name in ("last.pt", "last.pt.sha256"):  # as if killed in epoch 3: the newest checkpoint is epoch 2
        (work / "ckpt" / name).unlink()
    (work / "ckpt/previous.pt").rename(work / "ckpt/last.pt")
    (work / "ckpt/previous.pt.sha256").rename(work / "ckpt/last.pt.sha256")
    shutil.rmtree(work / "out")  # what Snakemake does to a failed job's outputs
    result = train_run(RESUME_CFG, digits, work / "out", work / "ckpt", snapshot_epochs=RESUME_SNAPS)
    assert result["resumed_from_epoch"] == 2
    assert sorted(_snapshot_states(work / "out")) == ["e0.5.pt", "e0.pt", "e1.pt", "e3.pt"]
    assert _same_states(_snapshot_states(work / "out"), _snapshot_states(tmp_path / "ref/out"))
    assert (work / "out/history.csv").read_bytes() == (tmp_path / "ref/out/history.csv").read_bytes()


def test_resume_with_a_corrupt_kept_snapshot_starts_over_with_a_warning(tmp_path, digits, one_thread, caplog):
    from repro.train import train_run

    train_run(RESUME_CFG, digits, tmp_path / "ref/out", tmp_path / "ref/ckpt", snapshot_epochs=RESUME_SNAPS)
    work = tmp_path / "w"
    train_run(RESUME_CFG, digits, work / "out", work / "ckpt", snapshot_epochs=RESUME_SNAPS)
    kept = work / "ckpt/snapshots/e0.5.pt"
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (work / "out/snapshots/e0.5.pt").unlink()  # the published link, as Snakemake would remove it
    kept.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        result = train_run(RESUME_CFG, digits, work / "out", work / "ckpt", snapshot_epochs=RESUME_SNAPS)
    assert "not resuming from the checkpoint" in caplog.text and "e0.5.pt: checksum mismatch" in caplog.text
    assert result["resumed_from_epoch"] is None  # trained again from the start: the only way to a good e0.5
    assert _same_states(_snapshot_states(work / "out"), _snapshot_states(tmp_path / "ref/out"))
    io.load_torch(work / "ckpt/snapshots/e0.5.pt")  # the kept copy is good again


# ---------------------------------------------------------------- metrics that come out NaN


def nan_model(spec, data):
    """A saved model whose weights are all NaN (what a blown-up run's weights look like)."""
    from repro.models import build_model

    torch.manual_seed(0)
    model = build_model(spec, data.input_shape, data.num_classes)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return model


@pytest.fixture(scope="module")
def digits():
    from repro.data import load_dataset

    return load_dataset("digits")


def test_nan_block_metrics_are_missing_with_a_reason_not_numbers(tmp_path, digits, one_thread):
    from repro.iterative import measure, plan
    from repro.train import _model_payload

    spec = dict(name="resnet", widths=[4, 8], blocks_per_stage=2)
    cfg = dict(experiment="e", run="r_s0", seed=0, dataset="digits", model=spec, train=dict(epochs=1, lr=0.1,
                                                                                           batch_size=64))
    io.save_torch(_model_payload(nan_model(spec, digits), cfg, digits), tmp_path / "model.pt")
    io.atomic_write_json(tmp_path / "status.json", dict(status="completed", stop_reason="max_epochs"))
    settings = plan.settings_for({"max_examples": 60, "batch_size": 60, "n_shuffles": 1,
                                "borderline": {"last_blocks": 2, "threshold": 0.1},
                                "unroll": {"steps": 1, "scales": [1.0]}})
    outputs = {name: str(tmp_path / f"{name}.csv") for name in plan.MODEL_TABLES}
    measure.run_model_metrics(tmp_path / "model.pt", tmp_path / "status.json", cfg, settings, outputs)
    for name, path in outputs.items():
        frame = pd.read_csv(path)
        nan = frame[frame.value.isna()]
        assert len(nan) > 0, name
        assert nan.note.notna().all() and (nan.note.astype(str).str.len() > 0).all(), name
        # losses, cosines and norms of a NaN network are never numbers
        numeric = frame[frame.metric.isin(["loss", "cosine", "norm_ratio", "f_norm", "h_norm", "grad_norm",
                                           "entropy"])]
        assert numeric.value.isna().all(), (name, numeric[numeric.value.notna()].head())


def test_nan_sharpness_of_a_completed_run_is_missing_with_a_reason(tmp_path, digits, one_thread):
    from repro.minima import measure as mm
    from repro.minima import plan as mp
    from repro.minima import tables as mt
    from repro.train import _model_payload

    spec = dict(name="mlp", depth=1, width=8)
    cfg = dict(seed=0, dataset="digits", model=spec, train=dict(lr=0.1, batch_size=32, epochs=5,
                                                                stop_at_train_loss=0.5))
    run = tmp_path / "runs" / "minima_g" / "a_s0"
    run.mkdir(parents=True)
    io.save_torch(_model_payload(nan_model(spec, digits), cfg, digits), run / "model.pt")
    final = dict(train_loss=0.4, train_acc=0.9, test_loss=0.5, test_acc=0.85)
    (run / "status.json").write_text(json.dumps(dict(status="completed", stop_reason="reached train loss",
                                                     epochs_completed=3, steps=100, final=final, config=cfg)))
    settings = mp.sharpness_settings({"sharpness": {"n_examples": 64, "n_probes": 2, "tol": 0.01}}, {})
    [out] = mm.sharpness_job([run / "model.pt"], [run / "status.json"], [mp.data_spec(cfg)], tmp_path / "s.json",
                             settings)
    [saved] = json.loads((tmp_path / "s.json").read_text())
    for rec in (out, saved):
        assert rec["sharpness"]["lambda_max"] is None and rec["sharpness"]["hessian_trace"] is None
        assert "non-finite" in rec["note"]
    table = mt.runs_table([saved], {"minima_g": {"role": "sharpness"}})
    lam = table[table.metric == "lambda_max"]
    assert lam.value.isna().all() and lam.note.str.contains("non-finite").all()


def test_nan_claim_statistic_is_inconclusive_never_holds():
    from repro.claims import Claim, compare

    assert compare(math.nan, "<", 0.0) == "inconclusive"
    assert compare(None, ">=", 1.0) == "inconclusive"
    with pytest.raises(ValueError):
        Claim("X1", "A", "s", "stat", "< 0", math.nan, "maybe")


# ---------------------------------------------------------------- an interrupted workflow


@pytest.mark.slow
def test_sigint_mid_workflow_then_rerun_redoes_only_incomplete_work(tmp_path):
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    exp = cfg["experiments"]["tiny"]
    exp["train"].update(epochs=10, batch_size=8)
    exp["grid"] = {"train.lr": [0.05, 0.1, 0.2]}
    cfg_file = tmp_path / "slow.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    ref = tmp_path / "ref"
    snakemake(ref, configfiles=(cfg_file,))

    work = tmp_path / "work"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "1", "--configfile", str(cfg_file)]
    # SIGINT back to its default in the child: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then keeps ignoring it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    runs = work / "results" / "runs" / "tiny"
    logs = work / "results" / "logs" / "train" / "tiny"
    done = re.compile(r"Finished jobid: \d+ \(Rule: train\)")

    # Deterministic moment: Snakemake has *finished* one training (outputs checked, metadata
    # written: it prints "Finished jobid") and, with one core, only then starts the next
    # one, whose log file appears. A run's status.json alone is not enough: the script
    # writes it before it exits, and Snakemake records the job complete only afterwards.
    deadline = time.time() + 600
    while time.time() < deadline and not (any(done.search(line) for line in list(lines))
                                          and len(list(logs.glob("*.log"))) >= 2):
        assert proc.poll() is None, "workflow ended before it could be interrupted:\n" + "".join(lines)[-3000:]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    finished = {p.parent.name: p.stat().st_mtime for p in runs.glob("*/status.json")}
    assert 1 <= len(finished) < 3, finished

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
        a = io.load_torch(runs / run / "model.pt")["state_dict"]
        b = io.load_torch(ref / "results/runs/tiny" / run / "model.pt")["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- security


def _python_files():
    for folder in ("src", "scripts", "benchmarks"):
        yield from (REPO / folder).rglob("*.py")


def test_every_torch_load_is_weights_only():
    """No torch.load call in the library, scripts or benchmarks can unpickle arbitrary objects."""
    calls = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                weights_only = [k for k in node.keywords if k.arg == "weights_only"]
                calls.append((path.relative_to(REPO), node.lineno))
                assert weights_only and isinstance(weights_only[0].value, ast.Constant) \
                    and weights_only[0].value.value is True, f"{path}:{node.lineno} torch.load without weights_only=True"
    assert Path("src/repro/io.py") in {p for p, _ in calls}  # the one loader is found


def test_no_rule_runs_a_shell_command_and_no_code_spawns_one():
    """User strings (run names, paths, config values) can reach no shell: every rule is a
    script: rule, and neither scripts nor the library start processes or evaluate strings."""
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.match(r"\s*(shell|run|wrapper|notebook|cwl)\s*:", line), f"{path.name}:{n}: {line}"
    banned = {"system", "popen", "Popen", "run", "call", "check_call", "check_output", "getoutput", "spawnl"}
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not {"subprocess", "pty", "commands"} & set(names), f"{path}:{node.lineno}"
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "os":
                    assert f.attr not in banned, f"{path}:{node.lineno}: os.{f.attr}"
                if isinstance(f, ast.Name):
                    assert f.id not in ("eval", "exec"), f"{path}:{node.lineno}: {f.id}()"


def _constraints(text: str) -> dict[str, str]:
    """name -> regex of every `wildcard_constraints:` entry (raw strings, or "|".join(...))."""
    out = {}
    for block in re.finditer(r"wildcard_constraints:\n((?:[ \t]+\w+=.*\n)+)", text):
        for name, value in re.findall(r"^\s+(\w+)=(.*?),?\s*$", block.group(1), re.M):
            out[name] = value
    return out


def test_every_output_wildcard_is_constrained_so_no_path_escapes_results():
    texts = {p.name: p.read_text() for p in sorted((REPO / "rules").glob("*.smk"))}
    constraints = {}
    for text in texts.values():
        constraints.update(_constraints(text))
    # free-text wildcards: the same pattern, which admits no '/', no '..' component, no spaces or shell characters
    free = {k: v for k, v in constraints.items() if k in ("experiment", "run", "pair")}
    assert {"experiment", "run"} <= set(free)
    for name, value in free.items():
        pattern = re.compile(ast.literal_eval(value))
        for good in ("lr0.1_bs128_s0", "a+b-c.d", "e1"):
            assert pattern.fullmatch(good), (name, good)
        for bad in ("..", ".", "a/b", "../x", "a b", "a;b", "$(id)", "`id`", "a|b", "", "-rf", "~", "*"):
            assert not pattern.fullmatch(bad), (name, bad)
    if "snapshot" in constraints:
        snapshot = re.compile(ast.literal_eval(constraints["snapshot"]))
        assert snapshot.fullmatch("e0.25") and not snapshot.fullmatch("e1/../x") and not snapshot.fullmatch("x")
    # every {{wildcard}} in a rule's output (outside expand()) has a constraint
    found = set()
    for fname, text in texts.items():
        for rule in re.split(r"\nrule ", text)[1:]:
            out = re.search(r"\n    output:\n(.*?)\n    \w+:", rule, re.S)
            if not out:
                continue
            lines = [ln for ln in out.group(1).splitlines() if "expand(" not in ln]
            for w in re.findall(r"\{\{(\w+)\}\}", "\n".join(lines)):
                found.add(w)
                assert w in constraints, f"{fname}: rule {rule.split(':')[0]}: wildcard {w} unconstrained"
    assert found >= {"experiment", "run"}  # the scan saw the rules' wildcards
