"""Paper A measurement jobs (torch): final models and snapshots of one run -> tidy frames.

The block measurements are in :mod:`repro.blocks`; functions here load a run, choose the
examples (a seeded subset of each split), call :mod:`repro.blocks` and lay the results
out in long tables (the layouts are listed in :mod:`repro.iterative.tables`).
Rules iterative_model_metrics and iterative_snapshot_metrics call
:func:`run_model_metrics` and :func:`run_snapshot_metrics`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import blocks
from ..config import INPUT_SHAPES, NUM_CLASSES
from ..data import load_dataset
from ..io import atomic_write_text
from ..models import build_model, count_parameters
from ..train import load_model, snapshot_name
from .plan import MODEL_TABLES, SNAPSHOT_TABLES, architecture_of, run_ids
from .tables import mark_missing, read_status, skipped, with_ids

# ---------------------------------------------------------------- run facts


def count_params(run_cfg: dict) -> int:
    """Trainable parameters of the run's model, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = build_model(run_cfg["model"], INPUT_SHAPES[run_cfg["dataset"]],
                            NUM_CLASSES.get(run_cfg["dataset"], 10))
    return count_parameters(model)


def run_record(run_cfg: dict) -> dict:
    """What the aggregation needs to know about a run. Computed in the tables job, not at
    DAG build: counting a model's parameters builds it, too slow at paper scale."""
    return dict(run_ids(run_cfg), dataset=run_cfg["dataset"], architecture=architecture_of(run_cfg["model"]),
                params=count_params(run_cfg), epochs=run_cfg["train"]["epochs"])


# ---------------------------------------------------------------- data


def load_run_data(run_cfg: dict, data_root="data", download=False):
    """The run's dataset, split exactly as training split it."""
    return load_dataset(run_cfg["dataset"], data_root, download, test_fraction=run_cfg.get("test_fraction", 0.2),
                        train_size=run_cfg.get("train_size"))


def subset(x: torch.Tensor, y: torch.Tensor, max_examples: int | None, seed: int = 0):
    """A seeded random subset of at most `max_examples` examples (kept in index order)."""
    if max_examples is None or max_examples >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:max_examples].sort().values
    return x[idx], y[idx]


def make_batches(x, y, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def split_batches(data, settings: dict) -> dict[str, list]:
    """{"train": batches, "test": batches} over the configured subset of each split."""
    out = {}
    for split in ("train", "test"):
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        x, y = subset(x, y, settings["max_examples"], settings["subset_seed"])
        out[split] = make_batches(x, y, settings["batch_size"])
    return out


# ---------------------------------------------------------------- final model


def block_frame(model, batches: dict[str, list], splits) -> pd.DataFrame:
    """Long table of block_statistics per split."""
    frames = []
    for split in splits:
        stats = blocks.block_statistics(model, batches[split])
        long = stats.melt(id_vars=["block", "stage", "position", "n_examples", "n_cosine"],
                          value_vars=["cosine", "cosine_out", "norm_ratio", "f_norm", "h_norm", "grad_norm"],
                          var_name="metric", value_name="value")
        long.insert(0, "split", split)
        long["note"] = ""
        undefined = ((long["metric"] == "cosine") & (long["n_cosine"] == 0)) | (
            (long["metric"] == "cosine_out") & long["value"].isna())
        long.loc[undefined, "note"] = "cosine undefined: zero gradient or residual for every example"
        frames.append(mark_missing(long, "non-finite activations or gradients"))
    return pd.concat(frames, ignore_index=True)


def drop_frame(model, batches: list, n_shuffles: int, seed: int = 0, split: str = "test") -> pd.DataFrame:
    drop = blocks.drop_block_results(model, batches)
    drop["kind"] = np.where(drop["block"] < 0, "intact", "drop")
    drop["shuffle"] = -1
    frames = [drop]
    if n_shuffles:
        shuf = blocks.shuffle_results(model, batches, n_shuffles, seed)
        shuf = shuf.assign(kind="shuffle", block=-1, stage=-1, position=-1).drop(columns="order")
        frames.append(shuf)
    wide = pd.concat(frames, ignore_index=True)
    long = wide.melt(id_vars=["kind", "block", "stage", "position", "shuffle", "n_examples"],
                     value_vars=["accuracy", "loss"], var_name="metric", value_name="value")
    long.insert(0, "split", split)
    return mark_missing(long, "non-finite network output")


def unroll_frame(model, batches: dict[str, list], settings: dict, borderline: torch.Tensor) -> pd.DataFrame:
    """Unrolled last block: loss/accuracy/entropy/‖h‖ per step for train (all), test (all,
    borderline examples as defined on the test set's last-stage heads)."""
    rows = []
    steps = settings["unroll"]["steps"]
    for scale in settings["unroll"]["scales"]:
        for split in ("train", "test"):
            logits, norms, y = blocks.unroll_logits(model, batches[split], steps, scale)
            groups = {"all": torch.ones_like(y, dtype=torch.bool)}
            if split == "test":
                groups["borderline"] = borderline
            for group, mask in groups.items():
                n = int(mask.sum())
                metrics = blocks.head_metrics(logits[:, mask], y[mask]) if n else {}
                if n:
                    metrics["h_norm"] = norms[:, mask].mean(1).numpy()
                for step in range(steps + 1):
                    for metric in ("loss", "accuracy", "entropy", "h_norm"):
                        value = float(metrics[metric][step]) if n else np.nan
                        rows.append(dict(split=split, group=group, n_examples=n, scale=float(scale), step=step,
                                         metric=metric, value=value, note="" if n else "no example in this group"))
    return mark_missing(pd.DataFrame(rows), "non-finite (the unrolled activations overflowed)")


def model_metrics(model, data, settings: dict) -> dict[str, pd.DataFrame]:
    """All final-model measurements of one run: blocks, drop, borderline, unroll."""
    batches = split_batches(data, settings)
    out = {"blocks": block_frame(model, batches, settings["splits"]),
           "drop": drop_frame(model, batches["test"], settings["n_shuffles"], settings["subset_seed"])}
    bl = settings["borderline"]
    frames, mask = [], None
    for split in settings["splits"]:
        logits, y = blocks.last_stage_logits(model, batches[split])
        frame = blocks.borderline_analysis(logits, y, bl["last_blocks"], bl["threshold"])
        frame.insert(0, "split", split)
        frames.append(frame)
        if split == "test":
            mask = blocks.borderline_mask(logits[-bl["last_blocks"]:], y, bl["threshold"])
    out["borderline"] = mark_missing(pd.concat(frames, ignore_index=True), "no example in this group")
    if mask is None:
        logits, y = blocks.last_stage_logits(model, batches["test"])
        mask = blocks.borderline_mask(logits[-bl["last_blocks"]:], y, bl["threshold"])
    out["unroll"] = unroll_frame(model, batches, settings, mask)
    return out


# ---------------------------------------------------------------- snapshots


def heads_frame(model, batches: dict[str, list], splits, epoch: float) -> pd.DataFrame:
    n_last = len(model.stages[-1])
    first = sum(len(s) for s in model.stages) - n_last
    rows = []
    for split in splits:
        logits, y = blocks.last_stage_logits(model, batches[split])
        metrics = blocks.head_metrics(logits, y)
        for j in range(n_last):
            for metric in ("accuracy", "loss"):
                rows.append(dict(epoch=epoch, split=split, block=first + j, position=j, metric=metric,
                                 value=float(metrics[metric][j])))
    return mark_missing(pd.DataFrame(rows), "non-finite network output")


def init_frame(model, data, settings: dict, span: int | None) -> pd.DataFrame:
    x, y = subset(data.x_train, data.y_train, settings["init_batch"], settings["subset_seed"])
    per_block, per_stage = blocks.init_diagnostics(model, (x, y), span)
    long = per_block.melt(id_vars=["block", "stage", "position"], var_name="metric", value_name="value")
    stage_long = per_stage.melt(id_vars=["stage"], var_name="metric", value_name="value").assign(block=-1, position=-1)
    frame = pd.concat([long, stage_long], ignore_index=True)
    return mark_missing(frame, "non-finite at initialisation (activations overflowed)")


def snapshot_metrics(snapshots: dict[float, str], data, settings: dict, span: int | None,
                     device="cpu", heads: bool = True) -> dict[str, pd.DataFrame]:
    """Intermediate-head accuracy at every snapshot (if `heads`); sharing diagnostics at epoch 0."""
    batches = split_batches(data, settings)
    frames, init = [], None
    for epoch, path in sorted(snapshots.items()):
        if not heads and epoch != 0:
            continue
        model, _ = load_model(path, device)
        if heads:
            frames.append(heads_frame(model, batches, settings["heads_splits"], epoch))
        if epoch == 0:
            init = init_frame(model, data, settings, span)
    if init is None:
        init = pd.DataFrame([dict(metric="missing", value=np.nan,
                                  note="no snapshot at epoch 0 (add 0 to the experiment's snapshots)")])
    out = {"init": init}
    if heads:
        out["heads"] = pd.concat(frames, ignore_index=True)
    return out


def sharing_init_frame(run_cfg: dict, variants, shared_blocks: int, seeds, data, settings: dict) -> pd.DataFrame:
    """Initialisation diagnostics of every sharing variant, per seed, no training (claim A4a).

    For each seed, each variant (unshared, naive, UBN) of the experiment's model is built
    exactly as training builds it (torch.manual_seed(seed), then build_model), so the
    variants of a seed start from the same generator state; blocks.init_diagnostics runs
    on one batch of `init_batch` training examples with BN batch statistics, over the top
    `shared_blocks` blocks of every stage (the unshared network over the same blocks).
    Long table: seed, variant, stage, metric (growth, grad_ratio), value.
    """
    x, y = subset(data.x_train, data.y_train, settings["init_batch"], settings["subset_seed"])
    overrides = {"unshared": {"shared_blocks": 0},
                 "naive": {"shared_blocks": shared_blocks, "shared_bn": "naive"},
                 "UBN": {"shared_blocks": shared_blocks, "shared_bn": "unshared"}}
    rows = []
    for seed in seeds:
        for variant in variants:
            spec = {k: v for k, v in run_cfg["model"].items() if k not in ("shared_blocks", "shared_bn")}
            spec.update(overrides[variant])
            if not spec["shared_blocks"]:
                spec.pop("shared_blocks")
            torch.manual_seed(int(seed))
            model = build_model(spec, INPUT_SHAPES[run_cfg["dataset"]], NUM_CLASSES.get(run_cfg["dataset"], 10))
            _, per_stage = blocks.init_diagnostics(model, (x, y), shared_blocks)
            for r in per_stage.itertuples():
                for metric in ("growth", "grad_ratio"):
                    rows.append(dict(experiment=run_cfg["experiment"], seed=int(seed), variant=variant,
                                     stage=int(r.stage), span=int(r.span), metric=metric,
                                     value=float(getattr(r, metric))))
    return mark_missing(pd.DataFrame(rows), "non-finite at initialisation (activations overflowed)")


def run_sharing_init(run_cfg: dict, sharing: dict, settings: dict, output, device="cpu", data_root="data",
                     download=False) -> pd.DataFrame:
    """Rule iterative_sharing_init: the A4a diagnostics table (no training), written to `output`."""
    data = load_run_data(run_cfg, data_root, download).to(device)
    frame = sharing_init_frame(run_cfg, sharing["variants"], sharing["shared_blocks"], sharing["seeds"],
                               data, settings)
    atomic_write_text(output, frame.to_csv(index=False))
    return frame


# ---------------------------------------------------------------- per-run entry points (scripts)


def write_frames(frames: dict[str, pd.DataFrame], outputs: dict[str, str]) -> None:
    for name, path in outputs.items():
        atomic_write_text(path, frames[name].to_csv(index=False))


def run_model_metrics(model_path, status_path, run_cfg: dict, settings: dict, outputs: dict[str, str],
                      device="cpu", data_root="data", download=False, log=None) -> None:
    """Rule iterative_model_metrics: measure one run's final model, write its tables."""
    ids = run_ids(run_cfg)
    ok, reason = read_status(status_path)
    if not ok:
        if log:
            log.warning("%s/%s: %s", ids["experiment"], ids["run"], reason)
        frames = {name: skipped(ids, reason) for name in MODEL_TABLES}
    else:
        data = load_run_data(run_cfg, data_root, download).to(device)
        model, _ = load_model(model_path, device)
        frames = {name: with_ids(f, ids) for name, f in model_metrics(model, data, settings).items()}
    write_frames(frames, outputs)


def run_snapshot_metrics(snapshot_dir, status_path, run_cfg: dict, settings: dict, epochs, span,
                         outputs: dict[str, str], device="cpu", data_root="data", download=False, log=None) -> None:
    """Rule iterative_snapshot_metrics: intermediate heads over training, init diagnostics.

    A run that did not complete gets no head measurements (skipped, with the reason);
    its initialisation diagnostics are still measured (they do not depend on training).
    """
    ids = run_ids(run_cfg)
    ok, reason = read_status(status_path)
    if not ok and log:
        log.warning("%s/%s: %s", ids["experiment"], ids["run"], reason)
    snaps = {float(e): Path(snapshot_dir) / f"{snapshot_name(float(e))}.pt" for e in epochs}
    snaps = {e: p for e, p in snaps.items() if p.exists()}
    frames = {}
    if snaps:
        data = load_run_data(run_cfg, data_root, download).to(device)
        frames = snapshot_metrics(snaps, data, settings, span, device, heads=ok)
        frames = {name: with_ids(f, ids) for name, f in frames.items()}
    for name in SNAPSHOT_TABLES:
        frames.setdefault(name, skipped(ids, reason or "no snapshots"))
    write_frames(frames, outputs)
