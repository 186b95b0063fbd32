"""VGG (Simonyan & Zisserman 2014, arXiv:1409.1556) as in the MXNet Gluon model zoo, with ``act`` everywhere.

The Swish-vs-ReLU seed experiment trains Gluon's ``vgg16_bn`` on 32×32 CIFAR-10: conv 3×3 pad 1 (with bias)
→ BatchNorm (eps 1e-5, MXNet momentum 0.9 = torch 0.1) → act, a 2×2 max pool after each stage, then
Dense(4096) → act → Dropout(0.5) → Dense(4096) → act → Dropout(0.5) → Dense(classes). The activation is
used in the conv AND the dense layers, as Gluon's ``Dense(4096, activation=...)`` does.

Init (Gluon): conv weights He-normal fan_out (``Xavier(gaussian, 'out', 2)``), dense weights N(0, 0.01),
all biases 0; BN γ = 1, β = 0. Gluon ``vgg16_bn`` for 10 classes has 33,646,666 parameters; so does this.

actlab extension: max pools use ``ceil_mode=True`` and an adaptive average pool to 1×1 sits before the
head, so any input ≥ 1×1 works (8×8 digits, 28×28 MNIST). For H and W divisible by 32 the pools equal
Gluon's; at exactly 32×32 the feature map is already 1×1 and the network is identical to Gluon's. At larger
sizes (e.g. 64×64) Gluon would flatten a 2×2×512 map into the first Dense layer; here it is averaged to 512.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import get_act

from .layers import ActBuilder, ActSpec, ConvBnAct, check_positive
from .registry import register_model

# depth → (conv layers per stage, filters per stage); Gluon's ``vgg_spec``.
VGG_SPEC: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    11: ((1, 1, 2, 2, 2), (64, 128, 256, 512, 512)),
    13: ((2, 2, 2, 2, 2), (64, 128, 256, 512, 512)),
    16: ((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)),
    19: ((2, 2, 4, 4, 4), (64, 128, 256, 512, 512)),
}


def _features(in_channels: int, depth: int, act: ActBuilder, batch_norm: bool) -> nn.Sequential:
    """The conv stages: ``layers`` × [conv3×3 → (BN) → act], then a 2×2 max pool, per stage."""
    stages = []
    for num_convs, filters in zip(*VGG_SPEC[depth], strict=True):
        convs = []
        for _ in range(num_convs):
            convs.append(ConvBnAct(in_channels, filters, 3, act=act, bias=True, bn=batch_norm))
            in_channels = filters
        stages.append(nn.Sequential(*convs, nn.MaxPool2d(2, 2, ceil_mode=True)))
    return nn.Sequential(*stages)


class VGG(nn.Module):
    """VGG-11/13/16/19, with or without batch norm, Gluon layout; the activation in conv and dense layers."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        in_channels: int = 3,
        act: ActSpec = "relu",
        batch_norm: bool = True,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, hidden=hidden)
        if depth not in VGG_SPEC:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_SPEC)}, got {depth!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        act = get_act(act)
        self.features = _features(in_channels, depth, act, batch_norm)
        self.pool = nn.AdaptiveAvgPool2d(1)  # actlab extension; a no-op for 32×32 inputs
        width = VGG_SPEC[depth][1][-1]
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width, hidden),
            act(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            act(),
            nn.Dropout(dropout),
        )
        self.output = nn.Linear(hidden, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, ⌈H/32⌉, ⌈W/32⌉)
        x = self.pool(x)  # (N, 512, 1, 1)
        x = self.head(x)  # (N, hidden)
        return self.output(x)  # (N, num_classes)


def _init_weights(model: nn.Module) -> None:
    """Gluon's init: conv He-normal fan_out, dense N(0, 0.01), biases 0 (BN keeps γ = 1, β = 0)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


@register_model
def vgg11(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-11, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 10 places (8 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(11, num_classes, in_channels, act, batch_norm=False, hidden=hidden, dropout=dropout)


@register_model
def vgg13(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-13, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 12 places (10 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(13, num_classes, in_channels, act, batch_norm=False, hidden=hidden, dropout=dropout)


@register_model
def vgg16(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-16, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 15 places (13 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(16, num_classes, in_channels, act, batch_norm=False, hidden=hidden, dropout=dropout)


@register_model
def vgg19(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-19, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 18 places (16 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(19, num_classes, in_channels, act, batch_norm=False, hidden=hidden, dropout=dropout)


@register_model
def vgg11_bn(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-11 with batch norm, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 10 places (8 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(11, num_classes, in_channels, act, batch_norm=True, hidden=hidden, dropout=dropout)


@register_model
def vgg13_bn(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-13 with batch norm, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 12 places (10 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(13, num_classes, in_channels, act, batch_norm=True, hidden=hidden, dropout=dropout)


@register_model
def vgg16_bn(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-16 with batch norm, Gluon model zoo layout (the Swish-vs-ReLU seed model).

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 15 places (13 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(16, num_classes, in_channels, act, batch_norm=True, hidden=hidden, dropout=dropout)


@register_model
def vgg19_bn(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", hidden: int = 4096, dropout: float = 0.5
) -> VGG:
    """VGG-19 with batch norm, Gluon model zoo layout.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 18 places (16 conv, 2 dense).
        hidden: width of the two hidden dense layers (Gluon: 4096).
        dropout: dropout after each hidden dense layer (Gluon: 0.5).
    """
    return VGG(19, num_classes, in_channels, act, batch_norm=True, hidden=hidden, dropout=dropout)
