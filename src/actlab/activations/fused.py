"""Fused kernels: each activation's whole forward and whole backward as single compiled kernels.

``Kernel.__call__`` (``autograd.py``) asks ``c_call`` (a C kernel, below), then ``fused_call``. For
tensors of at least ``min_numel()`` elements that runs ``evaluate`` (float32 upcast, ±inf limits, cast
back) and ``evaluate_backward`` (grad_x and the parameter-gradient reductions) through ``torch.compile``, so
inductor emits one vectorised C++ loop (Triton on CUDA) per direction instead of eager PyTorch's
dozens of passes over memory. Backward saves only the input, as the eager op does.

Compiled once per kernel, direction and shape family (``dynamic=True``: any sizes, one graph per
number of dimensions, dtype and parameter shape; each family its own code object, so dynamo's recompile limit
counts per family), then cached in the process; inductor's FX graph cache (on by default,
``TORCHINDUCTOR_CACHE_DIR``) keeps the generated code across processes. On Triton's devices x enters as rows
of a length compiled in (``aligned_row``), so Triton knows its size is a multiple of 16 and vectorises loads.

Where float32 is the compute dtype on the CPU some formulas are swapped for equally exact, faster ones
(``FAST_FP32``): ``erfc`` and ``tanh`` have no vectorised kernel in inductor's C++ backend, so they
are rebuilt from ``exp``/``expm1`` (erfc as exp(-t²)·P(u), one ``exp`` that backward shares with the
Gaussian), and its vectorised ``erf`` loses relative precision near 0, so ``erf`` is rebuilt too. On
other devices (Triton, whose erf, erfc and tanh are CUDA's libdevice) and in float64 the reference
formulas run unchanged (``ENV_FORMULAS``). The kernels are compiled with FMA contraction on.
The ±inf limits come from a small compiled kernel of their own, cached per parameter version, and are
inputs to the main kernel (``FusedKernel.limits``); some fast forwards give them directly (``OWN_LIMITS``).

Under a user's ``torch.compile`` the same formulas and analytic backward are traced into the
caller's graph (``FusedKernel.traced``). Falls back to the eager op when switched off (``ACTLAB_FUSED=0``,
``set_fused(False)``), while tracing or exporting, under functorch transforms, for small tensors, and when
compiling fails (warned once per kernel and device type, then remembered).

Before compiling anything, ``FusedKernel`` asks ``cpu_kernels`` for a hand-written C kernel: float32,
bfloat16 or float16 on the CPU with scalar parameters, for the activations it has, at any size (there is no
compile cost to amortise).
"""

from __future__ import annotations

import functools
import os
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from . import cpp_op, cpu_kernels
from . import functional as AF

if TYPE_CHECKING:
    from .autograd import Kernel

ENV_ENABLE = "ACTLAB_FUSED"  # "0" turns the fused path off
ENV_MIN_NUMEL = "ACTLAB_FUSED_MIN_NUMEL"  # smallest tensor (elements) worth a compiled kernel (C: any)
DEFAULT_MIN_NUMEL = 1 << 15  # below this eager dispatch costs about what the compiled call does
# The compiled kernels' float32 formulas: "fast" (FAST_FP32, made for inductor's C++, which lacks vectorised
# erfc and tanh), "reference" (the library's own formulas, whose erf, erfc and tanh Triton takes from CUDA's
# libdevice) or "auto" (the default: fast on the CPU, reference elsewhere: the fast erf family's graphs are
# 2-8x the reference ones', past what a GPU computes in the time it moves the data; docs/performance.md,
# CUDA); and whether they are compiled for any size ("1", one graph per shape family) or first for the
# size met (torch's default, "0"). The last two choices are there for the GPU's experiments.
ENV_FORMULAS = "ACTLAB_FUSED_FORMULAS"
FORMULAS = ("auto", "fast", "reference")
ENV_DYNAMIC = "ACTLAB_FUSED_DYNAMIC"
# "0" sums parameter gradients over all of x on Triton's devices too (``by_rows`` off): the GPU's comparison.
ENV_ROWS = "ACTLAB_FUSED_ROWS"
# "0" keeps x's own shape on Triton's devices (``aligned_row`` off): the GPU's comparison.
ENV_ALIGN = "ACTLAB_FUSED_ALIGN"


def _env_choice(name: str, default: str, valid: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")
    return value


@dataclass
class _Settings:
    enabled: bool = os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "false", "off", "no")
    min_numel: int = int(os.environ.get(ENV_MIN_NUMEL, DEFAULT_MIN_NUMEL))
    formulas: str = field(default_factory=lambda: _env_choice(ENV_FORMULAS, "auto", FORMULAS))
    dynamic: bool = field(default_factory=lambda: _env_choice(ENV_DYNAMIC, "1", ("1", "0")) == "1")
    rows: bool = field(default_factory=lambda: _env_choice(ENV_ROWS, "1", ("1", "0")) == "1")
    align: bool = field(default_factory=lambda: _env_choice(ENV_ALIGN, "1", ("1", "0")) == "1")
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (kernel, device) → error


_SETTINGS = _Settings()


def set_fused(
    enabled: bool | None = None,
    min_numel: int | None = None,
    formulas: str | None = None,
    dynamic: bool | None = None,
    rows: bool | None = None,
    align: bool | None = None,
) -> None:
    """Switch the fused path on or off, set the smallest tensor it is used for, and (experiments, see
    ``ENV_FORMULAS``, ``ENV_ROWS``, ``ENV_ALIGN``) the compiled kernels' float32 formulas, shape dynamism,
    parameter sums by rows and aligned rows; the last four forget what was compiled."""
    if enabled is not None:
        _SETTINGS.enabled = bool(enabled)
    if min_numel is not None:
        if min_numel < 0:
            raise ValueError(f"min_numel must be >= 0, got {min_numel}")
        _SETTINGS.min_numel = int(min_numel)
    if formulas is not None and formulas not in FORMULAS:
        raise ValueError(f"formulas must be one of {', '.join(FORMULAS)}, got {formulas!r}")
    changed = (
        formulas or _SETTINGS.formulas,
        _SETTINGS.dynamic if dynamic is None else bool(dynamic),
        _SETTINGS.rows if rows is None else bool(rows),
        _SETTINGS.align if align is None else bool(align),
    )
    if changed != (_SETTINGS.formulas, _SETTINGS.dynamic, _SETTINGS.rows, _SETTINGS.align):
        _SETTINGS.formulas, _SETTINGS.dynamic, _SETTINGS.rows, _SETTINGS.align = changed
        reset()


def fast_formulas(device: torch.device) -> bool:
    """Whether the compiled kernels on ``device`` take the fast float32 formulas (``ENV_FORMULAS``)."""
    return _SETTINGS.formulas == "fast" or (_SETTINGS.formulas == "auto" and device.type == "cpu")


def fused_enabled() -> bool:
    """Whether the fused path is switched on (it still skips small tensors and compiled callers)."""
    return _SETTINGS.enabled


def min_numel() -> int:
    """The smallest tensor, in elements, that takes the fused path."""
    return _SETTINGS.min_numel


@contextmanager
def use_fused(enabled: bool = True, min_numel: int | None = None) -> Iterator[None]:
    """Temporarily switch the fused path (and its size threshold); restores both on exit."""
    before = (_SETTINGS.enabled, _SETTINGS.min_numel)
    set_fused(enabled, min_numel)
    try:
        yield
    finally:
        _SETTINGS.enabled, _SETTINGS.min_numel = before


def failures() -> dict[tuple[str, str], str]:
    """(kernel name, device type) pairs whose compilation failed, with the error; they run eagerly."""
    return dict(_SETTINGS.failed)


def reset() -> None:
    """Forget compiled kernels and remembered failures (tests; after changing inductor settings)."""
    for name, fk in list(_FUSED.items()):  # fresh ones, built here and not inside a traced call
        _FUSED[name] = FusedKernel(fk.kernel)
    _SETTINGS.failed.clear()


# ----------------------------------------------------------------------------------------------
# Faster float32 formulas, each as exact as the reference (checked against it in tests/test_fused.py)

# exp(-t²) leaves float32's normal range at t ≈ 9.34 (erfc(t) at 9.19). Beyond 9.3 both are flushed to 0 and
# t is clamped there, so no ``exp`` gets an argument below -87: Sleef's exp scales through subnormal
# intermediates there, and a microcode assist per element made SMU with μ ≥ 5 (smu_v1: μ = 1e6) 2.5× slower.
_ERFC_ZERO = 9.3
# The compiled functions spell these thresholds as literals: dynamo turns float *globals* into symbolic
# inputs, and inductor's on-disk cache then served a kernel compiled with an older value of this one.


def _erfc_scaled(t: Tensor, slope: float, scale: float) -> Tensor:
    """erfc(t)·exp(t²) for 0 ≤ t ≤ 9.3: u·P(u), u = 1/(1 + t/2), P of degree 9 fitted (least squares
    reweighted towards minimax, against scipy's erfcx) to relative error 1.7e-8. Evaluated in float32 the
    rounding of u dominates (near t = 0 its relative error is amplified 2.3×); erfc as a whole is within
    3.8e-7 (degree 10 fitted by plain least squares: 4.0e-7; degree 8 with u = 1/(1 + 0.45t): 4.2e-7).
    Literal coefficients: dynamo folds them into the kernel (a tuple of floats becomes tensor inputs).

    ``slope`` and ``scale`` (literals at the call site, never defaults: dynamo lifts float defaults into
    kernel inputs as it does float globals; folded into the constants while tracing) give
    scale·erfc(slope·t)·exp(slope²t²) without two more multiplications: GELU takes slope 1/√2 and scale 1/2.
    A power-of-two scale keeps every coefficient exact."""
    u = 1 / (1 + (0.5 * slope) * t)
    p = (0.01450870931148529 * scale) * u - 0.13513387739658356 * scale
    p = p * u + 0.45631107687950134 * scale
    p = p * u - 0.7056940793991089 * scale
    p = p * u + 0.45013517141342163 * scale
    p = p * u - 0.11331334710121155 * scale
    p = p * u + 0.2305310219526291 * scale
    p = p * u + 0.2376227229833603 * scale
    p = p * u + 0.2829737663269043 * scale
    p = p * u + 0.28205883502960205 * scale
    return u * p


def _gauss(t: Tensor, scale: float) -> Tensor:
    """exp(-scale·t²) for 0 ≤ t < 16 at full float32 relative precision from one ``exp``.

    exp of the rounded square sq = fl(t²) would be off by up to |t² - sq| ≈ t²·6e-8 (4e-6 at t = 8), so the
    rounding error err = t² - sq is recovered exactly and applied as exp(-scale·sq)·(1 - scale·err)
    (|scale·err| < 4e-6, so the dropped (scale·err)²/2 is below 1e-11)."""
    sq = t * t
    err = _square_rounding_error(t, sq)
    if scale == 1.0:
        e = torch.exp(-sq)
        return e - e * err  # one FMA compiled; e·(1 - err) would be a subtraction and a product
    e = torch.exp(-scale * sq)
    return e - e * (scale * err)


def _square_rounding_error(t: Tensor, sq: Tensor) -> Tensor:
    """t² - fl(t²), exactly, for t ≥ 0.

    Compiled, it is one FMA: the kernels are built with FP contraction, and t·|t| (= t·t, but a product
    inductor does not merge with sq) used only in a subtraction is contracted into fma(t, |t|, -sq), whose
    single rounding leaves the exact error (tests/test_fused.py checks the compiled tails). Eagerly there
    is no FMA, so Dekker's split: hi = t rounded down to 1/256 has ≤ 12 significant bits, so hi² is exact,
    and lo = t - hi is exact."""
    if torch.compiler.is_compiling():
        return t * t.abs() - sq
    hi = torch.floor(t * 256) * (1 / 256)
    lo = t - hi
    return ((hi * hi - sq) + 2 * hi * lo) + lo * lo


def erfc_and_gauss(t: Tensor, half: bool = False) -> tuple[Tensor, Tensor]:
    """(erfc(t), exp(-t²)) for t ≥ 0 in float32 sharing one ``exp``: erfc(t) = exp(-t²)·(erfc(t)·exp(t²));
    relative error < 4e-7 for both while normal; both 0 beyond t = 9.3 (exp(-9.3²) = 2.9e-38), NaN kept.
    ``half``: erfc(t)/2 instead, the 1/2 folded into the polynomial (a bool: float defaults become inputs)."""
    tc = torch.clamp(t, max=9.3)  # _ERFC_ZERO
    gauss = _flushed(t, _gauss(tc, 1.0), 9.3)
    return gauss * _erfc_scaled(tc, 1.0, 0.5 if half else 1.0), gauss


def _flushed(t: Tensor, gauss: Tensor, zero_from: float) -> Tensor:
    """``gauss`` with 0 where t > zero_from (not where t is NaN: that propagates)."""
    return torch.where(t > zero_from, 0.0, gauss)


def erfc_nonneg(t: Tensor, half: bool = False) -> Tensor:
    """erfc(t) (or erfc(t)/2) for t ≥ 0 in float32 (see ``erfc_and_gauss``)."""
    return erfc_and_gauss(t, half)[0]


def erfc_fast(s: Tensor) -> Tensor:
    """erfc(s) for any float32 s, relative error < 5e-7 (2 - erfc(|s|) for s < 0)."""
    e = erfc_nonneg(s.abs())
    return torch.where(s < 0, 2 - e, e)


def _erf_series(s: Tensor) -> Tensor:
    """erf(s) for |s| < 0.5: the odd Taylor series 2/√π·Σ (-1)ⁿ s²ⁿ⁺¹/(n!(2n + 1)), n ≤ 6."""
    s2 = s * s
    p = -0.0008548327023450852 + s2 * 0.00012055332981789664
    p = 0.005223977625442188 + s2 * p
    p = -0.026866170645131252 + s2 * p
    p = 0.11283791670955126 + s2 * p
    p = -0.37612638903183754 + s2 * p
    return s * (1.1283791670955126 + s2 * p)


def erf_fast(s: Tensor) -> Tensor:
    """erf(s) in float32: the odd Taylor series to s¹³ for |s| < 0.5 (inductor's vectorised erf loses
    relative precision near 0), sign(s)·(1 - erfc(|s|)) beyond; relative error < 5e-7."""
    a = s.abs()
    return torch.where(a < 0.5, _erf_series(s), torch.sign(s) * (1 - erfc_nonneg(a)))


def tanh_fast(w: Tensor) -> Tensor:
    """tanh(w) = sign(w)·(1 - e)/(1 + e), e = exp(-2|w|), through expm1: no cancellation near 0."""
    m = torch.expm1(-2 * w.abs())
    return torch.sign(w) * (-m / (2 + m))


def log1p_unit(e: Tensor) -> Tensor:
    """log(1 + e) for 0 ≤ e ≤ 1 (the softplus of -|z|, e = exp(-|z|)) as 2·atanh(s), s = e/(2 + e) ≤ 1/3:
    the odd series 2s·Σ s²ᵏ/(2k + 1), k ≤ 7, relative error 2e-9 (plus float32 rounding); one division
    and 8 FMAs, about 4× cheaper than the vectorised ``log1p``, and exact near e = 0 where 1 + e rounds."""
    s = e / (2 + e)
    s2 = s * s
    p = 1 / 13 + s2 * (1 / 15)
    p = 1 / 11 + s2 * p
    p = 1 / 9 + s2 * p
    p = 1 / 7 + s2 * p
    p = 1 / 5 + s2 * p
    p = 1 / 3 + s2 * p
    p = 1 + s2 * p
    return 2 * s * p


def softplus_fast(x: Tensor, beta: Tensor, threshold: Tensor) -> Tensor:
    """Its own ±inf limits: relu(±inf) and exp(-inf) = 0 give them."""
    z = beta * x
    smooth = (torch.relu(z) + log1p_unit(torch.exp(-z.abs()))) * (1 / beta)  # ≤ 1 ulp from / β
    return torch.where(z > threshold, x, smooth)


def softplus_fast_bwd(g: Tensor, x: Tensor, beta: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    z = beta * x
    sig, _ = _sigmoid_and_pair(z)
    grad_x = g * torch.where(z > threshold, 1.0, sig)
    none = torch.zeros_like(grad_x)  # β and the threshold are fixed: never asked for
    return grad_x, none, none


_GELU_ZERO = 13.152186130069785  # _ERFC_ZERO·√2: Φ(-x), φ(x) flushed to 0 for |x| > 13.15 (φ = 1.2e-38)


def _gelu_parts(x: Tensor) -> tuple[Tensor, Tensor]:
    """Φ(x) and exp(-x²/2) sharing one ``exp``. exp(-x²/2) comes from x itself (exact), not from the rounded
    x/√2 (whose rounding error would be amplified by x²); erfc's smooth factor takes x/√2."""
    a = x.abs()
    t = torch.clamp(a, max=13.152186130069785)  # _GELU_ZERO
    gauss = _flushed(a, _gauss(t, 0.5), 13.152186130069785)
    tail = gauss * _erfc_scaled(t, 0.7071067811865475, 0.5)  # erfc(|x|/√2)/2 = Φ(-|x|); slope 1/√2
    return torch.where(x > 0, 1 - tail, tail), gauss


def gelu_fast(x: Tensor) -> Tensor:
    """Its own ±inf limits: Φ(x) is 0 below -13.15, so max(x, -13.15)·Φ(x) is -0 there, not -inf·0."""
    return torch.clamp(x, min=-13.152186130069785) * _gelu_parts(x)[0]  # -_GELU_ZERO


def gelu_fast_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    cdf, gauss = _gelu_parts(x)
    x_gauss = torch.clamp(x, -13.152186130069785, 13.152186130069785) * gauss  # ±_GELU_ZERO; 0·gauss beyond
    # 1/√(2π) as a literal: dynamo makes float globals kernel inputs
    return (g * (cdf + x_gauss * 0.3989422804014327),)


def smooth_max_erf_fast(x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> Tensor:
    d = a - b
    z = mu * d * x
    half_e = erfc_nonneg(z.abs(), half=True)
    return x * (b + d * torch.where(z > 0, 1 - half_e, half_e))  # Φ̃(z) = erfc(-z)/2


def smooth_max_erf_fast_bwd(g: Tensor, x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> tuple[Tensor, ...]:
    d = a - b
    z = mu * d * x
    half_e, gauss = erfc_and_gauss(z.abs(), half=True)  # one exp serves erfc(-z), erfc(z) and exp(-z²)
    upper = torch.where(z > 0, 1 - half_e, half_e)  # Φ̃(z) = erfc(-z)/2
    lower = torch.where(z > 0, half_e, 1 - half_e)  # erfc(z)/2
    gauss = gauss * 0.5641895835477563  # 1/√π, a literal: dynamo makes float globals kernel inputs
    z_gauss = torch.clamp(z, -9.3, 9.3) * gauss  # ±_ERFC_ZERO; gauss is 0 beyond: no inf·0 (AF.mul0)
    grad_x = g * (b + d * upper + d * z_gauss)
    grad_a = g * x * (upper + z_gauss)
    grad_b = g * x * (lower - z_gauss)
    dx = d * x
    grad_mu = g * AF.mul0(dx * dx, gauss)
    return grad_x, grad_a, grad_b, grad_mu


smu_fast, smu_fast_bwd = AF.smu_pair(smooth_max_erf_fast, smooth_max_erf_fast_bwd)


def _sqrt_scaled(x: Tensor, d: Tensor, mu: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(m, x/m, μ/m, √((d·x/m)² + (μ/m)²)) with m = max(|x|, |μ|, 1e-30): every square ≤ d², no overflow,
    one division; r = √(d²x² + μ²) = m·(the last)."""
    big = torch.clamp(torch.maximum(x.abs(), mu.abs()), min=1e-30)
    inv = 1 / big
    xs, ms = x * inv, mu * inv
    dxs = d * xs
    return big, xs, ms, torch.sqrt(dxs * dxs + ms * ms)


def smooth_max_sqrt_fast(x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> Tensor:
    """((a+b)x + r)/2, r = √((a-b)²x² + μ²), all divided through by m (``_sqrt_scaled``); where (a+b)x < 0
    the sum cancels, so it is (r² - (a+b)²x²)/(r - (a+b)x) = (μ² - 4ab·x²)/(r - (a+b)x) there."""
    s, d = a + b, a - b
    big, xs, ms, rs = _sqrt_scaled(x, d, mu)
    sxs = s * xs
    opposite = (ms * ms - 4 * (a * b) * (xs * xs)) / (rs - sxs)
    return 0.5 * big * torch.where(sxs >= 0, sxs + rs, opposite)


def smooth_max_sqrt_fast_bwd(g: Tensor, x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> tuple[Tensor, ...]:
    d = a - b
    _, xs, ms, rs = _sqrt_scaled(x, d, mu)
    inv_rs = torch.where(rs == 0, 0.0, 1 / rs)  # rs = 0 only at x = μ = 0, where u and μ/r are 0
    u = d * xs * inv_rs  # (a-b)x/r ∈ [-1, 1]
    half_g = 0.5 * g
    grad_x = half_g * ((a + b) + d * u)
    grad_a = half_g * x * (1 + u)
    grad_b = half_g * x * (1 - u)
    grad_mu = half_g * (ms * inv_rs)
    return grad_x, grad_a, grad_b, grad_mu


smu1_fast, smu1_fast_bwd = AF.smu_pair(smooth_max_sqrt_fast, smooth_max_sqrt_fast_bwd)


def tanhexp_fast(x: Tensor) -> Tensor:
    return x * tanh_fast(torch.exp(x))


def tanhexp_fast_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    e = torch.exp(x)
    return (g * (tanh_fast(e) + x * AF.mul0(e, AF.sech2_of_nonneg(e))),)


def _tanhsoft_fast_parts(x, alpha, beta, gamma, delta):
    e_gx = torch.exp(gamma * x)
    w = alpha * x + AF.mul0(beta, e_gx)
    log_delta = torch.log(delta)
    # ln(δ + eˣ) = max(x, ln δ) + ln(1 + e^{-|x - ln δ|}); δ = 0: ln δ = -inf and the term is x
    u = x - log_delta
    e = torch.exp(-u.abs())
    log_term = torch.maximum(x, log_delta) + log1p_unit(e)
    return e_gx, w, tanh_fast(w), log_term, u, e


def tanhsoft_fast(x: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, delta: Tensor) -> Tensor:
    _, _, tanh_w, log_term, _, _ = _tanhsoft_fast_parts(x, alpha, beta, gamma, delta)
    return AF.mul0(tanh_w, log_term)


def tanhsoft_fast_bwd(g, x, alpha, beta, gamma, delta) -> tuple[Tensor, ...]:
    e_gx, w, tanh_w, log_term, u, e = _tanhsoft_fast_parts(x, alpha, beta, gamma, delta)
    sech2 = AF.sech2_of_nonneg(w.abs())
    sech2_e = AF.mul0(sech2, e_gx)
    r = 1 / (1 + e)
    d_log = torch.where(u >= 0, r, e * r)  # σ(x - ln δ) from the same exp
    grad_x = g * (AF.mul0(sech2 * alpha + AF.mul0(beta * gamma, sech2_e), log_term) + tanh_w * d_log)
    grad_alpha = g * sech2 * x * log_term
    grad_beta = g * AF.mul0(sech2_e, log_term)
    grad_gamma = g * AF.mul0(AF.mul0(beta * x, sech2_e), log_term)  # β = 0: 0 where e^{γx} overflowed
    grad_delta = g * tanh_w * torch.exp(-log_term)
    return grad_x, grad_alpha, grad_beta, grad_gamma, grad_delta


def erfact_fast(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    return x * erf_fast(AF.mul0(alpha, torch.exp(beta * x)))


def erfact_fast_bwd(g, x, alpha, beta) -> tuple[Tensor, Tensor, Tensor]:
    e_bx = torch.exp(beta * x)
    w = AF.mul0(alpha, e_bx)
    erf_w, gauss = _erf_and_gauss_nonneg(w.abs())  # one exp for erf(w) and exp(-w²)
    erf_w = torch.where(w < 0, -erf_w, erf_w)
    k = 1.1283791670955126 * gauss  # 2/√π
    k_w = AF.mul0(w, k)
    return g * (erf_w + x * beta * k_w), g * x * AF.mul0(e_bx, k), g * AF.mul0(x * x, k_w)


def _softplus_and_sigmoid(z: Tensor) -> tuple[Tensor, Tensor]:
    """softplus(z) = max(z, 0) + ln(1 + e) and σ(z), from one e = exp(-|z|)."""
    e = torch.exp(-z.abs())
    r = 1 / (1 + e)
    return torch.relu(z) + log1p_unit(e), torch.where(z >= 0, r, e * r)


def _erf_and_gauss_nonneg(v: Tensor) -> tuple[Tensor, Tensor]:
    """(erf(v), exp(-v²)) for v ≥ 0 sharing one exp beyond the series range (``erf_fast``)."""
    e, gauss = erfc_and_gauss(v)
    return torch.where(v < 0.5, _erf_series(v), 1 - e), gauss


def pserf_fast(x: Tensor, gamma: Tensor, delta: Tensor) -> Tensor:
    sp, _ = _softplus_and_sigmoid(delta * x)
    return x * erf_fast(gamma * sp)


def pserf_fast_bwd(g, x, gamma, delta) -> tuple[Tensor, Tensor, Tensor]:
    dx = delta * x
    sp, sig = _softplus_and_sigmoid(dx)
    v = gamma * sp
    erf_v, gauss = _erf_and_gauss_nonneg(v.abs())
    erf_v = torch.where(v < 0, -erf_v, erf_v)  # γ < 0
    k = 1.1283791670955126 * gauss  # 2/√π
    k_sig = k * sig
    grad_x = g * (erf_v + (x * k_sig) * (gamma * delta))
    return grad_x, g * x * AF.mul0(k, sp), g * gamma * AF.mul0(x * x, k_sig)


def serf_fast(x: Tensor) -> Tensor:
    sp, _ = _softplus_and_sigmoid(x)
    return x * _erf_and_gauss_nonneg(sp)[0]


def serf_fast_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    sp, sig = _softplus_and_sigmoid(x)
    erf_sp, gauss = _erf_and_gauss_nonneg(sp)
    return (g * (erf_sp + x * sig * (1.1283791670955126 * gauss)),)  # 2/√π


def logish_fast(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    s, _ = _sigmoid_and_pair(beta * x)
    return alpha * (x * log1p_unit(s))  # σ ∈ [0, 1]: log1p_unit's domain


def logish_fast_bwd(g, x, alpha, beta) -> tuple[Tensor, Tensor, Tensor]:
    bx = beta * x
    s, pair = _sigmoid_and_pair(bx)
    log_term = log1p_unit(s)
    ss = pair / (1 + s)
    grad_x = g * alpha * (log_term + AF.mul0(bx, ss))
    grad_alpha = g * (x * log_term)
    grad_beta = g * alpha * AF.mul0(x * x, ss)
    return grad_x, grad_alpha, grad_beta


def _sigmoid_and_pair(z: Tensor) -> tuple[Tensor, Tensor]:
    """σ(z) and σ(z)·σ(-z) from one exp: e = exp(-|z|), σ(|z|) = 1/(1 + e), σ(z)σ(-z) = e/(1 + e)²."""
    e = torch.exp(-z.abs())
    r = 1 / (1 + e)
    return torch.where(z >= 0, r, e * r), e * r * r


def swish_fast(x: Tensor, beta: Tensor) -> Tensor:
    """x/(1 + e^{-βx}), as ``silu_fast``; at ±inf x the limits replace it (β's sign decides them)."""
    return x / (1 + torch.exp(-(beta * x)))


def swish_fast_bwd(g: Tensor, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """x is finite here (clamped to ±max), so x·σσ' is finite too (σσ' ≤ 1/4, 0 where βx saturates): times β
    or x again it can overflow but never makes inf·0, which the products β·x and x² would."""
    s, ss = _sigmoid_and_pair(beta * x)
    x_ss = x * ss
    return g * (s + beta * x_ss), g * (x * x_ss)


def silu_fast(x: Tensor) -> Tensor:
    """max(x, -104)/(1 + e⁻ˣ): one division and no product (x·σ(x) rounds three times and costs one vector op
    more, ~10 % of the kernel's arithmetic). Its own ±inf limits: below -104 the denominator is huge or inf,
    so the quotient is -0, where -inf/inf would be NaN."""
    return torch.clamp(x, min=-104.0) / (1 + torch.exp(-x))


def silu_fast_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    s, ss = _sigmoid_and_pair(x)
    return (g * (s + torch.clamp(x, -104.0, 104.0) * ss),)  # σσ' is 0 beyond ±104: no ±inf·0


def mish_fast(x: Tensor) -> Tensor:
    """Its own ±inf limits, as ``silu_fast``: tanh(softplus(x)) is 0 below -104 in float32."""
    _, n = AF._mish_parts(x)
    return torch.clamp(x, min=-104.0) * (n / (n + 2))


def mish_fast_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    return AF.mish_bwd(g, torch.clamp(x, min=-104.0))  # x > 20 takes slope 1 in mish_bwd; below -104 it is 0


# Fast forwards that already give the true limits at ±inf (and NaN for NaN), and fast backwards that already
# give finite limits there: no generic limit handling, no clamp of x before the backward.
OWN_LIMITS = frozenset({"gelu", "softplus", "silu", "mish", "elu", "celu", "selu"})

FAST_FP32: dict[str, tuple[Callable[..., Tensor], Callable[..., tuple[Tensor, ...]]]] = {
    "swish": (swish_fast, swish_fast_bwd),
    "silu": (silu_fast, silu_fast_bwd),
    "mish": (mish_fast, mish_fast_bwd),
    "gelu": (gelu_fast, gelu_fast_bwd),
    "smu": (smu_fast, smu_fast_bwd),
    "smooth_max_erf": (smooth_max_erf_fast, smooth_max_erf_fast_bwd),
    "smu1": (smu1_fast, smu1_fast_bwd),
    "smooth_max_sqrt": (smooth_max_sqrt_fast, smooth_max_sqrt_fast_bwd),
    "tanhexp": (tanhexp_fast, tanhexp_fast_bwd),
    "erfact": (erfact_fast, erfact_fast_bwd),
    "pserf": (pserf_fast, pserf_fast_bwd),
    "serf": (serf_fast, serf_fast_bwd),
    "tanhsoft": (tanhsoft_fast, tanhsoft_fast_bwd),
    "softplus": (softplus_fast, softplus_fast_bwd),
    "logish": (logish_fast, logish_fast_bwd),
    "elu": (AF.elu, AF.elu_bwd),  # the reference: already one expm1 and its own limits
    "celu": (AF.elu, AF.elu_bwd),
    "selu": (AF.elu, AF.elu_bwd),
}


# ----------------------------------------------------------------------------------------------
# The compiled pair and its autograd op


def with_limits(y: Tensor, x: Tensor, lim_neg: Tensor, lim_pos: Tensor) -> Tensor:
    """``y`` with the limits where ``x`` is ±inf (whatever the formula gave there is replaced)."""
    return torch.where(x == float("inf"), lim_pos, torch.where(x == float("-inf"), lim_neg, y))


def renamed(fn: Callable, name: str) -> Callable:
    """A copy of ``fn`` with its own code object: dynamo keeps one cache (and recompile limit) per code."""
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


# Let the C++ compiler fuse a*b + c into one FMA (inductor's default is off): the polynomials and the
# Dekker products above become about a third cheaper, and an FMA only rounds once, so nothing gets less exact.
_INDUCTOR_OPTIONS = {"cpp.enable_floating_point_contract_flag": "fast"}


def _compile(fn: Callable) -> Callable:
    """``torch.compile`` for one shape family per graph; a seam the tests replace to force failures."""
    dynamic = True if _SETTINGS.dynamic else None
    return torch.compile(fn, dynamic=dynamic, fullgraph=True, options=_INDUCTOR_OPTIONS)


# The shortest row of the compiled backward's parameter sums (``by_rows``): each row writes one float64 sum,
# read back once, so rows of 256 elements or more add under 0.1 byte per element to the 12 moved.
MIN_ROW = 256
# The devices whose compiled kernels sum by rows: Triton's. Inductor's C++ backend ran rows 1.1-3x slower than
# one split sum (CPU, 2^22 float32: learnable TanhSoft 29 -> 94 ms), and on the CPU C kernels serve first.
ROW_DEVICES = frozenset({"cuda", "xpu"})
# The row lengths of ``aligned_row``'s views, longest first: 1024 is one block of a persistent reduction.
ALIGNED_ROWS = (1024, 16)


def _sums_by_rows(kernel: Kernel, x: Tensor, params: tuple[Tensor, ...], needs: tuple[bool, ...]) -> bool:
    """Whether this backward's parameter sums go by rows: on, a Triton device, a parameter gradient asked for,
    and parameters that do not vary along x (scalars, or PAU's coefficients)."""
    if not (_SETTINGS.rows and x.device.type in ROW_DEVICES and any(needs[1:])):
        return False
    return kernel.coefficients or all(p.numel() == 1 for p in params)


def memory_order(t: Tensor) -> Tensor:
    """``t`` as a contiguous view in the order of its memory: itself, or a channels_last one permuted."""
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1)
    return t


def in_memory_order_of(t: Tensor, x: Tensor) -> Tensor:
    """``t`` (x, or a gradient of x's shape) permuted as ``memory_order`` permutes x, whatever t's layout."""
    return t.permute(0, 2, 3, 1) if memory_order(x) is not x else t


def in_layout_of(t: Tensor, x: Tensor) -> Tensor:
    """A result computed in x's memory order (in any shape of x's size) back in x's shape and layout."""
    xm = memory_order(x)
    t = t.reshape(xm.shape)
    return t.permute(0, 3, 1, 2) if xm is not x else t  # channels_last, as x


def row_split(x: Tensor) -> int | None:
    """Where x's rows start: its last dimensions, as few as hold ``MIN_ROW`` elements, make a row (None unless
    x is contiguous and at least 2-D).

    Rows of x's own dimensions, merged by ``flatten``: inductor then sees them as x reshaped, under dynamic
    shapes too (rows of a fixed 1024 made it copy grad_x back into x's shape, 8 more bytes per element)."""
    if x.dim() < 2 or not x.is_contiguous():
        return None
    split, length = x.dim(), 1
    while split > 1 and length < MIN_ROW:
        split -= 1
        length *= x.shape[split]
    return split


def as_rows(t: Tensor, split: int) -> Tensor:
    """``t`` (in memory order) as a 2-D view: dimensions before ``split`` make the rows, the rest a row."""
    return t.flatten(split).flatten(0, split - 1)


def aligned_row(kernel: Kernel, x: Tensor, params: tuple[Tensor, ...], sums: bool = False) -> int | None:
    """The row length of the (N/row, row) view x enters the compiled kernels in on Triton's devices (``sums``:
    parameter sums by rows, which want long rows); None where x keeps its own shape.

    Under dynamic shapes inductor cannot tell that x's size is a multiple of 16, so every load was masked
    element by element and Triton could not vectorise it (``tools/triton_codegen.py``: no divisibility hint
    on the size); a row length it sees as a number (``_static_rows``) restores both. Viewed outside the
    compiled graph, where sizes are numbers: inside it, (N // 1024) · 1024 = N is not proven and grad_x was
    copied back.
    Scalar parameters or coefficients only: per-channel ones broadcast along x's own dimensions."""
    if not (_SETTINGS.align and x.device.type in ROW_DEVICES and x.numel()):
        return None
    if not (kernel.coefficients or all(p.numel() == 1 for p in params)):
        return None
    if not memory_order(x).is_contiguous():
        return None
    for row in ALIGNED_ROWS[:1] if sums else ALIGNED_ROWS:
        if x.numel() % row == 0:
            return row
    return None


def as_aligned(t: Tensor, x: Tensor, row: int) -> Tensor:
    """``t`` (x, or a gradient of x's shape) as x's (N/row, row) view in x's memory order; a copy only where
    t's layout differs from x's. ``in_layout_of`` turns a result back."""
    return in_memory_order_of(t, x).reshape(-1, row)


def _static_rows(fn: Callable, *positions: int) -> Callable:
    """``fn`` whose arguments at ``positions`` (aligned views) have their row length compiled in as a number,
    while their row count stays dynamic."""

    def aligned(*args):
        for i in positions:
            torch._dynamo.mark_static(args[i], 1)  # under compile: a guard on the size, not a per-call cost
        return fn(*args)

    return aligned


def by_rows(
    kernel: Kernel,
    backward: Callable,
    g: Tensor,
    x: Tensor,
    params: tuple[Tensor, ...],
    needs: tuple[bool, ...],
    clamp: bool = True,
) -> tuple[Tensor | None, ...]:
    """``evaluate_backward``, on 2-D views of g and x (``row_split``) where a parameter's gradient is asked
    for on a Triton device.

    A parameter's gradient is a sum over all of x. Inductor splits such a sum with indexing of its own, which
    it cannot fuse into grad_x's loop under dynamic shapes: g and x were read twice, and intermediates stored
    between the two kernels (28 bytes per element moved where 12 suffice: swish-β's backward took 3x silu's on
    an H200). Summed per row (in float64), then in total, the row sums run in grad_x's kernel (inductor's
    Triton code, generated on a CPU by ``tools/triton_codegen.py``)."""
    from .autograd import evaluate_backward

    xm = memory_order(x)
    split = row_split(xm) if _sums_by_rows(kernel, x, params, needs) else None
    if split is None:
        return evaluate_backward(backward, g, x, params, needs, clamp=clamp)
    flat = params if kernel.coefficients else tuple(p.reshape(()) for p in params)
    rows = as_rows(in_memory_order_of(g, x), split), as_rows(xm, split)
    grads = evaluate_backward(backward, *rows, flat, needs, clamp, row_sums=True)
    grad_x = grads[0] if grads[0] is None else in_layout_of(grads[0], x)
    return (
        grad_x,
        *(gr if gr is None else gr.reshape(p.shape) for gr, p in zip(grads[1:], params, strict=True)),
    )


class FusedKernel:
    """One kernel's forward and backward, each compiled (lazily) into fused kernels."""

    def __init__(self, kernel: Kernel) -> None:
        from .autograd import evaluate, evaluate_backward

        self.kernel = kernel
        ref_fwd, ref_bwd = kernel.forward, kernel.backward
        # (fast formulas?) → (whether the forward gives its own ±inf limits, the Python to compile)
        self._variants = {fast: self._variant(fast) for fast in (True, False)}
        self._eager_fwd = lambda x, params: evaluate(ref_fwd, x, params)
        self._eager_bwd = lambda g, x, params, needs: evaluate_backward(ref_bwd, g, x, params, needs)
        # (which, fast formulas, x's dtype, x's rank) → compiled function; None: recompile limit hit, eager
        self._compiled: dict[tuple[str, bool, torch.dtype, int], Callable | None] = {}
        self._limits: OrderedDict[tuple, tuple[tuple[Tensor, ...], Tensor, Tensor]] = OrderedDict()
        self.function = _make_function(self)
        self.traced_function = _make_function(self, traced=True)
        self.c_function = _make_c_function(kernel.name, self._eager_bwd)

    def _variant(self, fast: bool) -> tuple[bool, dict[str, Callable]]:
        """The forward, limits and backward to compile: with the fast float32 formulas, or the reference."""
        from .autograd import _as_compute, _limits

        kernel = self.kernel
        ref_fwd, ref_bwd = kernel.forward, kernel.backward
        fast_fwd, fast_bwd = FAST_FP32.get(kernel.name, (ref_fwd, ref_bwd)) if fast else (ref_fwd, ref_bwd)
        own_limits = fast and kernel.name in OWN_LIMITS

        def forward(x: Tensor, lim_neg: Tensor, lim_pos: Tensor, *params: Tensor) -> Tensor:
            fwd = fast_fwd if x.dtype != torch.float64 else ref_fwd
            xc, pc = _as_compute(x, params)
            if own_limits and x.dtype != torch.float64:
                return fwd(xc, *pc).to(x.dtype)
            return with_limits(fwd(xc, *pc), xc, lim_neg, lim_pos).to(x.dtype)

        def limits(x: Tensor, probe: Tensor | None, *params: Tensor) -> tuple[Tensor, Tensor]:
            fwd = fast_fwd if x.dtype != torch.float64 else ref_fwd
            xc, pc = _as_compute(x, params)
            return _limits(fwd, pc, xc, probe)

        def backward(needs: tuple[bool, ...], g: Tensor, x: Tensor, *params: Tensor):
            float64 = x.dtype == torch.float64
            bwd, clamp = (ref_bwd, True) if float64 else (fast_bwd, not own_limits)
            return by_rows(kernel, bwd, g, x, params, needs, clamp)

        suffix = "" if fast else "_reference"  # its own code object, cache and recompile limit (renamed)
        python = {
            "forward": forward,
            "backward": backward,
            "limits": limits,
            "forward_aligned": _static_rows(forward, 0),
            "backward_aligned": _static_rows(backward, 1, 2),
        }
        return own_limits, {k: renamed(f, f"{kernel.name}_fused_{k}{suffix}") for k, f in python.items()}

    def own_limits(self, device: torch.device) -> bool:
        """Whether the float32 forward compiled for ``device`` gives the ±inf limits itself."""
        return self._variants[fast_formulas(device)][0]

    def _python(self, which: str, device: torch.device) -> Callable:
        return self._variants[fast_formulas(device)][1][which]

    def _call(self, which: str, device: torch.device, *args):
        """The compiled ``which`` on ``args``; None when compiling fails or failed before (for this kernel and
        device, or where dynamo's recompile limit was hit, for this shape family)."""
        key = (self.kernel.name, device.type)
        if key in _SETTINGS.failed:
            return None
        x = args[2] if which.startswith("backward") else args[0]  # (needs, g, x, ...) or (x, ...)
        family = (which, fast_formulas(device), x.dtype, x.dim())
        fn = self._compiled.get(family)
        if fn is None and family in self._compiled:
            return None  # this family hit the recompile limit: eager
        try:
            if fn is None:
                # a code object per shape family: dynamo compiles a function anew for each number of
                # dimensions and dtype, up to 8 times per code object (``recompile_limit``), then
                # fullgraph=True fails; one function for all families lost the fused path at the ninth
                # (4 dtypes × 3 ranks)
                python = self._python(which, device)
                fn = self._compiled[family] = _compile(renamed(python, python.__name__))
            if not torch.is_grad_enabled():  # inside autograd.Function and backward: skip the context (µs)
                return fn(*args)
            with torch.no_grad():
                return fn(*args)
        except torch._dynamo.exc.FailOnRecompileLimitHit as err:  # shapes of one family recompiled 8 times
            self._compiled[family] = None
            warnings.warn(
                f"actlab: the fused {self.kernel.name!r} {which} for {x.dim()}-D {x.dtype} on {device.type} "
                f"was recompiled too often (dynamo's recompile_limit), so those calls run eagerly: {err}",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        except Exception as err:  # compiler missing, unsupported op, backend error...
            return _failed(key, err)

    def c_apply(self, x: Tensor, params: tuple[Tensor, ...]) -> Tensor:
        """The autograd op over the C kernels (``cpu_kernels.applies`` must hold): in C++ where it could be
        built (``cpp_op``), else the Python ``c_function``; the same results either way."""
        y = cpp_op.apply(self.kernel.name, x, params, self._eager_bwd)
        return self.c_function.apply(x, *params) if y is None else y

    def forward(self, x: Tensor, params: tuple[Tensor, ...]) -> Tensor:
        """Fused ``evaluate`` by the compiled kernel (C-served calls go to the C op: ``c_call``); the
        eager one if compiling fails (then it raises the user's errors)."""
        lims = self._formula_gives_limits(x) or self.limits(x, params)
        if lims is None:
            return self._eager_fwd(x, params)
        row = aligned_row(self.kernel, x, params)
        if row is None:
            y = self._call("forward", x.device, x, *lims, *params)
        else:
            y = self._call("forward_aligned", x.device, as_aligned(x, x, row), *lims, *params)
            y = y if y is None else in_layout_of(y, x)
        return self._eager_fwd(x, params) if y is None else y

    def traced(self, x: Tensor, params: tuple[Tensor, ...], needs_grad: bool) -> Tensor:
        """Under an outer ``torch.compile``: the same formulas and analytic backward as the fused kernels on
        x's device, traced into the caller's graph (on the CPU the fast ones: the reference ones would call
        inductor's per-element ``erfc``)."""
        if needs_grad:
            return self.traced_function.apply(x, *params)
        return self.traced_forward(x, params)

    def traced_forward(self, x: Tensor, params: tuple[Tensor, ...]) -> Tensor:
        """The fused forward's Python, limits inline (what ``traced`` runs)."""
        lims = self._formula_gives_limits(x) or self._python("limits", x.device)(x, None, *params)
        return self._python("forward", x.device)(x, *lims, *params)

    def _formula_gives_limits(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """Placeholders for the limit inputs where the fast formula gives the ±inf limits itself (nothing to
        probe); None where they must be probed."""
        if self.own_limits(x.device) and x.dtype != torch.float64:
            unused = x.new_empty(0)
            return unused, unused
        return None

    def limits(self, x: Tensor, params: tuple[Tensor, ...]) -> tuple[Tensor, Tensor] | None:
        """f(-inf) and f(+inf) for these parameter values, from a small compiled kernel of their own.

        Computed inside the main kernel they cost ~30 % of its time (the C++ compiler must reload them on
        every iteration, as they are written in the same function), so they are inputs to it, cached per
        device, dtype and parameter (storage, version counter, shape): fixed parameters are probed once,
        learnable ones once per optimizer step. Writes through ``.data`` bypass the version counter; use
        ``with torch.no_grad(): p.copy_(...)`` to change parameters between calls."""
        key = (x.device, x.dtype, *((p.data_ptr(), p._version, p.shape, p.dtype) for p in params))
        hit = self._limits.get(key)
        if hit is not None:
            self._limits.move_to_end(key)
            return hit[1], hit[2]
        probe = _probe(x.dtype, x.device)  # an input, not in the graph: ``_limits``
        like = _empty_like(x.dtype, x.device)  # only x's dtype counts: one graph, not one per x's rank
        lims = self._call("limits", x.device, like, probe, *params)
        if lims is None:
            return None
        self._limits[key] = (params, *lims)  # holding the params keeps their storage (and data_ptr) taken
        if len(self._limits) > _LIMITS_CACHE_SIZE:
            self._limits.popitem(last=False)
        return lims[0], lims[1]

    def backward(
        self, g: Tensor, x: Tensor, params: tuple[Tensor, ...], needs: tuple[bool, ...]
    ) -> tuple[Tensor | None, ...]:
        """Fused ``evaluate_backward`` by the compiled kernel; eager for double backward (it must record its
        ops)."""
        if not torch.is_grad_enabled():
            row = aligned_row(self.kernel, x, params, _sums_by_rows(self.kernel, x, params, needs))
            if row is None:
                grads = self._call("backward", x.device, needs, g, x, *params)
            else:
                aligned = as_aligned(g, x, row), as_aligned(x, x, row)
                grads = self._call("backward_aligned", x.device, needs, *aligned, *params)
            if grads is not None:
                grad_x = grads[0] if grads[0] is None or row is None else in_layout_of(grads[0], x)
                return (grad_x, *grads[1:])
        return self._eager_bwd(g, x, params, needs)


@functools.lru_cache(maxsize=32)
def _probe(dtype: torch.dtype, device: torch.device) -> Tensor:
    """``limit_probe`` for inputs of ``dtype``, made once per device: on CUDA a fresh one would be a
    host-to-device copy at every probe (learnable parameters: every optimizer step). Only read."""
    from .autograd import compute_dtype, limit_probe  # autograd imports this module

    return limit_probe(compute_dtype(dtype), device)


@functools.lru_cache(maxsize=32)
def _empty_like(dtype: torch.dtype, device: torch.device) -> Tensor:
    """An empty tensor standing for x where only its dtype and device count (the limits kernel). Only read."""
    return torch.empty(0, dtype=dtype, device=device)


def _failed(key: tuple[str, str], err: Exception) -> None:
    _SETTINGS.failed[key] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    warnings.warn(
        f"actlab: compiling the fused {key[0]!r} kernel for {key[1]} failed, so it runs eagerly from now on "
        f"(set {ENV_ENABLE}=0 to skip compiling): {_SETTINGS.failed[key]}",
        RuntimeWarning,
        stacklevel=4,
    )
    return None


def autograd_op(
    kernel_name: str, kind: str, fn_forward: Callable, fn_backward: Callable
) -> type[torch.autograd.Function]:
    """An ``autograd.Function`` subclass named after the kernel (smooth_max_erf, "FusedFunction" →
    SmoothMaxErfFusedFunction: the name its grad_fn shows)."""
    name = "".join(part.capitalize() for part in kernel_name.split("_")) + kind
    methods = {"forward": staticmethod(fn_forward), "backward": staticmethod(fn_backward)}
    return type(name, (torch.autograd.Function,), methods)


def _make_function(fk: FusedKernel, traced: bool = False) -> type[torch.autograd.Function]:
    """The autograd op over the compiled kernels, or (``traced``) over their Python for an outer compile."""

    def fn_forward(ctx, x: Tensor, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        return fk.traced_forward(x, params) if traced else fk.forward(x, params)

    def fn_backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad)
        if traced:
            return tuple(fk._python("backward", x.device)(needs, g, x, *params))
        return fk.backward(g, x, tuple(params), needs)

    return autograd_op(
        fk.kernel.name, "TracedFunction" if traced else "FusedFunction", fn_forward, fn_backward
    )


def _make_c_function(name: str, eager_bwd: Callable) -> type[torch.autograd.Function]:
    """The autograd op straight over a C kernel, for calls where ``cpu_kernels.applies`` held: no second
    check and no compiled-path dispatch in either direction (~10 µs less per forward+backward)."""

    def fn_forward(ctx, x: Tensor, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        ctx.values = cpu_kernels.param_values(params)  # the saved parameters' values, read once
        return cpu_kernels.forward(name, x, params, ctx.values)

    def fn_backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors  # (x, *params), a tuple
        if torch.is_grad_enabled():  # double backward: the eager ops record the graph
            return eager_bwd(g, saved[0], saved[1:], ctx.needs_input_grad)
        return cpu_kernels.backward(name, g, saved[0], saved[1:], ctx.needs_input_grad, ctx.values)

    return autograd_op(name, "CFusedFunction", fn_forward, fn_backward)


_FUSED: dict[str, FusedKernel] = {}
_LIMITS_CACHE_SIZE = 256  # (parameter set, dtype, device) entries per kernel


def fused_kernel(kernel: Kernel) -> FusedKernel:
    """The (cached) fused version of ``kernel``."""
    fk = _FUSED.get(kernel.name)
    if fk is None or fk.kernel is not kernel:
        fk = _FUSED[kernel.name] = FusedKernel(kernel)
    return fk


_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _onnx_export_check() -> Callable[[], bool]:
    """``torch.onnx.is_in_onnx_export`` without its two imports per call (1.2 of an activation call's µs,
    asked up to three times per call); the public function under dynamo, which knows it but skips the
    flags it reads, and where torch's internals have moved."""
    try:
        from torch.onnx._internal.exporter import _flags
        from torch.onnx._internal.torchscript_exporter._globals import GLOBALS
    except ImportError:
        return torch.onnx.is_in_onnx_export

    def check() -> bool:
        if torch.compiler.is_compiling():
            return torch.onnx.is_in_onnx_export()
        return GLOBALS.in_onnx_export or _flags._is_onnx_exporting

    return check


in_onnx_export = _onnx_export_check()


def _eligible(x: Tensor, params: tuple[Tensor, ...]) -> bool:
    """Fused kernels may serve: on, a plain floating tensor, and not traced, exported or transformed."""
    if not _SETTINGS.enabled or type(x) is not torch.Tensor or not x.is_floating_point():
        return False  # tensor subclasses (DTensor, FakeTensor, ...) keep the eager op
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return False
    if torch.jit.is_scripting() or in_onnx_export():
        return False
    for p in params:  # a loop, not any(generator): this runs on every call
        if type(p) not in _PLAIN_TYPES:
            return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)  # vmap, grad transforms


def _path(kernel: Kernel, x: Tensor, params: tuple[Tensor, ...]) -> str | None:
    """Which fused path serves this call: "c", "compiled", or None (the eager op)."""
    if not _eligible(x, params):
        return None
    # a C kernel is faster than the eager ops at any size (256 elements: 62 against 227 µs for mish's f+b)
    if cpu_kernels.applies(kernel.name, x, params):
        return "c"
    if x.numel() < _SETTINGS.min_numel or (kernel.name, x.device.type) in _SETTINGS.failed:
        return None  # small (the compiled call's ~85 µs do not pay), or compiling failed before
    return "compiled"


def _under_outer_compile(x: Tensor) -> bool:
    """Traced by a user's ``torch.compile`` (not export: exported graphs keep the reference formulas)."""
    if not _SETTINGS.enabled or not x.is_floating_point() or not torch.compiler.is_compiling():
        return False
    return not (torch.compiler.is_exporting() or in_onnx_export())


def c_call(kernel: Kernel, x: Tensor, params: tuple[Tensor, ...]) -> Tensor | None:
    """``kernel(x, *params)`` by its C kernel, or None where none serves (then ``fused_call`` decides).

    Asked first, with every check made once: each activation call of a model on the CPU comes here, and in a
    training step its Python runs with the caches cold from the convolutions (a bare ``autograd.Function``'s
    Python took ~30 µs a call inside simple_cnn's step, a few µs in a loop), so each check left out counts."""
    if not (x.is_cpu and _eligible(x, params) and cpu_kernels.applies(kernel.name, x, params)):
        return None
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return fused_kernel(kernel).c_apply(x, params)
    return cpu_kernels.forward(kernel.name, x, params)


def fused_call(kernel: Kernel, x: Tensor, params: tuple[Tensor, ...], needs_grad: bool) -> Tensor | None:
    """``kernel(x, *params)`` through the compiled kernels (traced under an outer ``torch.compile``), or
    None where they do not apply. Calls a C kernel serves are ``c_call``'s, asked before this."""
    if _under_outer_compile(x):
        return fused_kernel(kernel).traced(x, params, needs_grad)
    if _path(kernel, x, params) != "compiled":
        return None
    fk = fused_kernel(kernel)
    if needs_grad:
        return fk.function.apply(x, *params)
    return fk.forward(x, params)


def describe() -> str:
    """One line for reports: whether fused kernels are on, their threshold and any failures, the C kernels'
    library and the C++ op around them."""
    state = "on" if _SETTINGS.enabled else f"off ({ENV_ENABLE}=0 or set_fused(False))"
    failed = "; failed: " + ", ".join(f"{k}/{d}" for k, d in _SETTINGS.failed) if _SETTINGS.failed else ""
    variant = "" if _SETTINGS.formulas == "auto" else f", {_SETTINGS.formulas} formulas"
    variant += "" if _SETTINGS.dynamic else ", static shapes first"
    variant += "" if _SETTINGS.rows else ", parameter sums not by rows"
    variant += "" if _SETTINGS.align else ", no aligned rows"
    kernels = f"{cpu_kernels.status()}; {cpp_op.status()}"
    return f"fused kernels {state}, min_numel {_SETTINGS.min_numel}{variant}{failed}; {kernels}"


__all__ = [
    "DEFAULT_MIN_NUMEL",
    "ENV_ALIGN",
    "ENV_DYNAMIC",
    "ENV_ENABLE",
    "ENV_FORMULAS",
    "ENV_MIN_NUMEL",
    "ENV_ROWS",
    "FAST_FP32",
    "FORMULAS",
    "OWN_LIMITS",
    "FusedKernel",
    "autograd_op",
    "c_call",
    "describe",
    "erf_fast",
    "erfc_fast",
    "failures",
    "fused_call",
    "fused_enabled",
    "fused_kernel",
    "min_numel",
    "reset",
    "set_fused",
    "tanh_fast",
    "use_fused",
]
