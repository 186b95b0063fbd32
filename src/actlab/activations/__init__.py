"""The activation library: pure math → thin modules → memory-lean autograd ops → registry."""

from .autograd import Kernel
from .info import ActInfo, act_curve, act_info
from .modules import (
    EIS,
    GELU,
    PAU,
    SMU,
    SMU1,
    ErfAct,
    HardSwish,
    KernelActivation,
    Logish,
    Mish,
    PReLU,
    Pserf,
    Serf,
    SiLU,
    SmoothMax,
    Softplus,
    Swish,
    TanhExp,
    TanhSoft,
)
from .registry import ActFactory, get_act, list_acts, parse_spec, register_act
from .swap import swap_acts

__all__ = [
    "EIS",
    "GELU",
    "PAU",
    "SMU",
    "SMU1",
    "ActFactory",
    "ActInfo",
    "ErfAct",
    "HardSwish",
    "Kernel",
    "KernelActivation",
    "Logish",
    "Mish",
    "PReLU",
    "Pserf",
    "Serf",
    "SiLU",
    "SmoothMax",
    "Softplus",
    "Swish",
    "TanhExp",
    "TanhSoft",
    "act_curve",
    "act_info",
    "get_act",
    "list_acts",
    "parse_spec",
    "register_act",
    "swap_acts",
]
