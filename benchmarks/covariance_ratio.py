"""Per-example covariance spectrum of 512 examples / one batch gradient of the same 512, as CPU-time
ratios (minimum and median over alternated repeats) and a cProfile ratio with each part's share.

    .venv/bin/python benchmarks/covariance_ratio.py resnet 5      # bn-cnn | simplecnn | resnet, repeats

Models and data are those of benchmarks/curvature.py (random init). One thread. A ratio, not a
time: both sides run alternately in one process, so a loaded machine slows both (docs/PERFORMANCE.md).
"""
import cProfile
import os
import pstats
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curvature as bench  # noqa: E402  (puts the repository's src/ first on the path)

from repro.curvature import grad_covariance_eigs  # noqa: E402

PARTS = ("_sym_gram", "_conv_weight_grads", "_capture_forward", "_features")


def main(name: str, reps: int) -> None:
    torch.set_num_threads(1)
    x, y, _ = bench.load_data(512)
    model = bench.build_model(name, x, y, 0)
    batches = [(x[i:i + 1], y[i:i + 1]) for i in range(512)]
    params = [p for p in model.parameters() if p.requires_grad]

    def batch_gradient():
        return torch.autograd.grad(bench.LOSS(model(x), y), params)

    def covariance():
        return grad_covariance_eigs(model, bench.LOSS, batches)

    covariance(), batch_gradient()          # warm-up
    tg, tc = [], []
    for _ in range(reps):
        for f, times in ((batch_gradient, tg), (covariance, tc)):
            c = time.process_time()
            f()
            times.append(time.process_time() - c)
    print(f"{name}: min ratio {min(tc) / min(tg):.3f}, median ratio {statistics.median(tc) / statistics.median(tg):.3f}")
    pr = cProfile.Profile(time.process_time)
    pr.enable()
    for _ in range(2):
        batch_gradient(), covariance()
    pr.disable()
    cum = {f[2]: v[3] for f, v in pstats.Stats(pr).stats.items()}
    print(f"cProfile ratio {cum['covariance'] / cum['batch_gradient']:.3f}; shares of the covariance:",
          {k: round(cum.get(k, 0) / cum["covariance"], 3) for k in PARTS})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5)
