"""SqueezeNet 1.1 (Iandola et al. 2016, arXiv:1602.07360; v1.1 from the authors' repo) for CIFAR.

The Mish paper's significance tests train a SqueezeNet on CIFAR-10 (23 runs per activation). Layout:
conv3×3 (stride 1 instead of 1.1's stride 2, so 32×32 inputs keep their size)-act, then v1.1's sequence
maxpool → fire×2 → maxpool → fire×2 → maxpool → fire×4 (max pools 3×3 stride 2, ceil mode: 32 → 16 → 8 → 4),
dropout 0.5, conv1×1 to the classes → act → global average pool. No batch norm (v1.1 has none); every ReLU,
including the one on the class map, becomes ``act``. Fire module: squeeze conv1×1-act, then conv1×1-act
and conv3×3-act side by side, concatenated.

Inputs must be at least 9×9 (three 3×3 max pools). Init (torchvision): convs Kaiming-uniform (fan_in, ReLU
gain), the final conv N(0, 0.01), all biases 0.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import get_act

from .layers import ActBuilder, ActSpec, ConvBnAct, check_positive
from .registry import register_model

STEM_CHANNELS = 64
# (squeeze, expand 1×1, expand 3×3) per fire module; "M" = 3×3 stride-2 max pool. SqueezeNet 1.1 after conv1.
FIRE_CFG: tuple[tuple[int, int, int] | str, ...] = (
    "M",
    (16, 64, 64),
    (16, 64, 64),
    "M",
    (32, 128, 128),
    (32, 128, 128),
    "M",
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
)


def _conv_act(in_channels: int, out_channels: int, kernel_size: int, act: ActBuilder) -> ConvBnAct:
    return ConvBnAct(in_channels, out_channels, kernel_size, act=act, bias=True, bn=False)


class Fire(nn.Module):
    """Fire module: squeeze conv1×1-act, then expand conv1×1-act ‖ conv3×3-act, concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, act: ActBuilder):
        super().__init__()
        self.squeeze = _conv_act(in_channels, squeeze, 1, act)
        self.expand1x1 = _conv_act(squeeze, expand1x1, 1, act)
        self.expand3x3 = _conv_act(squeeze, expand3x3, 3, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)  # (N, squeeze, H, W)
        return torch.cat((self.expand1x1(x), self.expand3x3(x)), dim=1)  # (N, e1 + e3, H, W)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 with a stride-1 conv3×3 stem for 32×32 images."""

    def __init__(
        self, num_classes: int, in_channels: int = 3, act: ActSpec = "relu", dropout: float = 0.5
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        act = get_act(act)
        self.stem = _conv_act(in_channels, STEM_CHANNELS, 3, act)
        layers: list[nn.Module] = []
        width = STEM_CHANNELS
        for item in FIRE_CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                squeeze, e1, e3 = item
                layers.append(Fire(width, squeeze, e1, e3, act))
                width = e1 + e3
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = _conv_act(width, num_classes, 1, act)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 64, H, W)
        x = self.features(x)  # (N, 512, H/8, W/8)
        x = self.classifier(self.dropout(x))  # (N, num_classes, H/8, W/8)
        return self.pool(x)  # (N, num_classes)


def _init_weights(model: SqueezeNet) -> None:
    """torchvision's init: Kaiming-uniform convs, the class conv N(0, 0.01), biases 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if m is model.classifier.conv:
                nn.init.normal_(m.weight, 0.0, 0.01)
            else:
                nn.init.kaiming_uniform_(m.weight)
            nn.init.zeros_(m.bias)


@register_model
def squeezenet(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", dropout: float = 0.5
) -> SqueezeNet:
    """SqueezeNet 1.1 for CIFAR (stride-1 conv3×3 stem), the Mish paper's significance-test model.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 26 places (stem, 3 per fire module, class conv).
        dropout: dropout before the class conv (SqueezeNet: 0.5).
    """
    return SqueezeNet(num_classes, in_channels, act, dropout)
