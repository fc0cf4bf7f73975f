"""The SGD training loop: schedules, snapshots, resumable checkpoints, divergence.

One run is described by a plain dict (see ``repro.config.run_config``): seed, dataset,
model spec and the ``train`` section. Outputs, all in ``out_dir``:

    model.pt         final weights + the spec needed to rebuild the model
    history.csv      one row per epoch (epoch 0 = initialisation): step, lr, batch_size,
                     train/test loss and accuracy, mean mini-batch loss; bitwise
                     reproducible for a given config and seed on the CPU
    timing.csv       wall-clock seconds per epoch (kept apart so history.csv is exact)
    status.json      completed | diverged, why it stopped, final metrics, settings
    snapshots/       e<epoch>.pt at the configured (fractional) epochs

Determinism and resumption: the data order and augmentation of epoch e come from a
generator seeded with (seed, e), so a run resumed from the checkpoint at the end of
epoch e-1 replays epoch e exactly. Checkpoints live in ``ckpt_dir`` (not a declared
output, so Snakemake does not delete it when a job is killed) and are keyed by a hash
of the run config: a changed config never resumes from a stale checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from . import io
from .data import Dataset, augment
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


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), model in eval mode (mode restored)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        loss += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
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


def snapshot_steps(snaps: list[float], epoch: int, n_steps: int) -> dict[int, float]:
    """{step within epoch (1-based): snapshot epoch} for snapshots due in this epoch."""
    due = {}
    for e in snaps:
        if epoch - 1 < e <= epoch:
            i = round((e - (epoch - 1)) * n_steps)
            if i >= 1:
                due[i] = e
    return due


def run_epoch(model, opt, x, y, batch_size, gen, tr, step, threshold, on_step=None):
    """One pass over (x, y) in the order drawn from `gen`, dropping the last partial batch.

    Returns (mean mini-batch loss, global step, offending loss or None). A loss that is
    not finite or above `threshold` stops the epoch before its update (divergence).
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
        if on_step is not None:
            on_step(i + 1, step)
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
        io.save_torch(_model_payload(model, cfg, data, epoch=epoch_value, step=step, lr=lr, batch_size=bs),
                      out_dir / "snapshots" / f"{snapshot_name(epoch_value)}.pt")

    def eval_row(epoch: int, step: int, lr: float, bs: int, mb_loss: float) -> dict:
        train_loss, train_acc = evaluate(model, x_tr, y_tr, eval_bs)
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test, eval_bs)
        return dict(epoch=epoch, step=step, lr=lr, batch_size=bs, minibatch_loss=mb_loss,
                    train_loss=train_loss, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc)

    ckpt = _load_checkpoint(ckpt_dir, digest)
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
    if ckpt is not None and ckpt.get("stopped"):
        status, reason, start_epoch = ckpt["stopped"]["status"], ckpt["stopped"]["reason"], epochs + 1

    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        lr, bs = lr_at(tr, epoch - 1), batch_size_at(tr, epoch - 1)
        for group in opt.param_groups:
            group["lr"] = lr
        gen = _epoch_generator(seed, epoch)
        due = snapshot_steps(snaps, epoch, len(x_tr) // bs)

        def on_step(i, step_no, due=due, lr=lr, bs=bs):
            if i in due:
                save_snapshot(due[i], step_no, lr, bs)

        mean_loss, step, bad_loss = run_epoch(model, opt, x_tr, y_tr, bs, gen, tr, step, threshold, on_step)
        diverged = bad_loss is not None
        if diverged:
            status, reason = "diverged", f"loss {bad_loss:.4g} at epoch {epoch}, step {step}"
            log.warning("run diverged: %s", reason)
            break
        row = eval_row(epoch, step, lr, bs, mean_loss)
        history.append(row)
        timing.append(dict(epoch=epoch, wall_s=time.perf_counter() - t0))
        log.info("epoch %d/%d step %d lr %.4g bs %d train_loss %.4f train_acc %.4f test_acc %.4f",
                 epoch, epochs, step, lr, bs, row["train_loss"], row["train_acc"], row["test_acc"])
        stopped = None
        if not math.isfinite(row["train_loss"]) or row["train_loss"] > threshold:
            status, reason = "diverged", f"train loss {row['train_loss']:.4g} after epoch {epoch}"
            stopped = dict(status=status, reason=reason)
        elif target is not None and row["train_loss"] <= target:
            reason = f"reached train loss {row['train_loss']:.4g} <= {target} after epoch {epoch}"
            stopped = dict(status=status, reason=reason)
        if epoch % tr.get("checkpoint_every", 1) == 0 or stopped or epoch == epochs:
            _save_checkpoint(ckpt_dir, dict(model=model.state_dict(), optimizer=opt.state_dict(), epoch=epoch,
                                            step=step, history=history, timing=timing, config_hash=digest,
                                            stopped=stopped))
        if stopped:
            break

    final = history[-1]
    result = dict(status=status, stop_reason=reason, epochs_completed=final["epoch"], steps=step,
                  final=final, config=cfg, config_hash=digest, device=str(device), resumed_from_epoch=resumed_from)
    pd.DataFrame(history).to_csv(out_dir / "history.csv.tmp", index=False)
    (out_dir / "history.csv.tmp").replace(out_dir / "history.csv")
    pd.DataFrame(timing).to_csv(out_dir / "timing.csv", index=False)
    io.save_torch(_model_payload(model, cfg, data, epoch=final["epoch"], step=step, status=status),
                  out_dir / "model.pt")
    io.atomic_write_json(out_dir / "status.json", result)
    return result
