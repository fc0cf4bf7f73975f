"""Learning-rate and batch-size schedules, as a value per epoch.

Both are piecewise constant within an epoch. A schedule is plain config data:

    {"type": "constant"}                                   -> the base value
    {"type": "step", "milestones": [40, 60], "values": [0.02, 0.004]}
                                                            -> base until epoch 40, then 0.02 ...
    {"type": "step", "milestones": [80, 120], "gamma": 0.1} -> base * gamma**k
    {"type": "cyclic", "low": 128, "high": 640, "stage_length": 4, "start": "low"}
                                                            -> triangular wave between low and high

The cyclic wave rises from `start` to the other end over `stage_length` epochs and back
(paper B, "stage length"). For batch sizes the wave is linear in 1/S, so a cyclic batch
size with start="high" is the exact mirror (in eta/S) of a cyclic learning rate with
start="low" over the same ratio range.
"""

from __future__ import annotations

import bisect


def _triangle(epoch: int, stage_length: int) -> float:
    """0 -> 1 over stage_length epochs, then back to 0, repeating."""
    pos = epoch % (2 * stage_length)
    return pos / stage_length if pos <= stage_length else 2 - pos / stage_length


def value_at(schedule: dict | None, base: float, epoch: int, harmonic: bool = False) -> float:
    """The scheduled value for `epoch` (0-based)."""
    kind = (schedule or {}).get("type", "constant")
    if kind == "constant":
        return base
    if kind == "step":
        k = bisect.bisect_right(schedule["milestones"], epoch)
        if k == 0:
            return base
        if "values" in schedule:
            return schedule["values"][k - 1]
        return base * schedule.get("gamma", 0.1) ** k
    if kind == "cyclic":
        lo, hi = schedule["low"], schedule["high"]
        u = _triangle(epoch, schedule["stage_length"])
        if schedule.get("start", "low") == "high":
            u = 1 - u
        if harmonic:
            return 1.0 / ((1 - u) / lo + u / hi)
        return lo + u * (hi - lo)
    raise ValueError(f"unknown schedule type {kind!r}; use constant, step or cyclic")


def lr_at(train: dict, epoch: int) -> float:
    return float(value_at(train.get("lr_schedule"), train["lr"], epoch))


def batch_size_at(train: dict, epoch: int) -> int:
    return int(round(value_at(train.get("batch_schedule"), train["batch_size"], epoch, harmonic=True)))
