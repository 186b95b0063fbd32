"""ShuffleNet V2 (Ma et al. 2018, arXiv:1807.11164) with a CIFAR stem, written from the paper.

Stem conv3×3 (stride 1, 24 channels)-BN-act, no max pool (CIFAR: 32×32 stays 32×32); three stages of
[4, 8, 4] units whose first unit halves the resolution; conv1×1-BN-act to the last width; global average
pool; linear. Widths per multiplier (torchvision's table): 0.5 → 24/48/96/192/1024, 1.0 → 24/116/232/464/1024,
1.5 → 24/176/352/704/1024, 2.0 → 24/244/488/976/2048.

Unit (paper Fig. 3c/d): stride 1 splits the channels in half, keeps one half, and sends the other through
conv1×1-BN-act → depthwise conv3×3-BN → conv1×1-BN-act; stride 2 sends the whole input through that branch
(depthwise stride 2) and through a second one, depthwise conv3×3 (stride 2)-BN → conv1×1-BN-act. The two
halves are concatenated and the channels shuffled (2 groups). No activation after a depthwise conv.

Init (the authors' megvii-model/ShuffleNet-Series code): stem conv N(0, 0.01), other convs
N(0, 1/C_in-per-group), BN γ = 1, β = 1e-4, linear N(0, 0.01) with bias 0. Not in the paper: no dropout
before the classifier (torchvision has none; the authors' code uses 0.2 only for the 2.0× model).
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import get_act

from .layers import ActBuilder, ActSpec, ConvBnAct, check_positive
from .registry import register_model

# width multiplier → output channels of (stem, stage 2, stage 3, stage 4, last conv)
STAGE_OUT_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups: (N, g·c, H, W) → view (N, g, c) → transpose → flatten."""
    n, channels, h, w = x.shape
    x = x.view(n, groups, channels // groups, h, w).transpose(1, 2)
    return x.reshape(n, channels, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet V2 unit: channel split (stride 1) or two strided branches (stride 2); concat; shuffle."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, act: ActBuilder) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"a stride-1 unit keeps its width; got {in_channels} → {out_channels}")
        self.stride = stride
        half = out_channels // 2
        branch_in = in_channels if stride == 2 else half
        if stride == 2:
            self.branch1 = nn.Sequential(
                ConvBnAct(in_channels, in_channels, 3, 2, groups=in_channels),
                ConvBnAct(in_channels, half, 1, act=act),
            )
        else:
            self.branch1 = nn.Identity()  # the kept half of the split
        self.branch2 = nn.Sequential(
            ConvBnAct(branch_in, half, 1, act=act),
            ConvBnAct(half, half, 3, stride, groups=half),
            ConvBnAct(half, half, 1, act=act),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)  # channel split: (N, C/2, H, W) each
        else:
            left, right = x, x
        out = torch.cat((self.branch1(left), self.branch2(right)), dim=1)  # (N, C_out, H/s, W/s)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 at a width multiplier, CIFAR stem (conv3×3 stride 1, no max pool)."""

    def __init__(
        self, width_mult: float, num_classes: int, in_channels: int = 3, act: ActSpec = "relu"
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if width_mult not in STAGE_OUT_CHANNELS:
            raise ValueError(f"width_mult must be one of {sorted(STAGE_OUT_CHANNELS)}, got {width_mult!r}")
        act = get_act(act)
        stem, *stage_widths, last = STAGE_OUT_CHANNELS[width_mult]
        self.stem = ConvBnAct(in_channels, stem, 3, 1, act)
        stages, width = [], stem
        for repeats, out in zip(STAGE_REPEATS, stage_widths, strict=True):
            units = [ShuffleUnit(width, out, 2, act)]
            units += [ShuffleUnit(out, out, 1, act) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            width = out
        self.stages = nn.Sequential(*stages)
        self.last_conv = ConvBnAct(width, last, 1, act=act)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, num_classes))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 24, H, W)
        x = self.stages(x)  # (N, C4, H/8, W/8)
        x = self.last_conv(x)  # (N, last, H/8, W/8)
        return self.head(x)  # (N, num_classes)


def _init_weights(model: ShuffleNetV2) -> None:
    """The authors' init: stem conv N(0, 0.01), other convs N(0, 1/fan-in channels), BN β = 1e-4."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            std = 0.01 if m is model.stem.conv else 1.0 / m.weight.shape[1]
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.constant_(m.bias, 1e-4)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


@register_model
def shufflenet_v2_x0_5(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> ShuffleNetV2:
    """ShuffleNet V2 0.5×, CIFAR stem; widths 24/48/96/192/1024.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 37 places (stem, 2 per unit, 1 more per
            strided unit, last conv).
    """
    return ShuffleNetV2(0.5, num_classes, in_channels, act)


@register_model
def shufflenet_v2_x1_0(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> ShuffleNetV2:
    """ShuffleNet V2 1.0×, CIFAR stem; widths 24/116/232/464/1024.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 37 places (stem, 2 per unit, 1 more per
            strided unit, last conv).
    """
    return ShuffleNetV2(1.0, num_classes, in_channels, act)


@register_model
def shufflenet_v2_x1_5(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> ShuffleNetV2:
    """ShuffleNet V2 1.5×, CIFAR stem; widths 24/176/352/704/1024.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 37 places (stem, 2 per unit, 1 more per
            strided unit, last conv).
    """
    return ShuffleNetV2(1.5, num_classes, in_channels, act)


@register_model
def shufflenet_v2_x2_0(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> ShuffleNetV2:
    """ShuffleNet V2 2.0×, CIFAR stem; widths 24/244/488/976/2048.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 37 places (stem, 2 per unit, 1 more per
            strided unit, last conv).
    """
    return ShuffleNetV2(2.0, num_classes, in_channels, act)
