"""The SGD training loop: schedules, snapshots, resumable checkpoints, divergence.

One run is described by a plain dict (see ``repro.config.run_config``): seed, dataset,
model spec and the ``train`` section. Outputs, all in ``out_dir``:

    model.pt         final weights + the spec needed to rebuild the model
    history.csv      one row per epoch (epoch 0 = initialisation): step, lr, batch_size,
                     train/test loss and accuracy, mean mini-batch loss; bitwise
                     reproducible for a given config and seed on the CPU. A run stopped
                     inside an epoch (below) ends with a row at a fractional epoch
                     (epoch - 1 + steps done / steps per epoch)
    timing.csv       wall-clock seconds per epoch (kept apart so history.csv is exact)
    status.json      completed | diverged, why it stopped, final metrics, settings
    snapshots/       e<epoch>.pt at the configured (fractional) epochs; a schedule by global
                     step arrives as epochs step / steps per epoch (repro.config.snapshot_epochs)
                     and is saved right after that step (snapshot_steps rounds it back exactly)

Matched-loss stop: with ``train.stop_at_train_loss`` the full train loss (eval mode, the
whole training set) is checked at the end of every epoch and, with
``train.stop_checks_per_epoch = m > 1``, also after steps round(j * n / m), j = 1..m-1, of
an epoch of n steps; the run stops at the first check <= the target. status.json's
``stop`` records where (epoch, step, train loss) and the previous check's loss. The checks
read the model only (no random numbers, BN running statistics untouched), so they change
neither the trajectory nor its determinism.

Determinism and resumption: the data order and augmentation of epoch e come from a
generator seeded with (seed, e), so a run resumed from the checkpoint at the end of
epoch e-1 replays epoch e exactly. Checkpoints live in ``ckpt_dir`` (not a declared
output, so Snakemake does not delete it when a job is killed) and are keyed by a hash
of the run config: a changed config never resumes from a stale checkpoint. Snapshots are
written to ``ckpt_dir/snapshots`` and hard-linked (copied across file systems) into
``out_dir/snapshots``: Snakemake empties a job's declared output folder before it reruns
the job, so a resumed run puts back the snapshots taken before its checkpoint (checksums
verified; if one is missing or corrupt the run starts over instead of resuming).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from . import io
from .data import Dataset, augment, load_run_dataset
from .models import build_model
from .schedules import batch_size_at, lr_at

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def snapshot_name(epoch: float) -> str:
    return f"e{epoch:g}"


# logits are computed this many examples per forward: on the CPU one forward of 1,000
# SimpleCNN images ran at ~2/3 the speed of four of 250 (activations that fit the cache);
# an example's logits do not depend on the batch it is in (eval mode; checked bit for bit
# on the default run's models), so the loss groups of `batch_size` keep their values
FORWARD_CHUNK = 250


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 1000, chunk: int = FORWARD_CHUNK) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), model in eval mode (mode restored): the
    loss summed per group of `batch_size` examples, then over groups."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xg, yg = x[i:i + batch_size], y[i:i + batch_size]
        logits = torch.cat([model(xg[j:j + chunk]) for j in range(0, len(xg), chunk)])
        loss += F.cross_entropy(logits, yg, reduction="sum").item()
        correct += (logits.argmax(1) == yg).sum().item()
    model.train(was_training)
    return loss / len(x), correct / len(x)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _model_payload(model, cfg: dict, data: Dataset, **meta) -> dict:
    return {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model": cfg["model"], "input_shape": list(data.input_shape),
            "num_classes": data.num_classes, **meta}


def load_model(path, device="cpu"):
    """Rebuild a model saved as model.pt or a snapshot; returns (model in eval mode, payload)."""
    payload = io.load_torch(path, map_location=device)
    model = build_model(payload["model"], tuple(payload["input_shape"]), payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


def _load_checkpoint(ckpt_dir: Path, digest: str):
    """The newest good checkpoint for this config, or None (with a warning if any was bad)."""
    for name in ("last.pt", "previous.pt"):
        path = ckpt_dir / name
        if not path.exists():
            continue
        try:
            ckpt = io.load_torch(path)
        except io.CorruptArtifact as exc:
            log.warning("ignoring checkpoint: %s", exc)
            continue
        if ckpt.get("config_hash") != digest:
            log.warning("ignoring checkpoint %s: written for another configuration", path)
            continue
        return ckpt
    return None


def _save_checkpoint(ckpt_dir: Path, state: dict) -> None:
    last, previous = ckpt_dir / "last.pt", ckpt_dir / "previous.pt"
    if last.exists():  # keep one older checkpoint in case this write is interrupted
        last.replace(previous)
        sidecar, previous_sidecar = Path(f"{last}.sha256"), Path(f"{previous}.sha256")
        if sidecar.exists():
            sidecar.replace(previous_sidecar)
        else:  # killed between writing a checkpoint and its checksum: unverifiable, never used
            previous_sidecar.unlink(missing_ok=True)
    io.save_torch(state, last)


def _publish(src: Path, dst: Path) -> None:
    """Put `src` and its checksum sidecar at `dst`: a hard link, or a copy across file systems."""
    for a, b in ((src, dst), (Path(f"{src}.sha256"), Path(f"{dst}.sha256"))):
        b.unlink(missing_ok=True)
        try:
            os.link(a, b)
        except OSError:
            io.atomic_write_bytes(b, a.read_bytes())


def _restore_snapshots(ckpt_dir: Path, out_dir: Path, snaps, upto: float) -> str | None:
    """Publish the kept snapshots up to epoch `upto` into out_dir; the first problem, or None."""
    due = [e for e in snaps if e <= upto]
    for e in due:
        try:
            io.verify_checksum(ckpt_dir / "snapshots" / f"{snapshot_name(e)}.pt")
        except io.CorruptArtifact as exc:
            return str(exc)
    for e in due:
        name = f"{snapshot_name(e)}.pt"
        _publish(ckpt_dir / "snapshots" / name, out_dir / "snapshots" / name)
    return None


def snapshot_steps(snaps: list[float], epoch: int, n_steps: int) -> dict[int, float]:
    """{step within epoch (1-based): snapshot epoch} for snapshots due in this epoch."""
    due = {}
    for e in snaps:
        if epoch - 1 < e <= epoch:
            i = round((e - (epoch - 1)) * n_steps)
            if i >= 1:
                due[i] = e
    return due


def stop_check_steps(n_steps: int, checks_per_epoch: int) -> list[int]:
    """Steps (1-based, within an epoch of n_steps) after which the stop check runs inside the
    epoch: round(j * n / m) for j = 1..m-1, without duplicates or the epoch end (which is
    always checked)."""
    m = max(int(checks_per_epoch or 1), 1)
    return sorted({round(j * n_steps / m) for j in range(1, m)} - {0, n_steps})


def _epochs_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame whose `epoch` column prints whole epochs as integers (1, not 1.0)
    and a fractional stop as a decimal (5.25)."""
    frame = pd.DataFrame(rows)
    if "epoch" in frame and len(frame):
        frame["epoch"] = pd.Series([int(e) if float(e).is_integer() else float(e) for e in frame["epoch"]],
                                   dtype=object, index=frame.index)
    return frame


def run_epoch(model, opt, x, y, batch_size, gen, tr, step, threshold, on_step=None):
    """One pass over (x, y) in the order drawn from `gen`, dropping the last partial batch.

    Returns (mean mini-batch loss, global step, offending loss or None). A loss that is
    not finite or above `threshold` stops the epoch before its update (divergence).
    `on_step(i, step)` runs after update i (1-based); a true return value ends the epoch
    there (the matched-loss stop).
    """
    order = torch.randperm(len(x), generator=gen).to(x.device)
    n_steps = len(x) // batch_size
    model.train()
    total = 0.0
    for i in range(n_steps):
        idx = order[i * batch_size:(i + 1) * batch_size]
        xb = augment(x[idx], gen, tr.get("translate", 0), tr.get("flip", False))
        loss = F.cross_entropy(model(xb), y[idx])
        value = loss.item()
        if not math.isfinite(value) or value > threshold:
            return total / max(i, 1), step, value
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        total += value
        if on_step is not None and on_step(i + 1, step):
            return total / (i + 1), step, None
    return total / max(n_steps, 1), step, None


def train_run(cfg: dict, data: Dataset, out_dir, ckpt_dir, device="cpu", snapshot_epochs=()) -> dict:
    """Train one run to completion (or divergence / target loss); returns status.json's dict."""
    out_dir, ckpt_dir = Path(out_dir), Path(ckpt_dir)
    (out_dir / "snapshots").mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    tr = cfg["train"]
    seed, epochs = cfg["seed"], tr["epochs"]
    digest = config_hash(cfg)

    torch.manual_seed(seed)
    model = build_model(cfg["model"], data.input_shape, data.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=tr["lr"], momentum=tr.get("momentum", 0.0),
                          weight_decay=tr.get("weight_decay", 0.0), nesterov=tr.get("nesterov", False))
    data = data.to(device)
    x_tr, y_tr = data.x_train, data.y_train
    eval_bs = tr.get("eval_batch_size", 1000)
    snaps = sorted(set(float(e) for e in snapshot_epochs))

    def save_snapshot(epoch_value: float, step: int, lr: float, bs: int):
        name = f"{snapshot_name(epoch_value)}.pt"  # kept beside the checkpoints, linked into out_dir
        io.save_torch(_model_payload(model, cfg, data, epoch=epoch_value, step=step, lr=lr, batch_size=bs),
                      ckpt_dir / "snapshots" / name)
        _publish(ckpt_dir / "snapshots" / name, out_dir / "snapshots" / name)

    def eval_row(epoch: float, step: int, lr: float, bs: int, mb_loss: float, train=None) -> dict:
        train_loss, train_acc = train if train is not None else evaluate(model, x_tr, y_tr, eval_bs)
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test, eval_bs)
        return dict(epoch=epoch, step=step, lr=lr, batch_size=bs, minibatch_loss=mb_loss,
                    train_loss=train_loss, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc)

    ckpt = _load_checkpoint(ckpt_dir, digest)
    if ckpt is not None:
        # up to the last recorded epoch: a matched-loss stop inside an epoch took no later snapshot
        problem = _restore_snapshots(ckpt_dir, out_dir, snaps, float(ckpt["history"][-1]["epoch"]))
        if problem is not None:
            log.warning("not resuming from the checkpoint after epoch %d: %s; training from the start",
                        ckpt["epoch"], problem)
            ckpt = None
    if ckpt is None:  # a fresh start: no snapshot of an earlier attempt or configuration survives
        for old in (ckpt_dir / "snapshots").glob("*"):
            old.unlink()
    (ckpt_dir / "snapshots").mkdir(parents=True, exist_ok=True)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history, timing, start_epoch, step = ckpt["history"], ckpt["timing"], ckpt["epoch"] + 1, ckpt["step"]
        resumed_from = ckpt["epoch"]
        log.info("resuming from the checkpoint after epoch %d (step %d)", ckpt["epoch"], step)
    else:
        resumed_from = None
        history, timing, start_epoch, step = [], [], 1, 0
        history.append(eval_row(0, 0, lr_at(tr, 0), batch_size_at(tr, 0), math.nan))
        timing.append(dict(epoch=0, wall_s=0.0))
        if 0.0 in snaps:
            save_snapshot(0.0, 0, lr_at(tr, 0), batch_size_at(tr, 0))

    status, reason = "completed", "max_epochs"
    threshold = tr.get("divergence_loss", 100.0)
    target = tr.get("stop_at_train_loss")
    checks_per_epoch = tr.get("stop_checks_per_epoch", 1) if target is not None else 1
    # the latest full-train-loss check: the bracket of a matched-loss stop
    last_check = ckpt.get("last_check") if ckpt is not None else None
    stop_info = None
    if ckpt is not None and ckpt.get("stopped"):
        status, reason, start_epoch = ckpt["stopped"]["status"], ckpt["stopped"]["reason"], epochs + 1
        stop_info = ckpt["stopped"].get("stop")

    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        lr, bs = lr_at(tr, epoch - 1), batch_size_at(tr, epoch - 1)
        for group in opt.param_groups:
            group["lr"] = lr
        gen = _epoch_generator(seed, epoch)
        n_steps = len(x_tr) // bs
        due = snapshot_steps(snaps, epoch, n_steps)
        checks = set(stop_check_steps(n_steps, checks_per_epoch))
        inner = {}  # a stop inside this epoch: {"i": step within epoch, "train": (loss, acc)}

        def on_step(i, step_no, due=due, lr=lr, bs=bs, checks=checks, inner=inner, epoch=epoch):
            nonlocal last_check
            if i in due:
                save_snapshot(due[i], step_no, lr, bs)
            if i in checks:
                loss, acc = evaluate(model, x_tr, y_tr, eval_bs)
                if math.isfinite(loss) and loss <= target:
                    inner.update(i=i, train=(loss, acc))
                    return True
                last_check = dict(epoch=epoch - 1 + i / n_steps, step=step_no, train_loss=loss)
            return False

        mean_loss, step, bad_loss = run_epoch(model, opt, x_tr, y_tr, bs, gen, tr, step, threshold, on_step)
        diverged = bad_loss is not None
        if diverged:
            status, reason = "diverged", f"loss {bad_loss:.4g} at epoch {epoch}, step {step}"
            log.warning("run diverged: %s", reason)
            break
        epoch_value = epoch - 1 + inner["i"] / n_steps if inner else epoch
        row = eval_row(epoch_value, step, lr, bs, mean_loss, inner.get("train"))
        history.append(row)
        timing.append(dict(epoch=epoch_value, wall_s=time.perf_counter() - t0))
        epoch_s = timing[-1]["wall_s"]
        elapsed_s = sum(t["wall_s"] for t in timing)
        log.info("epoch %g/%d step %d lr %.4g bs %d train_loss %.4f train_acc %.4f test_loss %.4f "
                 "test_acc %.4f | %.1fs this epoch, %.0fs elapsed, ~%.0fs left at most",
                 epoch_value, epochs, step, lr, bs, row["train_loss"], row["train_acc"], row["test_loss"],
                 row["test_acc"], epoch_s, elapsed_s, epoch_s * (epochs - epoch))
        stopped = None
        if not math.isfinite(row["train_loss"]) or row["train_loss"] > threshold:
            status, reason = "diverged", f"train loss {row['train_loss']:.4g} after epoch {epoch}"
            stopped = dict(status=status, reason=reason)
        elif target is not None and row["train_loss"] <= target:
            where = f"epoch {epoch_value:g} (step {step}" + (f", {inner['i']} of {n_steps} in epoch {epoch})"
                                                              if inner else ")")
            reason = f"reached train loss {row['train_loss']:.4g} <= {target} at {where}"
            stop_info = dict(epoch=epoch_value, step=step, train_loss=row["train_loss"], target=target,
                             checks_per_epoch=checks_per_epoch, previous_check=last_check)
            stopped = dict(status=status, reason=reason, stop=stop_info)
        elif target is not None:
            last_check = dict(epoch=epoch, step=step, train_loss=row["train_loss"])
        if epoch % tr.get("checkpoint_every", 1) == 0 or stopped or epoch == epochs:
            _save_checkpoint(ckpt_dir, dict(model=model.state_dict(), optimizer=opt.state_dict(), epoch=epoch,
                                            step=step, history=history, timing=timing, config_hash=digest,
                                            stopped=stopped, last_check=last_check))
        if stopped:
            break

    final = history[-1]
    result = dict(status=status, stop_reason=reason, epochs_completed=final["epoch"], steps=step,
                  final=final, config=cfg, config_hash=digest, device=str(device), resumed_from_epoch=resumed_from)
    if stop_info is not None:
        result["stop"] = stop_info
    _epochs_frame(history).to_csv(out_dir / "history.csv.tmp", index=False)
    (out_dir / "history.csv.tmp").replace(out_dir / "history.csv")
    _epochs_frame(timing).to_csv(out_dir / "timing.csv", index=False)
    io.save_torch(_model_payload(model, cfg, data, epoch=final["epoch"], step=step, status=status),
                  out_dir / "model.pt")
    io.atomic_write_json(out_dir / "status.json", result)
    return result


# what repro.data.load_run_dataset reads of a run config: runs that agree on these share one load
DATA_KEYS = ("dataset", "test_fraction", "train_size", "label_noise", "label_noise_seed")


def train_runs(jobs: list[dict], data_root="data", download=False, device="cpu") -> list[dict]:
    """Train several runs one after another in this process (a batched job,
    repro.train_batches); returns their status dicts.

    Each job is ``dict(run, spec, out_dir, ckpt_dir, snapshot_epochs)``, the arguments of
    :func:`train_run`. The runs of a batch give the bytes they give alone (tests/test_train.py,
    tests/test_workflow.py), because no state carries over from one run to the next: torch's
    global generator (CPU and CUDA) is re-seeded by train_run before the model is built; data
    order and augmentation draw from per-epoch generators; numpy's and Python's global
    generators are not used (splits and label noise have their own seeded ones); the thread
    count is the job's throughout; cuDNN autotuning is never switched on. The data set is
    loaded once per distinct data spec (training indexes and augments copies, never writes
    it). A run that fails fails the job; its retry resumes every run from its own checkpoint,
    so the runs finished before it are only rewritten, not trained again.
    """
    loaded, results = {}, []
    for n, job in enumerate(jobs, 1):
        spec = job["spec"]
        key = repr([spec.get(k) for k in DATA_KEYS])
        if key not in loaded:
            loaded[key] = load_run_dataset(spec, data_root, download)
        log.info("run %s (%d of %d in this job)", job["run"], n, len(jobs))
        result = train_run(spec, loaded[key], out_dir=job["out_dir"], ckpt_dir=job["ckpt_dir"], device=device,
                           snapshot_epochs=job["snapshot_epochs"])
        log.info("run %s finished: %s (%s)", job["run"], result["status"], result["stop_reason"])
        results.append(result)
    return results
