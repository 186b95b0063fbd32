"""Small blocks shared by the architectures; each takes an activation factory and calls it per place."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from actlab.activations import ActFactory

# What a model's ``act`` argument may be; ``actlab.activations.get_act`` turns it into a factory.
ActSpec = str | type[nn.Module] | nn.Module | Callable[[], nn.Module] | ActFactory
# What blocks receive: something that returns a fresh activation module on every call.
ActBuilder = Callable[[], nn.Module]


def check_positive(**values: int) -> None:
    """``ValueError`` naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class ConvBnAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation; ``bn=False`` or ``act=None`` leave those parts out.

    Children are named ``conv``, ``bn``, ``act`` so state-dict keys say what they hold.
    ``zero_bn`` starts the BN scale γ at 0 (the residual branch starts as the identity; Goyal et al. 2017).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: ActBuilder | None = None,
        *,
        groups: int = 1,
        bias: bool = False,
        bn: bool = True,
        zero_bn: bool = False,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias
        )
        if bn:
            layers["bn"] = nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)
            if zero_bn:
                nn.init.zeros_(layers["bn"].weight)
        if act is not None:
            layers["act"] = act()
        super().__init__(layers)
