"""A small fast CNN for 8×8 digits, MNIST or CIFAR thumbnails; trains in seconds on a CPU.

conv3×3(w)-BN-act → conv3×3(w)-BN-act → max pool 2 → conv3×3(2w)-BN-act → global average pool → linear.
Any input of at least 2×2 works. Not from a paper: init is conv He-normal fan_out, BN γ = 1, β = 0,
linear PyTorch default with bias 0.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import get_act

from .layers import ActSpec, ConvBnAct, check_positive
from .registry import register_model


class SimpleCNN(nn.Module):
    """Three conv-BN-act layers, one max pool, global average pool, linear."""

    def __init__(
        self, num_classes: int, in_channels: int = 3, act: ActSpec = "relu", width: int = 32
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, width=width)
        act = get_act(act)
        self.features = nn.Sequential(
            ConvBnAct(in_channels, width, 3, 1, act),
            ConvBnAct(width, width, 3, 1, act),
            nn.MaxPool2d(2),
            ConvBnAct(width, 2 * width, 3, 1, act),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 2w, H/2, W/2)
        return self.head(x)  # (N, num_classes)


@register_model
def simple_cnn(num_classes: int, in_channels: int = 3, act: ActSpec = "relu", width: int = 32) -> SimpleCNN:
    """Small CNN for quick experiments (8×8 digits, MNIST, CIFAR).

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images.
        act: activation spec; a fresh module at each of 3 places.
        width: channels of the first two convs; the third has twice as many.
    """
    return SimpleCNN(num_classes, in_channels, act, width)
