"""XResNet: ResNet with the bag-of-tricks tweaks (He et al. 2018, arXiv:1812.01187), fastai v1 / MXResNet.

As in lessw2020/Ranger-Mish-ImageWoof-5 ``mxresnet.py`` (fastai v1 XResNet, every ReLU → ``act``):
stem conv3×3-BN-act in → 32 → 64 → 64 (first stride 2), max pool 3/2/1, four stages at 64/128/256/512
(strides 1/2/2/2) of basic blocks ([2,2,2,2] for 18, [3,4,6,3] for 34) or bottlenecks ×4 ([3,4,6,3] for
50); the last BN of each block starts with γ = 0; the shortcut is avg-pool 2×2 (ceil mode, where strided)
then conv1×1-BN (where the width changes); act after the residual add; global average pool; linear.

``sa=True`` adds one SimpleSelfAttention layer, o = γ·(x xᵀ)(W x) + x with W a spectral-normalised 1×1
Conv1d without bias and γ starting at 0, only in the last block of stage 1, after the conv path and before
the add (MXResNet). ``sym=True`` uses (W + Wᵀ)/2. (In MXResNet the ``sym`` assignment is overwritten by the
spectral-norm hook before the conv runs, so it has no effect there; here it does what it says.)

Init (fastai ``init_cnn``): conv and linear weights Kaiming-normal (fan_in, ReLU gain), every bias 0, BN
γ = 1 except the zero-initialised ones; the attention conv Kaiming-normal before spectral normalisation.
Each place gets its own activation module (fastai shared one global instance; harmless for Mish, wrong for
learnable activations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from actlab.activations import get_act

from .layers import ActBuilder, ActSpec, ConvBnAct, check_positive
from .registry import register_model

STEM_SIZES = (32, 64, 64)
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
# depth → (expansion, blocks per stage); expansion 1 = basic block, 4 = bottleneck
XRESNET_SPEC: dict[int, tuple[int, tuple[int, int, int, int]]] = {
    18: (1, (2, 2, 2, 2)),
    34: (1, (3, 4, 6, 3)),
    50: (4, (3, 4, 6, 3)),
}


class SimpleSelfAttention(nn.Module):
    """o = γ·(x xᵀ)(W x) + x over the flattened positions; W spectral-normalised 1×1 conv, γ starts at 0."""

    def __init__(self, channels: int, sym: bool = False) -> None:
        super().__init__()
        conv = nn.Conv1d(channels, channels, 1, bias=False)
        nn.init.kaiming_normal_(conv.weight)
        self.conv = spectral_norm(conv)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.sym = sym

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # (N, C, HW)
        weight = self.conv.weight  # (C, C, 1), spectral-normalised on access
        if self.sym:
            weight = (weight + weight.transpose(0, 1)) / 2
        wx = F.conv1d(flat, weight)  # (N, C, HW)
        xxt = torch.bmm(flat, flat.transpose(1, 2))  # (N, C, C); (x xᵀ)(W x) costs O(C²·HW), not O(HW²)
        out = self.gamma * torch.bmm(xxt, wx) + flat
        return out.view_as(x)


class ResBlock(nn.Module):
    """Basic (expansion 1) or bottleneck (expansion 4) block; act after the residual add."""

    def __init__(
        self,
        expansion: int,
        in_channels: int,
        hidden: int,
        stride: int,
        act: ActBuilder,
        sa: bool = False,
        sym: bool = False,
    ) -> None:
        super().__init__()
        out_channels = hidden * expansion
        if expansion == 1:
            self.convs = nn.Sequential(
                ConvBnAct(in_channels, hidden, 3, stride, act),
                ConvBnAct(hidden, out_channels, 3, 1, zero_bn=True),
            )
        else:
            self.convs = nn.Sequential(
                ConvBnAct(in_channels, hidden, 1, 1, act),
                ConvBnAct(hidden, hidden, 3, stride, act),
                ConvBnAct(hidden, out_channels, 1, 1, zero_bn=True),
            )
        self.sa = SimpleSelfAttention(out_channels, sym) if sa else nn.Identity()
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride != 1 else nn.Identity()
        self.idconv = (
            ConvBnAct(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sa(self.convs(x))  # (N, C_out, H/s, W/s)
        return self.act(out + self.idconv(self.pool(x)))


class XResNet(nn.Module):
    """fastai v1 XResNet / MXResNet: deep stem, avg-pool shortcuts, zero-γ block ends."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        in_channels: int = 3,
        act: ActSpec = "relu",
        sa: bool = False,
        sym: bool = False,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if depth not in XRESNET_SPEC:
            raise ValueError(f"XResNet depth must be one of {sorted(XRESNET_SPEC)}, got {depth!r}")
        act = get_act(act)
        expansion, counts = XRESNET_SPEC[depth]
        sizes = (in_channels, *STEM_SIZES)
        self.stem = nn.Sequential(
            *[ConvBnAct(sizes[i], sizes[i + 1], 3, 2 if i == 0 else 1, act) for i in range(len(STEM_SIZES))],
            nn.MaxPool2d(3, 2, 1),
        )
        stages, width = [], STEM_SIZES[-1]
        for stage, (hidden, count, stride) in enumerate(
            zip(STAGE_WIDTHS, counts, STAGE_STRIDES, strict=True)
        ):
            blocks = []
            for i in range(count):
                attend = sa and stage == 0 and i == count - 1  # MXResNet: last block of stage 1 only
                blocks.append(ResBlock(expansion, width, hidden, stride if i == 0 else 1, act, attend, sym))
                width = hidden * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 64, H/4, W/4)
        x = self.stages(x)  # (N, 512·expansion, H/32, W/32)
        return self.head(x)  # (N, num_classes)


def _init_weights(model: nn.Module) -> None:
    """fastai ``init_cnn``: Kaiming-normal (fan_in) conv2d/linear weights, all biases 0; BN γ untouched."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight)
        if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d) and m.bias is not None:
            nn.init.zeros_(m.bias)


@register_model
def xresnet18(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", sa: bool = False, sym: bool = False
) -> XResNet:
    """XResNet-18 (fastai v1 / MXResNet): basic blocks [2, 2, 2, 2].

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 19 places (3 stem, 2 per block).
        sa: add SimpleSelfAttention in the last block of stage 1.
        sym: symmetrise the attention weight, (W + Wᵀ)/2.
    """
    return XResNet(18, num_classes, in_channels, act, sa, sym)


@register_model
def xresnet34(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", sa: bool = False, sym: bool = False
) -> XResNet:
    """XResNet-34 (fastai v1 / MXResNet): basic blocks [3, 4, 6, 3].

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 35 places (3 stem, 2 per block).
        sa: add SimpleSelfAttention in the last block of stage 1.
        sym: symmetrise the attention weight, (W + Wᵀ)/2.
    """
    return XResNet(34, num_classes, in_channels, act, sa, sym)


@register_model
def xresnet50(
    num_classes: int, in_channels: int = 3, act: ActSpec = "relu", sa: bool = False, sym: bool = False
) -> XResNet:
    """XResNet-50 (fastai v1 / MXResNet; with act="mish", sa=True the ImageWoof record model).

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 51 places (3 stem, 3 per bottleneck).
        sa: add SimpleSelfAttention (256 channels) in the last block of stage 1.
        sym: symmetrise the attention weight, (W + Wᵀ)/2.
    """
    return XResNet(50, num_classes, in_channels, act, sa, sym)
