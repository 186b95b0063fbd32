"""What an activation is: formula, paper, defaults, and shape properties measured numerically."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from .registry import get_act, get_entry, parse_spec

_GRID = np.linspace(-20.0, 20.0, 8001)  # step 0.005


@dataclass(frozen=True)
class ActInfo:
    """Metadata of one activation; the properties are measured on a float64 grid, not claimed."""

    name: str
    spec: str
    formula: str
    paper: str
    defaults: dict[str, Any]
    learnable: list[str]
    minimum: float | None  # global minimum on [-20, 20], None when the infimum is at the left edge
    argmin: float | None
    bounded_below: bool
    bounded_above: bool
    monotonic: bool
    smooth: bool  # continuous first derivative (C¹) on the grid
    value_at_zero: float
    slope_at_zero: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _eval(module: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = module(t)
    (dy,) = torch.autograd.grad(y.sum(), t)
    return y.detach().numpy(), dy.numpy()


def act_curve(spec, lo: float = -5.0, hi: float = 5.0, points: int = 1001):
    """``(x, f(x), f'(x))`` of an activation on [lo, hi] as float64 NumPy arrays (f' by autograd)."""
    module = get_act(spec)().double().eval()
    x = np.linspace(lo, hi, points)
    return (x, *_eval(module, x))


def _scalar(module: torch.nn.Module, x: float) -> float:
    with torch.no_grad():
        return float(module(torch.tensor([x], dtype=torch.float64))[0])


def act_info(spec: str) -> ActInfo:
    """Describe ``spec`` (a name or ``"name(key=value)"``) with measured properties."""
    name, _ = parse_spec(spec)
    entry = get_entry(name)
    module = get_act(spec)().double().eval()
    y, dy = _eval(module, _GRID)
    i = int(np.argmin(y))
    minimum = argmin = None
    if 0 < i < len(_GRID) - 1:
        res = minimize_scalar(
            lambda v: _scalar(module, v),
            bounds=(_GRID[i - 1], _GRID[i + 1]),
            method="bounded",
            options={"xatol": 1e-10},
        )
        minimum, argmin = float(res.fun), float(res.x)
    far = [_scalar(module, v) for v in (-1e4, -1e8, 1e4, 1e8)]
    jumps = np.abs(np.diff(dy))
    return ActInfo(
        name=entry.name,
        spec=spec,
        formula=entry.formula,
        paper=entry.paper,
        defaults=entry.keywords(),
        learnable=[n for n, _ in module.named_parameters()],
        minimum=minimum,
        argmin=argmin,
        bounded_below=bool(np.isfinite(far[1]) and abs(far[1] - far[0]) <= 1e-6 * (1 + abs(far[0]))),
        bounded_above=bool(np.isfinite(far[3]) and abs(far[3] - far[2]) <= 1e-6 * (1 + abs(far[2]))),
        monotonic=bool(np.all(dy >= -1e-12)),
        smooth=bool(jumps.max() < 0.05),
        value_at_zero=_scalar(module, 0.0),
        slope_at_zero=float(_eval(module, np.array([0.0]))[1][0]),
    )
