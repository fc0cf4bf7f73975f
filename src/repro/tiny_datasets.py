"""Tiny CIFAR-10, CIFAR-100, MNIST and FashionMNIST files in torchvision's on-disk formats.

The paper-scale miniature (``make paper-mini``, configs/paper-mini.yaml) executes the whole
paper DAG on a CPU without the real data sets. Its data are written here, byte for byte in
the layouts torchvision reads with ``download=False``, so the real loaders
(``repro.data.load_dataset`` -> ``torchvision.datasets.*``) parse them; nothing is mocked:

* CIFAR-10: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and ``batches.meta``,
  Python pickles of dicts with ``data`` (N x 3072 uint8, channel-major rows of 32 x 32)
  and ``labels`` (list of int), as in the original archive.
* CIFAR-100: ``cifar-100-python/train``, ``test`` (``fine_labels``, ``coarse_labels``) and
  ``meta`` (``fine_label_names``, ``coarse_label_names``).
* MNIST / FashionMNIST: ``MNIST/raw`` and ``FashionMNIST/raw`` with the four IDX files
  (big-endian magic 0x0801 labels / 0x0803 images, then the dimensions, then uint8 data).

torchvision checks the CIFAR archives' MD5 sums, which no miniature can match; the meta
files written here therefore carry ``MINIATURE_KEY``: the MD5 sum of every file of the
folder, which ``repro.data`` verifies instead (a corrupt miniature is still detected; real
CIFAR files are checked against torchvision's own sums as before).

Images are class-dependent (a per-class mean pattern plus noise, seeded), so a step of
training moves the loss and accuracies are not constant. Run ``python -m repro.tiny_datasets
DATA_ROOT`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

MINIATURE_KEY = "repro_miniature_md5"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# sizes: training images (CIFAR-10: split over its 5 batches), test images
DEFAULT_SIZES = {"cifar10": (256, 10), "cifar100": (4, 4), "mnist": (400, 100),
                 "fashion_mnist": (400, 100)}


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _images(n: int, num_classes: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, *shape), labels): every class appears, a per-class pattern + noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    patterns = rng.uniform(40, 215, size=(num_classes, *shape))
    x = patterns[labels] + rng.normal(0, 40, size=(n, *shape))
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.int64)


def _pickle(obj: dict, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the archives' protocol; read with encoding="latin1"


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _images(n_train + n_test, 10, (3, 32, 32), seed)
    parts = np.array_split(np.arange(n_train), 5)
    for i, idx in enumerate(parts, start=1):
        _pickle({"batch_label": f"training batch {i} of 5", "labels": y[idx].tolist(),
                 "data": x[idx].reshape(len(idx), -1), "filenames": [f"img{j}.png" for j in idx]},
                folder / f"data_batch_{i}")
    test = np.arange(n_train, n_train + n_test)
    _pickle({"batch_label": "testing batch 1 of 1", "labels": y[test].tolist(),
             "data": x[test].reshape(n_test, -1), "filenames": [f"img{j}.png" for j in test]},
            folder / "test_batch")
    sums = {f"data_batch_{i}": md5(folder / f"data_batch_{i}") for i in range(1, 6)}
    sums["test_batch"] = md5(folder / "test_batch")
    _pickle({"label_names": CIFAR10_CLASSES, "num_cases_per_batch": len(parts[0]), "num_vis": 3072,
             MINIATURE_KEY: sums}, folder / "batches.meta")
    return folder


def write_cifar100(root: Path, n_train: int, n_test: int, seed: int = 1) -> Path:
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _images(n_train + n_test, 100, (3, 32, 32), seed)
    for name, idx in (("train", np.arange(n_train)), ("test", np.arange(n_train, n_train + n_test))):
        _pickle({"filenames": [f"img{j}.png" for j in idx], "batch_label": f"{name} batch",
                 "fine_labels": y[idx].tolist(), "coarse_labels": (y[idx] // 5).tolist(),
                 "data": x[idx].reshape(len(idx), -1)}, folder / name)
    _pickle({"fine_label_names": [f"class{c}" for c in range(100)],
             "coarse_label_names": [f"superclass{c}" for c in range(20)],
             MINIATURE_KEY: {name: md5(folder / name) for name in ("train", "test")}}, folder / "meta")
    return folder


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: 2 zero bytes, type 0x08 (uint8), number of dimensions, big-endian int32 sizes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_like(root: Path, folder_name: str, n_train: int, n_test: int, seed: int) -> Path:
    folder = Path(root) / folder_name / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _images(n_train + n_test, 10, (28, 28), seed)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, n_train + n_test))):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", x[sl])
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", y[sl])
    return folder


def write_all(root: str | Path, sizes: dict[str, tuple[int, int]] | None = None) -> dict[str, Path]:
    """Write every tiny data set under `root` (sizes: {name: (train, test)}); their folders."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    root = Path(root)
    return {"cifar10": write_cifar10(root, *sizes["cifar10"]),
            "cifar100": write_cifar100(root, *sizes["cifar100"]),
            "mnist": write_mnist_like(root, "MNIST", *sizes["mnist"], seed=2),
            "fashion_mnist": write_mnist_like(root, "FashionMNIST", *sizes["fashion_mnist"], seed=3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_root", help="folder to write into (the config's data_root)")
    for name, (n_train, n_test) in DEFAULT_SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, nargs=2, metavar=("TRAIN", "TEST"),
                            default=[n_train, n_test], help=f"images (default {n_train} {n_test})")
    args = parser.parse_args(argv)
    sizes = {name: tuple(getattr(args, name)) for name in DEFAULT_SIZES}
    for name, folder in write_all(args.data_root, sizes).items():
        print(f"{name}: {sizes[name][0]} train / {sizes[name][1]} test images in {folder}")


if __name__ == "__main__":
    main()
