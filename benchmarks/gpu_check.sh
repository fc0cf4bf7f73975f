#!/usr/bin/env bash
# GPU check for configs/paper.yaml (issue 17), <= 10 minutes on one GPU:
#   benchmarks/gpu_check.sh            (from the repository root, after `make venv`)
# With a CUDA GPU it measures, on synthetic CIFAR-shaped data (no data set needed):
#   1. one epoch (50,000 images) of each paper's main paper-scale model at the paper's
#      batch size: A ResNet-110, B VGG-11 (and the FashionMNIST MLP), D SimpleCNN; paper C
#      trains nothing: one float64 forward of its widest network (width 4000, depth 10)
#   2. one curvature job at paper settings: B top-1 Hessian eigenvalue of VGG-11 on 5,000
#      images (Lanczos); D top-5 on 5% of CIFAR-10 (2,500) and the covariance of 25 x 128
#      per-example gradients of SimpleCNN
#   3. CPU vs GPU on a tiny case (same weights and batch): logits and the loss gradient
#   4. throughput (images/s), peak GPU memory, and the projected wall time of every
#      training run of configs/paper.yaml per paper (repro.costs at the measured FLOP/s)
# On a machine without a GPU it says so and exits 0 without measuring anything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False): nothing measured."
  echo "On a GPU node it runs one epoch of ResNet-110, VGG-11, the FashionMNIST MLP and SimpleCNN,"
  echo "the paper B and D curvature jobs, a CPU/GPU comparison, and prints images/s, peak GPU"
  echo "memory and the projected paper-scale wall time per paper."
  exit 0
fi
exec timeout 600 "$PY" - <<'PYTHON'
import time

import torch
import torch.nn.functional as F
import yaml

from repro import costs
from repro.config import expand_runs
from repro.curvature import grad_covariance_eigs, hessian_eigs
from repro.models import build_model
from repro.train import run_epoch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
MODELS = {  # paper: (label, model spec, dataset, batch size, lr) as in configs/paper.yaml
    "iterative": ("ResNet-110", {"name": "resnet", "depth": 110, "widths": [16, 32, 64]}, "cifar10", 128, 0.1),
    "minima": ("VGG-11", {"name": "vgg", "cfg": "vgg11"}, "cifar10", 128, 0.005),
    "minima_mlp": ("FashionMNIST MLP", {"name": "mlp", "depth": 3, "width": 256}, "fashion_mnist", 100, 0.0125),
    "breakeven": ("SimpleCNN", {"name": "simplecnn", "widths": [32, 64], "hidden": 128}, "cifar10", 128, 0.01),
}
SHAPES = {"cifar10": (3, 32, 32), "fashion_mnist": (1, 28, 28)}
measured = {}
for key, (label, spec, dataset, bs, lr) in MODELS.items():
    torch.manual_seed(0)
    n = 50000 if dataset == "cifar10" else 60000
    x = torch.randn(n, *SHAPES[dataset], device=dev)
    y = torch.randint(0, 10, (n,), device=dev)
    model = build_model(spec, SHAPES[dataset], 10).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    torch.cuda.reset_peak_memory_stats()
    run_epoch(model, opt, x[:bs * 5], y[:bs * 5], bs, torch.Generator().manual_seed(0), {}, 0, 1e9)  # warm-up
    torch.cuda.synchronize(); t0 = time.perf_counter()
    run_epoch(model, opt, x, y, bs, torch.Generator().manual_seed(1), {"translate": 4, "flip": True} if dataset == "cifar10" else {}, 0, 1e9)
    torch.cuda.synchronize(); seconds = time.perf_counter() - t0
    flops = costs.architecture(spec, dataset)["flops_per_image"]
    measured[key] = 3 * flops * n / seconds
    print(f"  {label:18s} one epoch {seconds:7.1f} s  {n / seconds:9.0f} images/s  "
          f"{measured[key] / 1e12:5.2f} TFLOP/s  peak {torch.cuda.max_memory_allocated() / 2**30:5.2f} GiB")
    del x, y, model, opt

print("paper C: one float64 forward, width 4000, depth 10, 2,000 samples of dimension 500")
w = [torch.randn(4000, 500 if i == 0 else 4000, dtype=torch.float64, device=dev) for i in range(10)]
h = torch.randn(2000, 500, dtype=torch.float64, device=dev)
torch.cuda.synchronize(); t0 = time.perf_counter()
for layer in w:
    h = torch.relu(h @ layer.T)
torch.cuda.synchronize(); print(f"  {time.perf_counter() - t0:.3f} s")


def curvature(label, spec, n_hessian, k, cov=None):
    torch.manual_seed(0)
    model = build_model(spec, (3, 32, 32), 10).to(dev)
    x = torch.randn(n_hessian, 3, 32, 32, device=dev); y = torch.randint(0, 10, (n_hessian,), device=dev)
    batches = [(x[i:i + 1000], y[i:i + 1000]) for i in range(0, n_hessian, 1000)]
    torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize(); t0 = time.perf_counter()
    info = {}
    eig = hessian_eigs(model, torch.nn.CrossEntropyLoss(), batches, k=k, tol=1e-3, info=info)
    line = f"  {label}: top-{k} Hessian on {n_hessian} images {time.perf_counter() - t0:.1f} s ({info.get('n_products')} HVPs)"
    if cov:
        xb = torch.randn(cov[0] * cov[1], 3, 32, 32, device=dev); yb = torch.randint(0, 10, (len(xb),), device=dev)
        t1 = time.perf_counter()
        grad_covariance_eigs(model, torch.nn.CrossEntropyLoss(), [(xb[i:i + cov[1]], yb[i:i + cov[1]]) for i in range(0, len(xb), cov[1])], k=5)
        torch.cuda.synchronize(); line += f", covariance of {cov[0]} x {cov[1]} {time.perf_counter() - t1:.1f} s"
    print(line + f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB; lambda_1 = {float(eig[0] if eig.ndim else eig):.4g}")


print("curvature at paper settings (untrained weights, synthetic images):")
curvature("B VGG-11", MODELS["minima"][1], 5000, 1)
curvature("D SimpleCNN", MODELS["breakeven"][1], 2500, 5, cov=(25, 128))

print("CPU vs GPU, ResNet-110, 8 images, float32 without TF32:")
torch.manual_seed(0)
cpu_model = build_model(MODELS["iterative"][1], (3, 32, 32), 10).eval()
gpu_model = build_model(MODELS["iterative"][1], (3, 32, 32), 10).eval().to(dev)
gpu_model.load_state_dict(cpu_model.state_dict())
x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
grads = []
for model, device in ((cpu_model, "cpu"), (gpu_model, dev)):
    model.zero_grad()
    logits = model(x.to(device)); F.cross_entropy(logits, y.to(device)).backward()
    grads.append((logits.detach().cpu(), torch.cat([p.grad.flatten().cpu() for p in model.parameters()])))
dl = (grads[0][0] - grads[1][0]).abs().max() / grads[0][0].abs().max()
dg = (grads[0][1] - grads[1][1]).norm() / grads[0][1].norm()
print(f"  logits max rel. difference {dl:.2e}, gradient rel. difference {dg:.2e} -> {'OK' if dl < 1e-4 and dg < 1e-3 else 'MISMATCH'}")

config = yaml.safe_load(open("configs/paper.yaml"))
config["data_root"], config["download"] = "data", True  # planning only: no file is read
runs = expand_runs(config)
flops = {"iterative": measured["iterative"], "minima": measured["minima"], "breakeven": measured["breakeven"]}
print("projected paper-scale training, every run of configs/paper.yaml (one GPU, runs in series):")
for paper, cost in costs.paper_projection(runs).items():
    hours = cost["gpu_hours"] * costs.GPU_FLOPS / flops[paper]
    print(f"  {paper:10s} {cost['runs']:4d} runs  {hours:8.1f} GPU-hours at the measured {flops[paper] / 1e12:.2f} TFLOP/s "
          f"(cost model at {costs.GPU_FLOPS / 1e12:.0f} TFLOP/s: {cost['gpu_hours']:.1f})")
PYTHON
