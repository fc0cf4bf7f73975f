"""Model families: parameter counts of the papers, block access, sharing, init."""

import pytest
import torch

from repro.models import PreActResNet, SimpleCNN, build_model, count_parameters


@pytest.mark.parametrize("depth,paper_count", [(32, 470_000), (56, 860_000), (110, 1_737_000)])
def test_cifar_resnet_parameter_counts_match_the_papers(depth, paper_count):
    # PAPERS.md Table 1: ResNet-32 ≈ 470k, ResNet-56 ≈ 860k, ResNet-110 ≈ 1737k.
    n = count_parameters(build_model({"name": "resnet", "depth": depth}, (3, 32, 32), 10))
    assert abs(n - paper_count) / paper_count < 0.01, n


def test_shared_unshared_bn_resnet110_count_matches_table1():
    # ResNet-110-UBN with the top 13 of 18 blocks shared: ≈ 573k in Table 1.
    n = count_parameters(build_model({"name": "resnet", "depth": 110, "shared_blocks": 13}, (3, 32, 32), 10))
    assert abs(n - 573_000) / 573_000 < 0.01, n


def test_forward_trace_matches_forward_and_residual_identity():
    torch.manual_seed(0)
    net = PreActResNet(1, 10, widths=(4, 8), blocks_per_stage=3).eval()
    x = torch.randn(5, 1, 12, 12)
    logits, hs, fs = net.forward_trace(x)
    assert torch.allclose(logits, net(x), atol=1e-6)
    assert len(hs) == len(fs) == 6
    # h_{i+1} = h_i + F_i(h_i) inside a stage (identity shortcut)
    for i in (0, 1, 3, 4):
        assert torch.allclose(hs[i + 1], hs[i] + fs[i], atol=1e-6)


def test_drop_block_replaces_it_with_the_shortcut():
    torch.manual_seed(0)
    net = PreActResNet(1, 10, widths=(4,), blocks_per_stage=3, downsample="none").eval()
    x = torch.randn(3, 1, 8, 8)
    _, hs, fs = net.forward_trace(x)
    logits, hs_d, fs_d = net.forward_trace(x, drop=frozenset({1}))
    assert fs_d[1] is None
    assert torch.allclose(hs_d[2], hs[1], atol=1e-6)
    manual = net.head(net.stages[0][2](hs[1]))
    assert torch.allclose(logits, manual, atol=1e-6)


def test_sharing_reuses_convolutions_and_unshared_bn_starts_at_gamma_0_1():
    net = PreActResNet(1, 10, widths=(4,), blocks_per_stage=5, shared_blocks=3, shared_bn="unshared")
    blocks = list(net.stages[0])
    assert blocks[2].conv1 is blocks[3].conv1 is blocks[4].conv1
    assert blocks[1].conv1 is not blocks[2].conv1
    assert blocks[2].bn1 is not blocks[3].bn1
    assert torch.all(blocks[3].bn1.weight == 0.1) and torch.all(blocks[0].bn1.weight == 1.0)
    naive = PreActResNet(1, 10, widths=(4,), blocks_per_stage=5, shared_blocks=3, shared_bn="naive")
    assert list(naive.stages[0])[2].bn1 is list(naive.stages[0])[4].bn1


def test_simplecnn_layout_and_size():
    net = SimpleCNN(1, 28, 10)
    assert count_parameters(net) == 271_210  # conv32-conv32-pool-conv64-conv64-pool-fc128-fc10 on 28x28
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    bn = SimpleCNN(3, 32, 10, batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules()) == 4


def test_he_init_variance_and_glorot_bounds():
    torch.manual_seed(0)
    mlp = build_model({"name": "mlp", "depth": 1, "width": 2000, "init": "he"}, (1, 20, 20), 10)
    w = mlp.body[0].weight
    assert abs(w.var().item() - 2 / 400) / (2 / 400) < 0.02  # kaiming: 2 / fan_in
    g = build_model({"name": "mlp", "depth": 1, "width": 500, "init": "glorot"}, (1, 20, 20), 10).body[0].weight
    bound = (6 / (400 + 500)) ** 0.5
    assert g.abs().max().item() <= bound and g.abs().max().item() > 0.95 * bound


def test_bad_model_specs_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model({"name": "resnet", "depth": 33}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="shared_blocks"):
        build_model({"name": "resnet", "blocks_per_stage": 2, "shared_blocks": 2}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="unknown model"):
        build_model({"name": "transformer"}, (3, 32, 32), 10)
