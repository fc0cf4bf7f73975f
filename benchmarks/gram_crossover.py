"""Where does gradient_gram's "auto" switch from the layer-wise "gram" path to "loop"?

    .venv/bin/python benchmarks/gram_crossover.py [--sizes 1 2 4 8 16 32 64 128] [--batches 25]

For each mini-batch size S: the Gram matrix of M = --batches mini-batch gradients of S
MNIST-5k images (random 1x28x28 data if the embedded set is missing), model in eval mode,
float32, one thread, CPU, by method="gram" and method="loop", alternately, 3 repeats each;
prints the minimum CPU seconds of the process (time.process_time: stable under other load)
and the ratio gram / loop. Models: the default scale's paper-D networks (config.yaml:
SimpleCNN widths 8-16, FC 64, with and without BN), randomly initialised.
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from repro.curvature import curvature_mode, gradient_gram  # noqa: E402
from repro.models import build_model  # noqa: E402

MODELS = {"SimpleCNN": {"name": "simplecnn", "widths": [8, 16], "hidden": 64},
          "SimpleCNN-BN": {"name": "simplecnn", "widths": [8, 16], "hidden": 64, "batch_norm": True}}


def images(n: int):
    try:
        from repro.data import load_dataset

        data = load_dataset("mnist5k", "data", False)
        return data.x_train[:n], data.y_train[:n]
    except Exception:  # noqa: BLE001 - no embedded data: the timing does not depend on values
        gen = torch.Generator().manual_seed(0)
        return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def cpu_seconds(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--batches", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = images(args.batches * max(args.sizes))
    loss = nn.CrossEntropyLoss()
    print("model         S     M   gram s   loop s   gram/loop   max rel. diff")
    for label, spec in MODELS.items():
        model = build_model(spec, (1, 28, 28), 10).eval()
        for size in args.sizes:
            batches = [(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(args.batches)]
            with curvature_mode(model):
                g1 = gradient_gram(model, loss, batches, method="gram")[0]
                g2 = gradient_gram(model, loss, batches, method="loop")[0]
                times = {m: cpu_seconds(lambda m=m: gradient_gram(model, loss, batches, method=m))
                         for m in ("gram", "loop")}
            diff = float(((g1 - g2).abs().max() / g2.abs().max()))
            print(f"{label:12s} {size:4d} {args.batches:5d} {times['gram']:8.3f} {times['loop']:8.3f} "
                  f"{times['gram'] / times['loop']:10.2f}   {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
