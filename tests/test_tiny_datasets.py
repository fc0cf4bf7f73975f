"""Tiny files in torchvision's formats (repro.tiny_datasets) read by the real loaders."""

from __future__ import annotations

import pytest

from repro.data import load_dataset, missing_files
from repro.tiny_datasets import write_all

SIZES = {"cifar10": (20, 10), "cifar100": (30, 10), "mnist": (20, 10), "fashion_mnist": (20, 10)}
SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28)}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_all(root, SIZES)
    return root


@pytest.mark.parametrize("name", list(SIZES))
def test_torchvision_reads_every_tiny_dataset(root, name):
    assert missing_files(name, root) == []
    data = load_dataset(name, root)
    assert tuple(data.x_train.shape) == (SIZES[name][0], *SHAPES[name])
    assert tuple(data.x_test.shape) == (SIZES[name][1], *SHAPES[name])
    assert int(data.y_train.max()) < data.num_classes and len(set(data.y_train.tolist())) > 1


def test_plain_torchvision_reads_the_tiny_mnist_and_fashion_mnist_files(root):
    import torchvision.datasets as tvd

    assert len(tvd.MNIST(root, train=True)) == SIZES["mnist"][0]
    assert len(tvd.FashionMNIST(root, train=False)) == SIZES["fashion_mnist"][1]


def test_a_corrupt_cifar_miniature_is_still_rejected(tmp_path):
    write_all(tmp_path, SIZES)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-7] + b"garbage")
    with pytest.raises(RuntimeError, match="corrupted"):
        load_dataset("cifar10", tmp_path)
