"""Thin ``nn.Module`` wrappers: each owns its parameters (learnable → ``nn.Parameter``, fixed → buffer)
and calls its kernel. The math lives in ``functional``; the autograd op in ``autograd``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as AF
from .autograd import Kernel

KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        Kernel("swish", AF.swish, AF.swish_bwd),
        Kernel("silu", AF.silu, AF.silu_bwd),
        Kernel("hard_swish", AF.hard_swish, AF.hard_swish_bwd),
        Kernel("mish", AF.mish, AF.mish_bwd),
        Kernel("gelu", AF.gelu, AF.gelu_bwd),
        Kernel("gelu_tanh", AF.gelu_tanh, AF.gelu_tanh_bwd),
        Kernel("smu", AF.smu, AF.smu_bwd),
        Kernel("smu1", AF.smu1, AF.smu1_bwd),
        Kernel("smooth_max_erf", AF.smooth_max_erf, AF.smooth_max_erf_bwd),
        Kernel("smooth_max_sqrt", AF.smooth_max_sqrt, AF.smooth_max_sqrt_bwd),
        Kernel("tanhsoft", AF.tanhsoft, AF.tanhsoft_bwd),
        Kernel("eis", AF.eis, AF.eis_bwd),
        Kernel("erfact", AF.erfact, AF.erfact_bwd),
        Kernel("pserf", AF.pserf, AF.pserf_bwd),
        Kernel("serf", AF.serf, AF.serf_bwd),
        Kernel("tanhexp", AF.tanhexp, AF.tanhexp_bwd),
        Kernel("logish", AF.logish, AF.logish_bwd),
        Kernel("pau", AF.pau, AF.pau_bwd, coefficients=True),
        Kernel("softplus", AF.softplus, AF.softplus_bwd),
        Kernel("prelu", AF.prelu, AF.prelu_bwd),
        Kernel("elu", AF.elu, AF.elu_bwd),
        Kernel("celu", AF.elu, AF.elu_bwd),  # the same math; their own names for the bench's native ops
        Kernel("selu", AF.elu, AF.elu_bwd),
    )
}

# A least-squares fit of leaky_relu(0.01) on [-3, 3] by the safe PAU of degrees (5, 4)
# (rational_activations' "A" version init; refitted and checked in tests/test_activations.py).
PAU_LEAKY_RELU_NUMERATOR = (0.02979246, 0.61837738, 2.32335207, 3.05202660, 1.48548002, 0.25103717)
PAU_LEAKY_RELU_DENOMINATOR = (1.14201226, 4.39322834, 0.87154450, 0.34720652)


class KernelActivation(nn.Module):
    """Base of actlab's own activations: named parameters fed to one ``Kernel``."""

    kernel_name: str = ""
    param_names: tuple[str, ...] = ()
    per_channel: bool = True  # parameters with C > 1 entries broadcast along dim 1 of the input

    def _add(self, name: str, value: float | Tensor, learnable: bool, num: int = 1) -> None:
        tensor = torch.as_tensor(value, dtype=torch.float32).clone()
        if tensor.dim() == 0 and num > 1:
            tensor = tensor.repeat(num)
        if learnable:
            self.register_parameter(name, nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor)

    def _broadcast(self, p: Tensor, x: Tensor) -> Tensor:
        if not self.per_channel or p.numel() == 1:
            return p
        if x.dim() < 2 or x.shape[1] != p.numel():
            raise ValueError(
                f"{type(self).__name__} has {p.numel()} per-channel parameters but the input has shape "
                f"{tuple(x.shape)}; dim 1 must have {p.numel()} channels"
            )
        return p.view(-1, *([1] * (x.dim() - 2)))

    def forward(self, x: Tensor) -> Tensor:
        return KERNELS[self.kernel_name](x, *[self._broadcast(getattr(self, n), x) for n in self.param_names])

    def extra_repr(self) -> str:
        parts = []
        for n in self.param_names:
            p = getattr(self, n)
            value = f"{p.item():.6g}" if p.numel() == 1 else f"[{p.numel()}]"
            parts.append(f"{n}={value}" + ("*" if isinstance(p, nn.Parameter) else ""))
        return ", ".join(parts)


class Swish(KernelActivation):
    """Swish x·σ(βx) (arXiv:1710.05941); β fixed, or learnable as a scalar or one per channel."""

    kernel_name, param_names = "swish", ("beta",)

    def __init__(self, beta: float = 1.0, learnable: bool = False, num_parameters: int = 1) -> None:
        super().__init__()
        if num_parameters < 1:
            raise ValueError(f"num_parameters must be >= 1, got {num_parameters}")
        if num_parameters > 1 and not learnable:
            raise ValueError("num_parameters > 1 needs learnable=True (a fixed β is one number)")
        self._add("beta", beta, learnable, num_parameters)


class SiLU(KernelActivation):
    """SiLU x·σ(x) (arXiv:1702.03118), Swish with β fixed at 1; finite gradients at ±inf."""

    kernel_name = "silu"


class HardSwish(KernelActivation):
    """Hard-Swish x·relu6(x + 3)/6 (arXiv:1905.02244); unlike nn.Hardswish, finite at the largest floats."""

    kernel_name = "hard_swish"


class Mish(KernelActivation):
    """Mish x·tanh(softplus(x)) (arXiv:1908.08681)."""

    kernel_name = "mish"


class Softplus(KernelActivation):
    """Softplus ln(1 + e^{βx})/β, x where βx > threshold (as ``nn.Softplus``); fused forward and backward."""

    kernel_name, param_names = "softplus", ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if beta == 0:
            raise ValueError("beta must be non-zero (softplus divides by it), got 0")
        for name, value in (("beta", beta), ("threshold", threshold)):  # not persistent: nn.Softplus has none
            self.register_buffer(name, torch.tensor(float(value)), persistent=False)


class _ELUFamily(KernelActivation):
    """scale·(x if x > 0 else α·(e^{x·input_scale} - 1)) with fixed constants; ``inplace`` is accepted for
    torch's signature and has no effect (the fused op writes a new tensor and saves only its input)."""

    kernel_name, param_names = "elu", ("alpha", "input_scale", "scale")

    def _constants(self, alpha: float, input_scale: float, scale: float) -> None:
        for name, value in (("alpha", alpha), ("input_scale", input_scale), ("scale", scale)):
            # float64: SELU's constants stay exact in float64; not persistent: state dicts stay as nn.ELU's
            self.register_buffer(name, torch.tensor(value, dtype=torch.float64), persistent=False)


class ELU(_ELUFamily):
    """ELU x if x > 0 else α(eˣ - 1) (arXiv:1511.07289), as ``nn.ELU``; fused forward and backward."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self._constants(alpha, 1.0, 1.0)


class CELU(_ELUFamily):
    """CELU max(0, x) + min(0, α(e^{x/α} - 1)) (arXiv:1704.07483), as ``nn.CELU``; fused."""

    kernel_name = "celu"

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if alpha == 0:
            raise ValueError("alpha must be non-zero for CELU (it divides by it), got 0")
        self._constants(alpha, 1.0 / alpha, 1.0)


class SELU(_ELUFamily):
    """SELU λ·(x if x > 0 else α(eˣ - 1)), the paper's α and λ (arXiv:1706.02515), as ``nn.SELU``; fused."""

    kernel_name = "selu"

    ALPHA = 1.6732632423543772848170429916717
    LAMBDA = 1.0507009873554804934193349852946

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self._constants(self.ALPHA, 1.0, self.LAMBDA)


class PReLU(KernelActivation):
    """PReLU max(0, x) + a·min(0, x) (arXiv:1502.01852), a learnable, one or one per channel (as ``nn.PReLU``,
    same ``weight`` name, so its state dicts load); fused forward and backward with the weight's gradient."""

    kernel_name, param_names = "prelu", ("weight",)

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        if num_parameters < 1:
            raise ValueError(f"num_parameters must be >= 1, got {num_parameters}")
        self._add("weight", torch.full((num_parameters,), float(init)), learnable=True)  # shape as nn.PReLU


class GELU(KernelActivation):
    """GELU x·Φ(x) (arXiv:1606.08415), exact (erf) or the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kernel_name = "gelu" if approximate == "none" else "gelu_tanh"

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SMU(KernelActivation):
    """Smooth Maximum Unit ((1+α)x + (1-α)x·erf(μ(1-α)x))/2 (arXiv:2111.04682); μ learnable."""

    kernel_name, param_names = "smu", ("alpha", "mu")

    def __init__(
        self, alpha: float = 0.01, mu: float = 2.5, learnable_mu: bool = True, learnable_alpha: bool = False
    ) -> None:
        super().__init__()
        self._add("alpha", alpha, learnable_alpha)
        self._add("mu", mu, learnable_mu)


class SMU1(KernelActivation):
    """SMU-1 ((1+α)x + sqrt((1-α)²x² + μ²))/2 (arXiv:2111.04682); μ learnable."""

    kernel_name, param_names = "smu1", ("alpha", "mu")

    def __init__(
        self,
        alpha: float = 0.01,
        mu: float = 4.332461424154261e-9,
        learnable_mu: bool = True,
        learnable_alpha: bool = False,
    ) -> None:
        super().__init__()
        self._add("alpha", alpha, learnable_alpha)
        self._add("mu", mu, learnable_mu)


class SmoothMax(KernelActivation):
    """Smooth maximum of (a·x, b·x), |z| ≈ z·erf(μz) ('erf') or sqrt(z² + μ²) ('sqrt'): SMU's origin."""

    param_names = ("a", "b", "mu")

    def __init__(
        self,
        a: float = 1.0,
        b: float = 0.01,
        mu: float = 2.5,
        form: str = "erf",
        learnable_mu: bool = True,
        learnable_ab: bool = False,
    ) -> None:
        super().__init__()
        if form not in ("erf", "sqrt"):
            raise ValueError(f"form must be 'erf' or 'sqrt', got {form!r}")
        self.form, self.kernel_name = form, f"smooth_max_{form}"
        self._add("a", a, learnable_ab)
        self._add("b", b, learnable_ab)
        self._add("mu", mu, learnable_mu)


class TanhSoft(KernelActivation):
    """TanhSoft tanh(αx + β·e^{γx})·ln(δ + eˣ) (arXiv:2009.03863); default x·tanh(0.6eˣ)."""

    kernel_name, param_names = "tanhsoft", ("alpha", "beta", "gamma", "delta")

    def __init__(
        self,
        alpha: float = 0.0,
        beta: float = 0.6,
        gamma: float = 1.0,
        delta: float = 0.0,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        if not (alpha <= 1 and beta >= 0 and gamma > 0 and 0 <= delta <= 1):
            raise ValueError(
                f"TanhSoft needs alpha <= 1, beta >= 0, gamma > 0, 0 <= delta <= 1; got "
                f"alpha={alpha}, beta={beta}, gamma={gamma}, delta={delta}"
            )
        for name, value in zip(self.param_names, (alpha, beta, gamma, delta), strict=True):
            self._add(name, value, learnable)


class EIS(KernelActivation):
    """EIS x·softplus(x)^α / (sqrt(β + γx²) + δe^{-θx}) (arXiv:2009.13501); defaults are EIS-1."""

    kernel_name, param_names = "eis", ("alpha", "beta", "gamma", "delta", "theta")

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.0,
        gamma: float = 1.0,
        delta: float = 1.16,
        theta: float = 1.0,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        if min(alpha, beta, gamma, delta, theta) < 0 or (beta == 0 and delta == 0):
            raise ValueError(
                "EIS needs alpha, beta, gamma, delta, theta >= 0 and beta + delta > 0 (else 0/0 at x = 0); "
                f"got alpha={alpha}, beta={beta}, gamma={gamma}, delta={delta}, theta={theta}"
            )
        for name, value in zip(self.param_names, (alpha, beta, gamma, delta, theta), strict=True):
            self._add(name, value, learnable)


class ErfAct(KernelActivation):
    """ErfAct x·erf(α·e^{βx}) (arXiv:2109.04386); α, β learnable."""

    kernel_name, param_names = "erfact", ("alpha", "beta")

    def __init__(self, alpha: float = 0.75, beta: float = 0.75, learnable: bool = True) -> None:
        super().__init__()
        self._add("alpha", alpha, learnable)
        self._add("beta", beta, learnable)


class Pserf(KernelActivation):
    """Pserf x·erf(γ·softplus(δx)) (arXiv:2109.04386); γ, δ learnable; γ = δ = 1 is Serf."""

    kernel_name, param_names = "pserf", ("gamma", "delta")

    def __init__(self, gamma: float = 1.0, delta: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        self._add("gamma", gamma, learnable)
        self._add("delta", delta, learnable)


class Serf(KernelActivation):
    """Serf x·erf(softplus(x)) (arXiv:2108.09598)."""

    kernel_name = "serf"


class TanhExp(KernelActivation):
    """TanhExp x·tanh(eˣ) (arXiv:2003.01950)."""

    kernel_name = "tanhexp"


class Logish(KernelActivation):
    """Logish αx·ln(1 + σ(βx)) (Neurocomputing 2021); α = β = 1 is Logish itself."""

    kernel_name, param_names = "logish", ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        self._add("alpha", alpha, learnable)
        self._add("beta", beta, learnable)


class PAU(KernelActivation):
    """Safe Padé Activation Unit P(x)/(1 + Σ|b_k||x|^k) (arXiv:1907.06732), degrees (5, 4) by default,
    initialised to a leaky-ReLU fit; coefficients shared across channels, learnable."""

    kernel_name, param_names, per_channel = "pau", ("numerator", "denominator"), False

    def __init__(
        self,
        numerator: tuple[float, ...] = PAU_LEAKY_RELU_NUMERATOR,
        denominator: tuple[float, ...] = PAU_LEAKY_RELU_DENOMINATOR,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        if len(numerator) < 1 or len(denominator) < 1:
            raise ValueError(
                f"PAU needs at least one numerator and one denominator coefficient, got "
                f"{len(numerator)} and {len(denominator)}"
            )
        self._add("numerator", torch.tensor(numerator, dtype=torch.float32), learnable)
        self._add("denominator", torch.tensor(denominator, dtype=torch.float32), learnable)

    def extra_repr(self) -> str:
        return f"degrees=({self.numerator.numel() - 1}, {self.denominator.numel()})"
