"""Fully connected networks: a plain MLP and the Mish paper's MNIST depth-experiment network.

``mlp``: Flatten → depth × [Linear(width) → act] → Linear(classes) (→ act with ``out_act``). With
``width=(64, 32, 16)``, ``num_classes=1``, ``out_act=True``, ``in_channels=2``, ``input_size=()`` it is the
randomly initialised network of the Mish output-landscape figure. Init: PyTorch's default (as there).

``mnist_depth`` (Mish repo ``Layers_Acc.ipynb``, Keras): Conv(20, 5×5) → act → Conv(50, 5×5) → act →
MaxPool 2 → Dropout 0.25 → Flatten → N × [Dense(500) → BatchNorm → act → Dropout 0.25] → Dense(classes)
(softmax left to the loss). The convs are 'valid' (no padding). The section's text lists the convs
without an activation, but the notebook's Mish run builds them with ``Conv2D(..., activation=mish)``, so
``conv_act=True`` (the default) puts ``act`` after both; ``conv_act=False`` gives linear convs. Keras
defaults carried over: Glorot-uniform weights, zero biases, BatchNorm eps 1e-3 and momentum 0.99 (torch
momentum 0.01). The flatten size comes from ``input_size`` (28 for MNIST): 50·⌊(s − 8)/2⌋², s ≥ 10.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from actlab.activations import get_act

from .layers import ActSpec, check_positive
from .registry import register_model


def _spatial(input_size: int | Sequence[int]) -> tuple[int, ...]:
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    for s in size:
        check_positive(input_size=s)
    return size


class MLP(nn.Module):
    """Flatten → Linear → act blocks → Linear; the input size fixed by ``in_channels × input_size``."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        act: ActSpec = "relu",
        widths: Sequence[int] = (256, 256),
        input_size: int | Sequence[int] = 32,
        out_act: bool = False,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        for w in widths:
            check_positive(width=w)
        act = get_act(act)
        in_features = in_channels * math.prod(_spatial(input_size))
        layers: list[nn.Module] = [nn.Flatten()]
        for width in widths:
            layers += [nn.Linear(in_features, width), act()]
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        if out_act:
            layers.append(act())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (N, C, *input_size) → (N, num_classes)


class MnistDepth(nn.Module):
    """Two valid 5×5 convs, max pool, then ``num_dense`` × [Dense(500) → BN → act → Dropout]."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        act: ActSpec = "relu",
        num_dense: int = 12,
        width: int = 500,
        input_size: int = 28,
        conv_act: bool = True,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, width=width, input_size=input_size)
        if num_dense < 0:
            raise ValueError(f"num_dense must be >= 0, got {num_dense!r}")
        if input_size < 10:
            raise ValueError(
                f"input_size must be >= 10 (two valid 5×5 convs and a 2×2 pool), got {input_size}"
            )
        act = get_act(act)
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.act1 = act() if conv_act else nn.Identity()
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.act2 = act() if conv_act else nn.Identity()
        self.pool = nn.Sequential(nn.MaxPool2d(2), nn.Dropout(dropout), nn.Flatten())
        features = 50 * ((input_size - 8) // 2) ** 2
        dense = []
        for _ in range(num_dense):
            dense += [
                nn.Linear(features, width),
                nn.BatchNorm1d(width, eps=1e-3, momentum=0.01),  # Keras defaults
                act(),
                nn.Dropout(dropout),
            ]
            features = width
        self.dense = nn.Sequential(*dense)
        self.output = nn.Linear(features, num_classes)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.conv1(x))  # (N, 20, s-4, s-4)
        x = self.act2(self.conv2(x))  # (N, 50, s-8, s-8)
        x = self.pool(x)  # (N, 50·⌊(s-8)/2⌋²)
        x = self.dense(x)  # (N, 500)
        return self.output(x)  # (N, num_classes)


def _keras_init(model: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


@register_model
def mlp(
    num_classes: int,
    in_channels: int = 3,
    act: ActSpec = "relu",
    depth: int | None = None,
    width: int | Sequence[int] = 256,
    input_size: int | Sequence[int] = 32,
    out_act: bool = False,
) -> MLP:
    """Multi-layer perceptron on the flattened input.

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input (features of a vector input, with ``input_size=()``).
        act: activation spec; a fresh module after each hidden layer (``depth`` places, +1 with out_act).
        depth: number of hidden Linear → act blocks (default 2; with a sequence ``width``, its length).
        width: width of every hidden layer, or a sequence giving each hidden width.
        input_size: spatial size of the input: an int for square images, a tuple of dims, or () for vectors.
        out_act: also apply the activation to the output (the Mish output-landscape network does).
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    if isinstance(width, int):
        widths: tuple[int, ...] = (width,) * (2 if depth is None else depth)
    else:
        widths = tuple(width)
        if depth is not None and depth != len(widths):
            raise ValueError(f"depth={depth} but width lists {len(widths)} hidden layers: {widths}")
    return MLP(num_classes, in_channels, act, widths, input_size, out_act)


@register_model
def mnist_depth(
    num_classes: int,
    in_channels: int = 3,
    act: ActSpec = "relu",
    num_dense: int = 12,
    input_size: int = 28,
    conv_act: bool = True,
) -> MnistDepth:
    """The Mish depth-experiment network (MNIST; the paper sweeps num_dense 12…22 = "15…25 layers").

    Args:
        num_classes: size of the output layer.
        in_channels: channels of the input images (1 for MNIST).
        act: activation spec; a fresh module at each of num_dense (+2 with conv_act) places.
        num_dense: number of Dense(500) → BatchNorm → act → Dropout(0.25) blocks.
        input_size: side of the square input images (28 for MNIST; at least 10).
        conv_act: put the activation after both convs, as the notebook's Mish run does.
    """
    return MnistDepth(num_classes, in_channels, act, num_dense, input_size=input_size, conv_act=conv_act)
