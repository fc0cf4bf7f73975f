"""A small cost model: how long and how much memory a job needs, from what it computes.

Why: a paper-scale job asks SLURM for a time limit, memory and a GPU. Asking too little
kills it at the limit; asking far too much leaves it queued. The numbers come from a
count of the work, not from a guess per rule:

Inputs (all from the run config; nothing is measured at planning time)
    forward FLOPs per image   counted from the model spec (``repro.config_sizes.forward_flops``,
                              equal to torch's FlopCounterMode, tested), without torch
    parameters                ``repro.config_sizes.estimate`` (equal to torch's count, tested)
    activations per image     ``repro.config_sizes.estimate``: the values a backward pass
                              keeps (approximate: conv, norm and activation outputs)
    images                    training images x epochs (x3: forward + backward), plus the
                              full train/test evaluation after every epoch (x1)
    THROUGHPUT                sustained FLOP/s: GPU_FLOPS (fp32, small convnets, an
                              A100/H100-class device at ~10% of its peak) or CPU_FLOPS
    SAFETY                    x3 on the projected compute time; a retry asks attempt x that

Outputs: ``train_cost(run)`` (FLOPs, seconds, memory) and the Snakemake resources
``train_runtime_min`` / ``train_mem_mb`` / ``measure_runtime_min``, which rules' ``resources:``
call. ``paper_projection(config)`` sums every training run of a config per paper
(docs/PERFORMANCE.md "Paper-scale cost").
"""

from __future__ import annotations

import functools
import json
import math

from . import config_sizes
from .config_sizes import OFFICIAL_SIZES

GPU_FLOPS = 10e12     # sustained fp32 FLOP/s of one A100/H100-class GPU on these small convnets
CPU_FLOPS = 50e9      # sustained FLOP/s of a 4-core CPU job
SAFETY = 3.0          # the time limit is 3x the projection
OVERHEAD_MIN = 5      # start-up: Python, torch, CUDA context, data load
BASE_MEM_MB = 3000    # torch + CUDA context + the data set as float32 tensors
# What profiles/slurm-gpu is written for: one job of at most 1 GPU (the profile's
# `resources: gpu: 1`), 48 h and 128 GB (common GPU-partition limits; check `sinfo -o "%P %l %m"`)
SLURM_GPU_LIMITS = {"gpu": 1, "runtime": 2880, "mem_mb": 128000}
TEST_SIZES = {"mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000, "cifar100": 10000,
              "mnist5k": 1000, "digits": 360}
TRAIN_SIZES = {**{name: sizes[0] for name, sizes in OFFICIAL_SIZES.items()}, "mnist5k": 4000, "digits": 1437}


@functools.lru_cache(maxsize=None)
def _architecture(model_json: str, dataset: str) -> dict:
    # counted from the model spec without torch: building the DAG never imports torch
    model = json.loads(model_json)
    params, activations = config_sizes.estimate(model, dataset)
    return {"flops_per_image": config_sizes.forward_flops(model, dataset), "params": params,
            "activations_per_image": float(activations)}


def architecture(model: dict, dataset: str) -> dict:
    """Forward FLOPs per image, parameters and activation elements per image of a model."""
    return _architecture(json.dumps(model, sort_keys=True), dataset)


def train_images(run: dict) -> int:
    """Training images of a run (the official set, or its train_size subset)."""
    n = TRAIN_SIZES[run["dataset"]]
    return min(n, run.get("train_size") or n)


def largest_batch(run: dict) -> int:
    train = run["train"]
    schedule = train.get("batch_schedule") or {}
    return max([train["batch_size"]] + [schedule[k] for k in ("low", "high") if k in schedule])


def train_cost(run: dict, flops: float = GPU_FLOPS) -> dict:
    """Projected FLOPs, seconds (at `flops` FLOP/s, no safety factor) and memory of a run."""
    arch = architecture(run["model"], run["dataset"])
    epochs = run["train"]["epochs"]
    n_train, n_test = train_images(run), TEST_SIZES[run["dataset"]]
    total = arch["flops_per_image"] * epochs * (3 * n_train + n_train + n_test)
    batch = largest_batch(run)
    # weights, gradients, momentum (fp32) + kept activations of the largest batch (x2: their gradients)
    mem_bytes = 4 * (3 * arch["params"] + 2 * batch * arch["activations_per_image"])
    return {"flops": total, "seconds": total / flops, "params": arch["params"],
            "mem_mb": int(BASE_MEM_MB + mem_bytes / 2**20)}


def train_runtime_min(run: dict, attempt: int = 1, flops: float = GPU_FLOPS) -> int:
    """A training job's time limit in minutes: SAFETY x the projection + start-up, x attempt."""
    return int(math.ceil(OVERHEAD_MIN + SAFETY * train_cost(run, flops)["seconds"] / 60)) * int(attempt)


def train_mem_mb(run: dict) -> int:
    """A training job's memory request (MB): the projection rounded up to 1 GB, at least 4 GB."""
    return max(4000, int(math.ceil(train_cost(run)["mem_mb"] / 1000)) * 1000)


def train_batch_runtime_min(runs: list[dict], attempt: int = 1, floor_min: int = 0) -> int:
    """A job training `runs` one after another (repro.train_batches): the sum of what each
    run's own job asks, each at least `floor_min` (the config's train_runtime), x attempt."""
    return sum(max(floor_min, train_runtime_min(run)) for run in runs) * int(attempt)


def train_batch_mem_mb(runs: list[dict]) -> int:
    """A batch holds one run at a time: the largest run's memory request."""
    return max(train_mem_mb(run) for run in runs)


def measure_runtime_min(run: dict, passes: float, attempt: int = 1, flops: float = GPU_FLOPS) -> int:
    """A measurement job's time limit (minutes) for `passes` forward-equivalents over the
    run's training images (e.g. per snapshot: a few gradient passes and Hessian products)."""
    return measure_runtime_sum_min([(run, passes)], attempt, flops)


def measure_runtime_sum_min(items: list[tuple[dict, float]], attempt: int = 1, flops: float = GPU_FLOPS) -> int:
    """The time limit (minutes) of a job that measures several runs one after another, each
    (run, passes) as in :func:`measure_runtime_min`: start-up once plus SAFETY x the sum of
    the runs' projections (for one run, exactly :func:`measure_runtime_min`)."""
    seconds = sum(architecture(run["model"], run["dataset"])["flops_per_image"] * passes * train_images(run)
                  for run, passes in items) / flops
    return int(math.ceil(OVERHEAD_MIN + SAFETY * seconds / 60)) * int(attempt)


INTERPOLATION_PAIR_MIN = 60  # paper B, one pair: ~35 alphas x (train + test set + BN batches) forward


def interpolation_runtime_min(pairs: int) -> int:
    """Paper B's interpolation job: the sum of its pairs' limits."""
    return INTERPOLATION_PAIR_MIN * int(pairs)


def paper_projection(runs: dict, flops: float = GPU_FLOPS) -> dict[str, dict]:
    """{paper: {runs, gpu_hours, largest run's hours}} over the training runs of `runs`
    (``repro.config.expand_runs`` output); measurement jobs are not included."""
    out: dict[str, dict] = {}
    for run in runs.values():
        cost = train_cost(run, flops)
        paper = out.setdefault(run["paper"], {"runs": 0, "gpu_hours": 0.0, "largest_run_hours": 0.0})
        paper["runs"] += 1
        paper["gpu_hours"] += cost["seconds"] / 3600
        paper["largest_run_hours"] = max(paper["largest_run_hours"], cost["seconds"] / 3600)
    return out


# ---- measurement jobs: forward-equivalents over the run's training images ----------------
HVP_FORWARDS = 4  # a Hessian-vector product costs ~4 forward passes (double backward)


def iterative_passes(settings: dict, snapshots: int = 1) -> float:
    """Paper A, per model (x snapshots): every block read on max_examples test images, once
    per shuffle and per unroll step and scale, plus the drop and borderline passes."""
    unroll = settings.get("unroll", {})
    forwards = settings.get("n_shuffles", 10) + unroll.get("steps", 20) * len(unroll.get("scales", [1.0])) + 5
    return snapshots * forwards * settings.get("max_examples", 10000) / 50000


def sharpness_passes(settings: dict, n_train: int) -> float:
    """Paper B, per model: Lanczos (~50 HVPs) and Hutchinson (n_probes HVPs) on n_examples."""
    hvps = 50 + settings.get("n_probes", 100)
    return HVP_FORWARDS * hvps * settings.get("n_examples", 5000) / n_train


def curvature_passes(settings: dict, n_train: int, snapshots: int) -> float:
    """Paper D, per run: at every snapshot top-k Lanczos (~20 k HVPs) on a fraction of the
    data, per-example gradients of the covariance batches (x3) and the accuracy pass."""
    hessian, cov = settings.get("hessian", {}), settings.get("covariance", {})
    per_snapshot = (HVP_FORWARDS * 20 * hessian.get("k", 5) * hessian.get("fraction", 0.05) * n_train
                    + 3 * cov.get("n_batches", 25) * cov.get("batch_size", 128)
                    + settings.get("accuracy_examples", 10000))
    return snapshots * per_snapshot / n_train
