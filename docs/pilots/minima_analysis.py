"""Pilot analysis for paper B (docs/pilots/minima.md): epochs to the target per cell and the B2 rule."""
import glob
import json
import sys

import pandas as pd

from repro import stats
from repro.runs import lr_over_batch

root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/pilot-minima"
seeds = [int(s) for s in (sys.argv[2].split(",") if len(sys.argv) > 2 else ["100", "101", "102"])]
rows = []
for path in sorted(glob.glob(f"{root}/results/runs/minima_grid/*/status.json")):
    d = json.load(open(path))
    tr = d["config"]["train"]
    seed = d["config"]["seed"]
    if seed not in seeds:
        continue
    rows.append(dict(lr=tr["lr"], S=tr["batch_size"], seed=seed, status=d["status"],
                     reached=d["status"] == "completed" and d["final"]["train_loss"] <= tr["stop_at_train_loss"],
                     epochs=d["epochs_completed"], steps=d["steps"], train_loss=d["final"]["train_loss"],
                     test_loss=d["final"]["test_loss"], test_acc=d["final"]["test_acc"]))
f = pd.DataFrame(rows)
f["lr_over_batch"] = lr_over_batch(f.lr, f.S)
print(f"runs: {len(f)} over seeds {sorted(int(s) for s in f.seed.unique())}; all reached the target: {bool(f.reached.all())}")
cells = f.groupby(["lr", "S"]).agg(eta_over_S=("lr_over_batch", "first"), n=("seed", "size"),
                                   reached=("reached", "sum"), max_epochs=("epochs", "max"),
                                   max_steps=("steps", "max"), test_loss=("test_loss", "mean"),
                                   test_loss_sd=("test_loss", "std"), test_acc=("test_acc", "mean"))
print(cells.round(4).to_markdown())
m = f[f.reached]
rho = lambda g: stats.spearman(g.lr_over_batch, g.test_loss)[0]  # noqa: E731
value, lo, hi = stats.seed_bootstrap(m, rho)
print(f"\nB2 rule: rho(eta/S, test loss) over seeds {sorted(int(s) for s in m.seed.unique())} = {value:.3f}, "
      f"95% interval [{lo:.3f}, {hi:.3f}], width {hi - lo:.3f} (rule: < 0.5)")
print(f"per seed rho: " + ", ".join(f"{s}: {rho(g):.3f}" for s, g in m.groupby("seed")))
print(f"test accuracy span over the grid (cell means): {100 * cells.test_acc.min():.2f}-{100 * cells.test_acc.max():.2f}%")
