"""Datasets: embedded sets, torchvision loaders on tiny files in their real formats,
splits, augmentation."""

import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets

from repro.data import augment, availability_error, load_dataset, stratified_split


def write_idx(path, array, magic):
    """IDX file as in the MNIST distribution: big-endian magic, dims, then uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_loader_reads_idx_files_through_torchvision(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    imgs = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (6, 28, 28))}
    labels = {"train": np.arange(12) % 10, "t10k": np.arange(6) % 10}
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", imgs[split], 2051)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[split], 2049)
    ds = load_dataset(name, tmp_path)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (6, 1, 28, 28)
    assert ds.y_train.tolist() == labels["train"].tolist()
    # normalised with train statistics: train pixels have mean 0, std 1
    assert abs(ds.x_train.mean().item()) < 1e-5 and abs(ds.x_train.std().item() - 1) < 1e-2
    # pixel values survive the round trip (up to the affine normalisation)
    raw_px = imgs["train"].astype(np.float64) / 255
    mean, std = raw_px.mean(), raw_px.std()
    assert np.allclose(ds.x_train[3, 0].numpy(), (raw_px[3] - mean) / std, atol=1e-4)


def _skip_md5(monkeypatch):
    # torchvision checks the MD5 of the real CIFAR files; our tiny files are in the same
    # pickle format but cannot match those digests, so only the checksum is bypassed.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loaders_read_pickled_batches_through_torchvision(tmp_path, monkeypatch, name):
    _skip_md5(monkeypatch)
    rng = np.random.default_rng(1)
    # The original batches are Python 2 pickles; read with encoding="latin1" their keys
    # are str, which is what a protocol-2 pickle with str keys gives too.
    label_key = "labels" if name == "cifar10" else "fine_labels"

    def batch(n):
        return {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), label_key: list(range(n))}

    if name == "cifar10":
        root = tmp_path / "cifar-10-batches-py"
        root.mkdir()
        files = {f"data_batch_{i}": batch(4) for i in range(1, 6)} | {"test_batch": batch(5)}
        files["batches.meta"] = {"label_names": [f"c{i}" for i in range(10)]}
    else:
        root = tmp_path / "cifar-100-python"
        root.mkdir()
        files = {"train": batch(20), "test": batch(5), "meta": {"fine_label_names": [f"c{i}" for i in range(100)]}}
    for fname, obj in files.items():
        with open(root / fname, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    ds = load_dataset(name, tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32)
    assert ds.num_classes == (10 if name == "cifar10" else 100)
    # CHW layout: channel 0 of image 0 is the first 1024 bytes of its row
    first = files["data_batch_1"]["data"][0] if name == "cifar10" else files["train"]["data"][0]
    red = ds.x_train[0, 0].numpy().ravel()
    assert np.corrcoef(red, first[:1024].astype(float))[0, 1] > 0.999


def test_missing_dataset_offline_names_path_and_fix(tmp_path):
    msg = availability_error("cifar10", tmp_path, download=False)
    assert "cifar-10-batches-py" in msg and str(tmp_path) in msg and "download: true" in msg
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)
    assert availability_error("cifar10", tmp_path, download=True) is None
    assert availability_error("mnist5k", tmp_path, download=False) is None


def test_mnist5k_split_is_stratified_deterministic_and_disjoint():
    a = load_dataset("mnist5k")
    b = load_dataset("mnist5k")
    assert a.x_train.shape == (4000, 1, 28, 28) and a.x_test.shape == (1000, 1, 28, 28)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert torch.bincount(a.y_test).tolist() == [100] * 10
    y = np.repeat(np.arange(3), 10)
    tr, te = stratified_split(y, 0.2, seed=0)
    assert not set(tr) & set(te) and len(te) == 6 and np.bincount(y[te]).tolist() == [2, 2, 2]


def test_train_size_subset_is_balanced():
    d = load_dataset("digits", train_size=500)
    assert abs(len(d.y_train) - 500) <= 10
    counts = torch.bincount(d.y_train)
    assert counts.max() - counts.min() <= 3


def test_augment_translation_and_flip_match_a_per_image_reference():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5) + 1
    gen = torch.Generator().manual_seed(3)
    out = augment(x, gen, translate=2, flip=True)
    # recompute with the same random draws, one image at a time
    gen = torch.Generator().manual_seed(3)
    flip = torch.rand(2, generator=gen) < 0.5
    dy = torch.randint(0, 5, (2,), generator=gen)
    dx = torch.randint(0, 5, (2,), generator=gen)
    for i in range(2):
        img = x[i].flip(2) if flip[i] else x[i]
        padded = torch.nn.functional.pad(img, (2, 2, 2, 2))
        ref = padded[:, dy[i]:dy[i] + 5, dx[i]:dx[i] + 5]
        assert torch.equal(out[i], ref)
    assert torch.equal(augment(x, gen), x)  # nothing asked, nothing done


def test_label_noise_changes_exactly_the_fraction_to_other_classes_and_never_the_test_set():
    from repro.data import noisy_labels

    clean = load_dataset("digits")
    noisy = load_dataset("digits", label_noise=0.25, label_noise_seed=7)
    n = len(clean.y_train)
    changed = (noisy.y_train != clean.y_train).nonzero().flatten().numpy()
    assert len(changed) == round(0.25 * n)  # exactly the fraction: a new label is always another class
    assert torch.equal(noisy.y_test, clean.y_test) and torch.equal(noisy.x_train, clean.x_train)
    assert torch.equal(noisy.x_test, clean.x_test)
    # the same draw every time; another seed relabels other examples
    again = load_dataset("digits", label_noise=0.25, label_noise_seed=7)
    assert torch.equal(again.y_train, noisy.y_train)
    other = load_dataset("digits", label_noise=0.25, label_noise_seed=8)
    assert not torch.equal(other.y_train, noisy.y_train)
    # the function by hand: indices reported are the ones changed, labels stay in range
    y = np.repeat(np.arange(10), 5)
    out, idx = noisy_labels(y, 0.5, 10, seed=0)
    assert np.array_equal(np.flatnonzero(out != y), idx) and len(idx) == 25 and out.min() >= 0 and out.max() <= 9
    assert np.array_equal(noisy_labels(y, 0.0, 10, 0)[0], y) and np.array_equal(y, np.repeat(np.arange(10), 5))
    # uniform over the *other* classes: all zeros relabelled -> classes 1..9 about equally often
    big, _ = noisy_labels(np.zeros(9000, dtype=np.int64), 1.0, 10, seed=1)
    counts = np.bincount(big, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 850 and counts[1:].max() < 1150
    with pytest.raises(ValueError, match="label_noise: 1.5"):
        noisy_labels(y, 1.5, 10, 0)


def test_load_run_dataset_passes_every_data_key():
    from repro.data import load_run_dataset

    spec = {"dataset": "digits", "train_size": 500, "label_noise": 0.5, "label_noise_seed": 3}
    a = load_run_dataset(spec)
    b = load_dataset("digits", train_size=500, label_noise=0.5, label_noise_seed=3)
    assert torch.equal(a.y_train, b.y_train) and len(a.y_train) == len(b.y_train)
    clean = load_dataset("digits", train_size=500)
    assert int((a.y_train != clean.y_train).sum()) == round(0.5 * len(clean.y_train))


def test_stratified_subset_has_exactly_the_size_asked_for():
    from repro.data import stratified_subset

    y = np.repeat(np.arange(10), 26)[:256]          # 10 classes, 256 examples (tiny CIFAR)
    for n in (1, 4, 8, 10, 128, 130, 255, 256):
        keep = stratified_subset(y, n, seed=0)
        assert len(keep) == n and len(np.unique(keep)) == n
        share = np.bincount(y, minlength=10) * n / len(y)   # each class in proportion to its size
        assert np.all(np.abs(np.bincount(y[keep], minlength=10) - share) < 1)
    big = np.repeat(np.arange(10), 400)              # where rounding adds up: stratified_split's subset
    assert np.array_equal(stratified_subset(big, 2500, 0), stratified_split(big, 2500 / 4000, 0)[1])
    with pytest.raises(ValueError, match="cannot be drawn"):
        stratified_subset(y, 0, 0)
    with pytest.raises(ValueError, match="cannot be drawn"):
        stratified_subset(y, 257, 0)
