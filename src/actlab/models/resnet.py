"""CIFAR ResNets (He et al. 2016, arXiv:1512.03385 §4.2) and pre-activation ResNets (arXiv:1603.05027).

CIFAR ResNet-(6n+2): conv3×3(16)-BN-act, three stages of n basic blocks at 16/32/64 channels (strides
1/2/2), global average pool, linear. The shortcut is option A by default, as the paper uses on CIFAR:
identity, or when the shape changes a stride-2 subsample with zero channels appended (fb.resnet.torch's
``shortcutType A``: no parameters). ``shortcut="B"`` uses a 1×1 conv-BN projection there instead.

Pre-activation ResNet-18/50 (CIFAR stem as in kuangliu/pytorch-cifar): conv3×3(64), stages 64/128/256/512
(strides 1/2/2/2) of BN-act-conv units, a projection shortcut (1×1 conv, no BN) taken from the
pre-activated input where the shape changes, then a final BN-act before the pool (as in the paper's
code; kuangliu omits it), global average pool, linear. Bottleneck expansion 4 for ResNet-50.

Init for both (fb.resnet.torch, which the papers' CIFAR code builds on): conv He-normal fan_out
(std √(2/(k²·C_out))), BN γ = 1, β = 0, linear weight PyTorch default, linear bias 0. The init never
depends on ``act`` (same seed → same weights for every activation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import get_act

from .layers import ActBuilder, ActSpec, ConvBnAct, check_positive
from .registry import register_model

CIFAR_WIDTHS = (16, 32, 64)
CIFAR_STRIDES = (1, 2, 2)
PREACT_WIDTHS = (64, 128, 256, 512)
PREACT_STRIDES = (1, 2, 2, 2)
PREACT_BLOCKS = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}


# ------------------------------------------------------------------------------------------------
# CIFAR ResNet (post-activation)


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and append zero channels up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (N, C_in, ⌈H/s⌉, ⌈W/s⌉), the conv path's size
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (N, C_out, ...)


def _shortcut(in_channels: int, out_channels: int, stride: int, kind: str) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return ConvBnAct(in_channels, out_channels, 1, stride)  # option B: 1×1 conv-BN projection


class BasicBlock(nn.Module):
    """conv3×3-BN-act → conv3×3-BN, plus the shortcut, then act (the original post-activation unit)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, act: ActBuilder, shortcut: str):
        super().__init__()
        self.conv1 = ConvBnAct(in_channels, out_channels, 3, stride, act)
        self.conv2 = ConvBnAct(out_channels, out_channels, 3, 1)
        self.shortcut = _shortcut(in_channels, out_channels, stride, shortcut)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.act(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 images: three stages of n basic blocks at 16/32/64 channels."""

    def __init__(
        self, depth: int, num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}"
            )
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero-padding) or 'B' (projection), got {shortcut!r}")
        act = get_act(act)
        blocks_per_stage = (depth - 2) // 6
        self.stem = ConvBnAct(in_channels, CIFAR_WIDTHS[0], 3, 1, act)
        stages, width = [], CIFAR_WIDTHS[0]
        for out, stride in zip(CIFAR_WIDTHS, CIFAR_STRIDES, strict=True):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(width, out, stride if i == 0 else 1, act, shortcut))
                width = out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 16, H, W)
        x = self.stages(x)  # (N, 64, H/4, W/4)
        return self.head(x)  # (N, num_classes)


# ------------------------------------------------------------------------------------------------
# Pre-activation ResNet


class PreActBasic(nn.Module):
    """BN-act-conv3×3 → BN-act-conv3×3, plus the shortcut; no activation after the add."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, act: ActBuilder) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(in_channels), act()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(planes), act()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = _projection(in_channels, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))  # the pre-activation also feeds a projection shortcut
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-act-conv1×1 → BN-act-conv3×3 (stride) → BN-act-conv1×1 (×4 channels), plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, act: ActBuilder) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(in_channels), act()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(planes), act()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3, self.act3 = nn.BatchNorm2d(planes), act()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.shortcut = _projection(in_channels, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.act3(self.bn3(out)))
        return out + shortcut


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class PreActResNet(nn.Module):
    """Pre-activation ResNet with a CIFAR stem (conv3×3, stride 1, no max pool)."""

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if depth not in PREACT_BLOCKS:
            raise ValueError(
                f"pre-activation ResNet depth must be one of {sorted(PREACT_BLOCKS)}, got {depth!r}"
            )
        act = get_act(act)
        kind, counts = PREACT_BLOCKS[depth]
        block = PreActBasic if kind == "basic" else PreActBottleneck
        self.stem = nn.Conv2d(in_channels, PREACT_WIDTHS[0], 3, 1, 1, bias=False)
        stages, width = [], PREACT_WIDTHS[0]
        for planes, count, stride in zip(PREACT_WIDTHS, counts, PREACT_STRIDES, strict=True):
            blocks = []
            for i in range(count):
                blocks.append(block(width, planes, stride if i == 0 else 1, act))
                width = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final_bn, self.final_act = nn.BatchNorm2d(width), act()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 64, H, W)
        x = self.stages(x)  # (N, 512·expansion, H/8, W/8)
        x = self.final_act(self.final_bn(x))
        return self.head(x)  # (N, num_classes)


def _init_weights(model: nn.Module) -> None:
    """fb.resnet.torch init: conv He-normal fan_out, BN γ = 1, β = 0, linear bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------------
# Builders


@register_model
def resnet20(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
) -> CifarResNet:
    """ResNet-20 for CIFAR (He et al. 2016): 3 stages × 3 basic blocks at 16/32/64 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 19 places (stem + 2 per block).
        shortcut: "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 conv-BN projection).
    """
    return CifarResNet(20, num_classes, in_channels, act, shortcut)


@register_model
def resnet32(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
) -> CifarResNet:
    """ResNet-32 for CIFAR (He et al. 2016): 3 stages × 5 basic blocks at 16/32/64 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 31 places (stem + 2 per block).
        shortcut: "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 conv-BN projection).
    """
    return CifarResNet(32, num_classes, in_channels, act, shortcut)


@register_model
def resnet44(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
) -> CifarResNet:
    """ResNet-44 for CIFAR (He et al. 2016): 3 stages × 7 basic blocks at 16/32/64 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 43 places (stem + 2 per block).
        shortcut: "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 conv-BN projection).
    """
    return CifarResNet(44, num_classes, in_channels, act, shortcut)


@register_model
def resnet56(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
) -> CifarResNet:
    """ResNet-56 for CIFAR (He et al. 2016): 3 stages × 9 basic blocks at 16/32/64 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 55 places (stem + 2 per block).
        shortcut: "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 conv-BN projection).
    """
    return CifarResNet(56, num_classes, in_channels, act, shortcut)


@register_model
def resnet110(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", shortcut: str = "A"
) -> CifarResNet:
    """ResNet-110 for CIFAR (He et al. 2016): 3 stages × 18 basic blocks at 16/32/64 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 109 places (stem + 2 per block).
        shortcut: "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 conv-BN projection).
    """
    return CifarResNet(110, num_classes, in_channels, act, shortcut)


@register_model
def preact_resnet18(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> PreActResNet:
    """Pre-activation ResNet-18, CIFAR stem; basic blocks [2, 2, 2, 2] at 64/128/256/512 channels.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 17 places (2 per block + the final BN-act).
    """
    return PreActResNet(18, num_classes, in_channels, act)


@register_model
def preact_resnet50(num_classes: int, in_channels: int = 3, act: ActSpec = "relu") -> PreActResNet:
    """Pre-activation ResNet-50, CIFAR stem; bottleneck blocks [3, 4, 6, 3], expansion 4.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 49 places (3 per block + the final BN-act).
    """
    return PreActResNet(50, num_classes, in_channels, act)
