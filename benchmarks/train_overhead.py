"""Pipeline training step vs a bare PyTorch loop: same model, data, batches, one process.

The pipeline's `run_epoch` adds what the workflow needs (divergence check on every
loss, snapshot hook, seeded order and augmentation). This measures what that costs:
throughput ratio = pipeline examples/s / bare examples/s (target >= 0.95).

    .venv/bin/python benchmarks/train_overhead.py [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch
import torch.nn.functional as F

from repro.data import load_dataset
from repro.models import build_model
from repro.train import _epoch_generator, run_epoch


def bare_epoch(model, opt, x, y, batch_size, gen):
    """The loop a user would write: shuffle, forward, backward, step."""
    order = torch.randperm(len(x), generator=gen)
    model.train()
    for i in range(len(x) // batch_size):
        idx = order[i * batch_size:(i + 1) * batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def measure(spec, data, batch_size, epochs):
    torch.manual_seed(0)
    base = build_model(spec, data.input_shape, data.num_classes)
    tr = {"lr": 0.01}
    times = {"bare": [], "pipeline": []}
    models = {k: copy.deepcopy(base) for k in times}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    for epoch in range(1, epochs + 2):  # the first epoch of each is a warm-up
        for kind in ("bare", "pipeline") if epoch % 2 else ("pipeline", "bare"):
            gen = _epoch_generator(0, epoch)
            t0 = time.perf_counter()
            if kind == "bare":
                bare_epoch(models[kind], opts[kind], data.x_train, data.y_train, batch_size, gen)
            else:
                run_epoch(models[kind], opts[kind], data.x_train, data.y_train, batch_size, gen, tr, 0, 100.0,
                          on_step=lambda i, s: None)
            if epoch > 1:
                times[kind].append(time.perf_counter() - t0)
    n = (len(data.x_train) // batch_size) * batch_size
    bare, pipe = min(times["bare"]), min(times["pipeline"])  # noise on a shared CPU only adds time
    return n / bare, n / pipe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist5k")
    cases = [("MLP 2x256", {"name": "mlp", "depth": 2, "width": 256}, 128),
             ("SimpleCNN", {"name": "simplecnn", "widths": [16, 32], "hidden": 64}, 128),
             ("PreAct ResNet (8,16,32)x2", {"name": "resnet", "widths": [8, 16, 32], "blocks_per_stage": 2}, 128)]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, mnist5k train (4000), best of {args.epochs} alternating epochs")
    print("| model | batch | bare ex/s | pipeline ex/s | ratio |")
    print("|---|---|---|---|---|")
    for name, spec, bs in cases:
        bare, pipe = measure(spec, data, bs, args.epochs)
        print(f"| {name} | {bs} | {bare:,.0f} | {pipe:,.0f} | {pipe / bare:.3f} |")


if __name__ == "__main__":
    main()
