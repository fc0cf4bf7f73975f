"""Model families of the four papers: pre-activation ResNets, SimpleCNN, ReLU MLP, VGG.

Every model is a plain ``nn.Module`` built from a config dict by :func:`build_model`.
The ResNet exposes its residual blocks so paper A can read h_i (block input) and
F_i(h_i) (residual branch output) with one forward pass; every block has an identity
shortcut, h_{i+1} = h_i + F_i(h_i), because the change of width and resolution between
stages is done by a separate 1x1 strided "transition" convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


# ---------------------------------------------------------------- initialisation


def init_weights(module: nn.Module, scheme: str) -> None:
    """Initialise conv/linear weights in place; biases to zero, BN to (1, 0).

    scheme: "he" (kaiming normal, fan-in, ReLU gain), "he_fanout" (kaiming normal,
    fan-out), "glorot" (Glorot/Xavier uniform), "glorot_normal".
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif scheme == "he_fanout":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "glorot_normal":
                nn.init.xavier_normal_(m.weight)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}; use he, he_fanout, glorot or glorot_normal")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- ReLU MLP


class MLP(nn.Module):
    """Fully connected ReLU network: input -> depth x (Linear, ReLU) -> Linear."""

    def __init__(self, input_dim: int, num_classes: int, depth: int = 2, width: int = 256,
                 init: str = "he"):
        super().__init__()
        layers: list[nn.Module] = []
        d = input_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(d, num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x.flatten(1)))


# ---------------------------------------------------------------- SimpleCNN (paper D)


class SimpleCNN(nn.Module):
    """Break-even paper's SimpleCNN: conv(same)-conv(valid)-pool, twice, then FC-FC.

    Channels (c1, c1, c2, c2) = widths; ReLU; Glorot-uniform by default; optional BN
    after every convolution (SimpleCNN-BN).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int,
                 widths: tuple[int, int] = (32, 64), hidden: int = 128,
                 batch_norm: bool = False, init: str = "glorot"):
        super().__init__()
        c1, c2 = widths

        def conv(cin, cout, pad):
            mods = [nn.Conv2d(cin, cout, 3, padding=pad)]
            if batch_norm:
                mods.append(nn.BatchNorm2d(cout))
            return mods + [nn.ReLU()]

        self.features = nn.Sequential(
            *conv(in_channels, c1, 1), *conv(c1, c1, 0), nn.MaxPool2d(2),
            *conv(c1, c2, 1), *conv(c2, c2, 0), nn.MaxPool2d(2),
        )
        side = ((image_size - 2) // 2 - 2) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------- VGG (paper B, paper scale)

VGG_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
}


class VGG(nn.Module):
    """CIFAR-style VGG with BN: conv3x3-BN-ReLU stacks, max-pools, one linear classifier."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, cfg: str = "vgg11",
                 width_factor: float = 1.0, init: str = "he"):
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_channels, image_size
        for v in VGG_CFGS[cfg]:
            if v == "M":
                if side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
            else:
                w = max(1, int(round(v * width_factor)))
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * side * side, num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


# ---------------------------------------------------------------- pre-activation ResNet (paper A)


class PreActBlock(nn.Module):
    """h_out = P(h) + F(h), F = Conv3x3(ReLU(BN(Conv3x3(ReLU(BN(h)))))).

    P is the identity except in the first block of a stage that changes width or
    resolution, where it is a strided 1x1 convolution of the pre-activated input
    (He et al.'s pre-activation shortcut). The conv modules may be shared between blocks
    (parameter sharing); the BN modules may be shared too ("naive" sharing) or owned by
    each block ("unshared BN").
    """

    def __init__(self, bn1: nn.Module, conv1: nn.Conv2d, bn2: nn.Module, conv2: nn.Conv2d,
                 projection: nn.Module | None = None):
        super().__init__()
        self.bn1, self.conv1, self.bn2, self.conv2 = bn1, conv1, bn2, conv2
        self.projection = projection

    def base_and_residual(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(h), F(h)): the representation F is added to, and the residual branch."""
        a = F.relu(self.bn1(h))
        base = h if self.projection is None else self.projection(a)
        return base, self.conv2(F.relu(self.bn2(self.conv1(a))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        base, f = self.base_and_residual(h)
        return base + f


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class PreActResNet(nn.Module):
    """Pre-activation ResNet (He et al. 2016) for CIFAR-sized inputs.

    stem Conv3x3(in, widths[0]); one stage per width with `blocks_per_stage` blocks; the
    first block of a later stage downsamples by 2 with a 1x1 projection shortcut
    (`downsample="conv"`, CIFAR ResNet-32/56/110), or the stages are separated by a 2x2
    average pool with no parameters (`"avgpool"`, widths must be equal), or nothing
    changes resolution (`"none"`, a single-representation network: one stage).
    Head: BN -> ReLU -> global average pool -> Linear.

    Sharing: the top `shared_blocks` blocks of every stage reuse one pair of convolutions.
    `shared_bn="naive"` shares their BN layers too; `"unshared"` gives each step its own BN
    (own statistics and gamma/beta) with gamma initialised to `unshared_gamma` (0.1).
    """

    def __init__(self, in_channels: int, num_classes: int, widths=(16, 32, 64), blocks_per_stage: int = 5,
                 downsample: str = "conv", shared_blocks: int = 0, shared_bn: str = "unshared",
                 unshared_gamma: float = 0.1, init: str = "he"):
        super().__init__()
        if downsample not in ("conv", "avgpool", "none"):
            raise ValueError(f"downsample must be conv, avgpool or none, got {downsample!r}")
        if downsample == "avgpool" and len(set(widths)) != 1:
            raise ValueError(f"downsample='avgpool' needs equal widths per stage, got {list(widths)}")
        if not 0 <= shared_blocks < blocks_per_stage:
            raise ValueError(f"shared_blocks={shared_blocks} must be below blocks_per_stage={blocks_per_stage}")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.pools = nn.ModuleList()
        self.stages = nn.ModuleList()
        for s, w in enumerate(widths):
            cin = widths[s - 1] if s else w
            self.pools.append(nn.AvgPool2d(2) if s and downsample == "avgpool" else nn.Identity())
            stride = 2 if s and downsample == "conv" else 1
            first = PreActBlock(nn.BatchNorm2d(cin), _conv3(cin, w, stride), nn.BatchNorm2d(w), _conv3(w, w),
                                nn.Conv2d(cin, w, 1, stride=stride, bias=False) if (cin, stride) != (w, 1) else None)
            self.stages.append(nn.ModuleList([first] + self._rest(w, blocks_per_stage - 1, shared_blocks, shared_bn)))
        self.head_bn = nn.BatchNorm2d(widths[-1])
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self, init)
        for m in self.modules():
            if getattr(m, "unshared_step", False):
                with torch.no_grad():
                    m.weight.fill_(unshared_gamma)

    @staticmethod
    def _rest(w: int, n: int, n_shared: int, shared_bn: str) -> list[PreActBlock]:
        blocks = [PreActBlock(nn.BatchNorm2d(w), _conv3(w, w), nn.BatchNorm2d(w), _conv3(w, w))
                  for _ in range(n - n_shared)]
        if n_shared:
            conv1, conv2 = _conv3(w, w), _conv3(w, w)
            if shared_bn == "naive":
                bn1, bn2 = nn.BatchNorm2d(w), nn.BatchNorm2d(w)
                blocks += [PreActBlock(bn1, conv1, bn2, conv2) for _ in range(n_shared)]
            elif shared_bn == "unshared":
                for _ in range(n_shared):
                    bn1, bn2 = nn.BatchNorm2d(w), nn.BatchNorm2d(w)
                    bn1.unshared_step = bn2.unshared_step = True
                    blocks.append(PreActBlock(bn1, conv1, bn2, conv2))
            else:
                raise ValueError(f"shared_bn must be 'naive' or 'unshared', got {shared_bn!r}")
        return blocks

    # -- block access for paper A
    def block_index(self) -> list[tuple[int, int]]:
        """(stage, position in stage) for every block, in forward order."""
        return [(s, i) for s, stage in enumerate(self.stages) for i in range(len(stage))]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Classifier applied to a last-stage representation: BN -> ReLU -> pool -> FC."""
        return self.fc(F.relu(self.head_bn(h)).mean(dim=(2, 3)))

    def forward_trace(self, x: torch.Tensor, drop: frozenset[int] = frozenset()):
        """Forward pass that also returns, for every block i, h_i and F_i(h_i).

        h_i is the representation the residual is added to (the block input, or its
        projection P(h) in a downsampling block), so h_{i+1} = h_i + F_i(h_i) holds for
        every block. Returns (logits, hs, fs) with all tensors in the autograd graph, so
        one backward of the loss gives dL/dh_i for every block. Blocks in `drop` (global
        indices) contribute no residual (F recorded as None).
        """
        h = self.stem(x)
        hs, fs, k = [], [], 0
        for pool, stage in zip(self.pools, self.stages):
            h = pool(h)
            for block in stage:
                base, f = block.base_and_residual(h)
                hs.append(base)
                fs.append(None if k in drop else f)
                h = base if k in drop else base + f
                k += 1
        return self.head(h), hs, fs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for pool, stage in zip(self.pools, self.stages):
            h = pool(h)
            for block in stage:
                h = block(h)
        return self.head(h)


# ---------------------------------------------------------------- factory


def resnet_depth_to_blocks(depth: int) -> int:
    """CIFAR ResNet-(6n+2) naming: ResNet-32 -> 5 blocks per stage, ResNet-110 -> 18."""
    if (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 56, 110 ...), got {depth}")
    return (depth - 2) // 6


def build_model(spec: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a model from its config dict: {"name": mlp|simplecnn|resnet|vgg, ...kwargs}."""
    spec = dict(spec)
    name = spec.pop("name")
    c, side = input_shape[0], input_shape[-1]
    if name == "mlp":
        return MLP(math.prod(input_shape), num_classes, **spec)
    if name == "simplecnn":
        if "widths" in spec:
            spec["widths"] = tuple(spec["widths"])
        return SimpleCNN(c, side, num_classes, **spec)
    if name == "vgg":
        return VGG(c, side, num_classes, **spec)
    if name == "resnet":
        if "depth" in spec:
            spec["blocks_per_stage"] = resnet_depth_to_blocks(spec.pop("depth"))
        spec["widths"] = tuple(spec.get("widths", (16, 32, 64)))
        return PreActResNet(c, num_classes, **spec)
    raise ValueError(f"unknown model name {name!r}; use mlp, simplecnn, resnet or vgg")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
