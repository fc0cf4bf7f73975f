"""Which datasets exist and whether their files are on disk, without torch: the workflow
checks this while it builds the DAG (before any job), and building the DAG never imports
torch. Loading the data is repro.data's job."""

from __future__ import annotations

from pathlib import Path

EMBEDDED = ("mnist5k", "digits")
TORCHVISION = ("mnist", "fashion_mnist", "cifar10", "cifar100")
DATASETS = EMBEDDED + TORCHVISION

# Files torchvision needs on disk, relative to data_root (download=False).
EXPECTED_FILES = {
    "mnist": ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte",
              "MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"],
    "fashion_mnist": ["FashionMNIST/raw/train-images-idx3-ubyte", "FashionMNIST/raw/train-labels-idx1-ubyte",
                      "FashionMNIST/raw/t10k-images-idx3-ubyte", "FashionMNIST/raw/t10k-labels-idx1-ubyte"],
    "cifar10": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] + ["cifar-10-batches-py/test_batch"],
    "cifar100": ["cifar-100-python/train", "cifar-100-python/test"],
}


def missing_files(name: str, data_root: str | Path) -> list[Path]:
    """Files a torchvision dataset needs that are absent under data_root (empty if fine)."""
    root = Path(data_root)
    return [root / f for f in EXPECTED_FILES.get(name, []) if not (root / f).exists()]


def availability_error(name: str, data_root: str | Path, download: bool) -> str | None:
    """A message saying what is missing and how to fix it, or None when loadable."""
    if name not in DATASETS:
        return f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}"
    if name in EMBEDDED or download:
        return None
    missing = missing_files(name, data_root)
    if not missing:
        return None
    return (f"dataset {name!r} is not present under data_root={str(data_root)!r} "
            f"(missing {missing[0]}{' and others' if len(missing) > 1 else ''}). "
            f"Put the torchvision files there, or set `download: true` in the config "
            f"(or --config download=True) on a machine with network access.")
