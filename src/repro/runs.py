"""One run record: what a finished (or failed) training run was and how it ended.

Every analysis that needs a run's ids, its SGD settings or its final metrics reads them
here, from the run's ``status.json`` (written by :func:`repro.train.train_run` into
``results/runs/<experiment>/<run>/``), through :meth:`RunRecord.read`. The record is frozen:
nothing downstream re-derives a field in its own way.

The learning-rate / batch-size ratio eta/S has one formula (:func:`lr_over_batch`) and
"equal eta/S" one rule (:func:`same_ratio`, relative tolerance :data:`RATIO_REL_TOL`).
A different question, "are two ratios nearer each other than half a grid step?", has its
own name (:func:`within_half_grid_step`); it is not equality.

Imports neither torch nor pandas, so the rules may use it while the workflow is parsed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")

# Two eta/S values are the same ratio when they differ by at most this share of the larger.
# Config values are decimals (0.05 / 64 vs 0.1 / 128), so equal ratios differ only by float
# rounding (~1e-16 relative); 1e-6 is far above that and far below any grid step (x1.25 or more).
RATIO_REL_TOL = 1e-6


def lr_over_batch(lr, batch_size):
    """eta/S, the SGD noise scale of a run (per example). Works elementwise on numpy arrays
    and pandas Series too."""
    return lr / batch_size


def same_value(a: float, b: float, rel_tol: float = RATIO_REL_TOL) -> bool:
    """a and b agree up to float rounding of decimal settings (relative tolerance)."""
    return abs(a - b) <= rel_tol * max(abs(a), abs(b))


def same_ratio(a, b) -> bool:
    """Do two runs (or two eta/S values) have the same eta/S? The one rule: relative
    difference <= :data:`RATIO_REL_TOL`. Accepts numbers or objects with ``lr_over_batch``."""
    return same_value(getattr(a, "lr_over_batch", a), getattr(b, "lr_over_batch", b))


def ratio_in(value: float, ratios) -> bool:
    """Is `value` the same eta/S (:func:`same_ratio`) as one of `ratios`?"""
    return any(same_ratio(value, r) for r in ratios)


def within_half_grid_step(ratio_a: float, ratio_b: float, grid_factor: float = 2.0) -> bool:
    """Are two eta/S values nearer each other than half a grid step on the log scale, i.e.
    do they differ by less than a factor sqrt(grid_factor)? Not equality: paper B's own
    "equal eta/S" interpolation pair (ResNet 0.1/1024 vs 0.01/128) differs by 1.25, which
    is nearer equal than one factor-2 grid step."""
    return max(ratio_a, ratio_b) / min(ratio_a, ratio_b) < math.sqrt(grid_factor)


@dataclass(frozen=True)
class RunRecord:
    """A run as recorded in its status.json.

    ``config`` is the run's full settings (the training spec), ``final`` its last-epoch
    metrics (train/test loss and accuracy) as recorded, whatever the status."""

    experiment: str
    run: str
    status: str
    stop_reason: str
    config: dict = field(repr=False, compare=False)
    final: dict = field(repr=False, compare=False)
    epochs_completed: int | None = None
    steps: int | None = None

    @classmethod
    def read(cls, path) -> RunRecord:
        """The record of results/runs/<experiment>/<run>/status.json; the ids come from the
        file's content where it records them, otherwise from the two folder names."""
        path = Path(path)
        return cls.from_status(json.loads(path.read_text()), experiment=path.parent.parent.name,
                               run=path.parent.name)

    @classmethod
    def from_status(cls, status: dict, experiment: str | None = None, run: str | None = None) -> RunRecord:
        """The record of a parsed status.json; `experiment`/`run` are used only where the
        content has no ids (top level, or inside ``config``)."""
        cfg = status.get("config") or {}
        ids = {}
        for key, fallback in (("experiment", experiment), ("run", run)):
            ids[key] = status.get(key) or cfg.get(key) or fallback
            if not ids[key]:
                raise ValueError(f"status.json records no {key} id and none was given")
        return cls(experiment=ids["experiment"], run=ids["run"], status=status["status"],
                   stop_reason=status.get("stop_reason", ""), config=cfg, final=status.get("final") or {},
                   epochs_completed=status.get("epochs_completed"), steps=status.get("steps"))

    @property
    def key(self) -> tuple[str, str]:
        return (self.experiment, self.run)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def train(self) -> dict:
        """The run's SGD settings (config["train"])."""
        return self.config["train"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def lr(self) -> float:
        return self.train["lr"]

    @property
    def batch_size(self) -> int:
        return self.train["batch_size"]

    @property
    def lr_over_batch(self) -> float:
        """eta/S of the constant (initial) settings; scheduled runs vary it per epoch."""
        return lr_over_batch(self.lr, self.batch_size)

    @property
    def momentum(self) -> float:
        return float(self.train.get("momentum", 0.0))

    @property
    def label_noise(self) -> float:
        return float(self.config.get("label_noise") or 0.0)

    @property
    def train_size(self):
        return self.config.get("train_size")

    @property
    def failure(self) -> str:
        """'' for a completed run, else '<status>: <why it stopped>'."""
        return "" if self.completed else f"{self.status}: {self.stop_reason}"

    def final_metric(self, name: str):
        """A final metric of a completed run; None for a run that did not complete."""
        return self.final.get(name) if self.completed else None
