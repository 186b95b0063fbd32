"""Find activations by name: ``get_act("smu(alpha=0.25, mu=1e6)")`` returns a factory of fresh modules.

A dict, a ``register_act`` decorator/function, ``get_act`` and ``list_acts``. Names are matched
case-insensitively with ``-``/``_`` ignored (``"SMU"``, ``"leaky-relu"``, ``"hardswish"`` all work).
"""

from __future__ import annotations

import ast
import copy
import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from . import modules as M


@dataclass(frozen=True)
class ActEntry:
    """A registered activation: its class, preset keyword values and descriptive metadata."""

    name: str
    cls: type[nn.Module] | Callable[..., nn.Module]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    formula: str = ""
    paper: str = ""

    def keywords(self) -> dict[str, Any]:
        """Every keyword the activation takes, with its default (presets applied)."""
        params = inspect.signature(self.cls).parameters
        found = {
            k: (p.default if p.default is not inspect.Parameter.empty else None)
            for k, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        return {**found, **self.defaults}


class ActFactory:
    """Builds a fresh activation module on every call; ``spec`` is the string that recreates it."""

    def __init__(self, build: Callable[[], nn.Module], spec: str, name: str) -> None:
        self._build, self.spec, self.name = build, spec, name

    def __call__(self) -> nn.Module:
        module = self._build()
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"activation factory {self.spec!r} returned {type(module).__name__}, not nn.Module"
            )
        return module

    def __repr__(self) -> str:
        return f"ActFactory({self.spec!r})"


_REGISTRY: dict[str, ActEntry] = {}


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


def register_act(
    name: str,
    cls: type[nn.Module] | Callable[..., nn.Module] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    formula: str = "",
    paper: str = "",
):
    """Register an activation class (or factory function) under ``name``; usable as a decorator."""

    def add(target):
        if _key(name) in _REGISTRY:
            raise ValueError(f"activation {name!r} is already registered")
        _REGISTRY[_key(name)] = ActEntry(name, target, dict(defaults or {}), formula, paper)
        return target

    return add if cls is None else add(cls)


def list_acts() -> list[str]:
    """Names of every registered activation, sorted."""
    return sorted(entry.name for entry in _REGISTRY.values())


def get_entry(name: str) -> ActEntry:
    """The registry entry for ``name``; ``ValueError`` naming the closest matches when unknown."""
    entry = _REGISTRY.get(_key(name))
    if entry is None:
        names = list_acts()
        close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown activation {name!r}.{hint} Known: {', '.join(names)}")
    return entry


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"smu(alpha=0.25, mu=1e6)"`` → ``("smu", {"alpha": 0.25, "mu": 1e6})``; literals only."""
    try:
        tree = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as err:
        raise ValueError(
            f"cannot parse activation spec {spec!r}: write name or name(key=value, ...)"
        ) from err
    if isinstance(tree, ast.Name):
        return tree.id, {}
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and not tree.args:
        try:
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords if kw.arg}
        except ValueError as err:
            raise ValueError(f"activation spec {spec!r}: keyword values must be literals") from err
        if len(kwargs) == len(tree.keywords):
            return tree.func.id, kwargs
    raise ValueError(
        f"cannot parse activation spec {spec!r}: write name or name(key=value, ...), keywords only"
    )


def _format_spec(name: str, kwargs: Mapping[str, Any]) -> str:
    if not kwargs:
        return name
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def make_factory(name: str, **kwargs: Any) -> ActFactory:
    """Factory for a registered activation with keyword overrides; bad keywords raise ``ValueError``."""
    entry = get_entry(name)
    valid = entry.keywords()
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"activation {entry.name!r} has no keyword {', '.join(map(repr, unknown))}; "
            f"valid keywords: {', '.join(valid) or '(none)'}"
        )
    merged = {**entry.defaults, **kwargs}
    factory = ActFactory(lambda: entry.cls(**merged), _format_spec(entry.name, kwargs), entry.name)
    factory()  # build once now so a bad value fails here, with the module's own message
    return factory


def get_act(spec: str | type[nn.Module] | Callable[[], nn.Module] | nn.Module) -> ActFactory:
    """Resolve a name, ``"name(key=value, ...)"``, module class, module instance or callable to a factory."""
    if isinstance(spec, ActFactory):
        return spec
    if isinstance(spec, str):
        name, kwargs = parse_spec(spec)
        return make_factory(name, **kwargs)
    if isinstance(spec, nn.Module):  # an instance: copy it so every place gets its own parameters
        return ActFactory(
            lambda: copy.deepcopy(spec), type(spec).__name__.lower(), type(spec).__name__.lower()
        )
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return ActFactory(spec, spec.__name__.lower(), spec.__name__.lower())
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__).lower()
        return ActFactory(spec, name, name)
    raise TypeError(
        f"act must be a name, 'name(key=value)', an nn.Module class or instance, or a callable; got {spec!r}"
    )


# ------------------------------------------------------------------------------------------------
# The built-in activations. Native torch modules where they already are exact and stable.

_NATIVE = [
    ("relu", nn.ReLU, "max(0, x)", "Nair & Hinton 2010"),
    ("leaky_relu", nn.LeakyReLU, "max(x, a·x), a = negative_slope", "Maas et al. 2013"),
    ("rrelu", nn.RReLU, "max(x, a·x), a ~ U(lower, upper) in training", "arXiv:1505.00853"),
    ("identity", nn.Identity, "x", ""),
]
for _name, _cls, _formula, _paper in _NATIVE:
    register_act(_name, _cls, formula=_formula, paper=_paper)

register_act("elu", M.ELU, formula="x if x > 0 else α(eˣ - 1)", paper="arXiv:1511.07289")
register_act("celu", M.CELU, formula="max(0, x) + min(0, α(e^{x/α} - 1))", paper="arXiv:1704.07483")
register_act("selu", M.SELU, formula="λ·(x if x > 0 else α(eˣ - 1))", paper="arXiv:1706.02515")
register_act("prelu", M.PReLU, formula="max(x, a·x), a learnable", paper="arXiv:1502.01852")
register_act("softplus", M.Softplus, formula="ln(1 + e^{βx})/β", paper="Dugas et al. 2001")
register_act("hard_swish", M.HardSwish, formula="x·relu6(x + 3)/6", paper="arXiv:1905.02244")
register_act("gelu", M.GELU, formula="x·Φ(x)", paper="arXiv:1606.08415")
register_act("swish", M.Swish, formula="x·σ(βx)", paper="arXiv:1710.05941")
register_act("silu", M.SiLU, formula="x·σ(x)", paper="arXiv:1702.03118")
register_act("mish", M.Mish, formula="x·tanh(ln(1 + eˣ))", paper="arXiv:1908.08681")
_SMU = "((1+α)x + (1-α)x·erf(μ(1-α)x))/2"
_SMU1 = "((1+α)x + sqrt((1-α)²x² + μ²))/2"
register_act("smu", M.SMU, formula=_SMU, paper="arXiv:2111.04682")
register_act("smu1", M.SMU1, formula=_SMU1, paper="arXiv:2111.04682")
register_act("smu_v1", M.SMU, defaults={"alpha": 0.25, "mu": 1e6}, formula=_SMU, paper="arXiv:2111.04682v1")
register_act(
    "smu1_v1",
    M.SMU1,
    defaults={"alpha": 0.25, "mu": 4.352665993287951e-9},
    formula=_SMU1,
    paper="arXiv:2111.04682v1",
)
register_act(
    "smooth_max",
    M.SmoothMax,
    formula="((a+b)x + |(a-b)x|_μ)/2, |z|_μ = z·erf(μz) or sqrt(z² + μ²)",
    paper="arXiv:2111.04682",
)
_TANHSOFT = "tanh(αx + β·e^{γx})·ln(δ + eˣ)"
register_act("tanhsoft", M.TanhSoft, formula=_TANHSOFT, paper="arXiv:2009.03863")
register_act(
    "tanhsoft1",
    M.TanhSoft,
    defaults={"alpha": 0.87, "beta": 0.0, "gamma": 1.0, "delta": 1.0},
    formula="tanh(αx)·ln(1 + eˣ), α = 0.87",
    paper="arXiv:2009.03863",
)
register_act(
    "tanhsoft2",
    M.TanhSoft,
    defaults={"alpha": 0.0, "beta": 0.6, "gamma": 1.0, "delta": 0.0},
    formula="x·tanh(β·e^{γx}), β = 0.6, γ = 1",
    paper="arXiv:2009.03863",
)
_EIS = "x·softplus(x)^α / (sqrt(β + γx²) + δ·e^{-θx})"
register_act("eis", M.EIS, formula=_EIS, paper="arXiv:2009.13501")
_EIS_PRESETS = {
    "eis1": (
        {"alpha": 1.0, "beta": 0.0, "gamma": 1.0, "delta": 1.16, "theta": 1.0},
        "x·sp(x)/(|x| + 1.16e^{-x})",
    ),
    "eis2": ({"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 0.0, "theta": 0.0}, "x·sp(x)/sqrt(1 + x²)"),
    "eis3": ({"alpha": 0.0, "beta": 1.0, "gamma": 0.0, "delta": 0.68, "theta": 1.7}, "x/(1 + 0.68e^{-1.7x})"),
}
for _name, (_defaults, _formula) in _EIS_PRESETS.items():
    register_act(_name, M.EIS, defaults=_defaults, formula=_formula, paper="arXiv:2009.13501")
register_act("erfact", M.ErfAct, formula="x·erf(α·e^{βx})", paper="arXiv:2109.04386")
register_act("pserf", M.Pserf, formula="x·erf(γ·ln(1 + e^{δx}))", paper="arXiv:2109.04386")
register_act("serf", M.Serf, formula="x·erf(ln(1 + eˣ))", paper="arXiv:2108.09598")
register_act("tanhexp", M.TanhExp, formula="x·tanh(eˣ)", paper="arXiv:2003.01950")
register_act(
    "logish",
    M.Logish,
    formula="αx·ln(1 + σ(βx))",
    paper="Neurocomputing 2021, doi:10.1016/j.neucom.2021.06.067",
)
register_act("pau", M.PAU, formula="Σa_j x^j / (1 + Σ|b_k||x|^k), degrees (5, 4)", paper="arXiv:1907.06732")
