"""Pure activation math: for each activation a forward ``f(x, *params)`` and an analytic backward.

Every function here is elementwise, takes *finite* inputs already in the compute dtype (float32 or
float64) and parameters as tensors that broadcast against ``x``, and must stay NaN-free for every
finite input: no ``0 * inf``, ``inf - inf`` or ``inf / inf`` from an overflowing intermediate.
Infinite inputs, reduced precisions and the choice of autograd path are handled one level up, in
``autograd.py``. A backward ``f_bwd(g, x, *params)`` returns ``(grad_x, grad_p1, ...)``; parameter
gradients may be elementwise (the caller reduces them to the parameter's shape).

Only ops that the ONNX (dynamo) exporter and ``torch.jit.trace`` understand are used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# The formulas below spell these as literals (named in a comment): torch.compile turns a float read from a
# module global into a float64 input of the kernel, reloaded and converted in every iteration.
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715


# ----------------------------------------------------------------------------------------------
# helpers


def mul0(a: Tensor, b: Tensor) -> Tensor:
    """a*b, but 0 where either factor is 0: the limit of ``x * exp(-x)``-like products at overflow."""
    return torch.where((a == 0) | (b == 0), 0.0, a * b)


def hypot(a: Tensor, b: Tensor) -> Tensor:
    """Overflow-safe sqrt(a² + b²) built from exportable ops (``torch.hypot`` does not export to ONNX)."""
    a, b = a.abs(), b.abs()
    big, small = torch.maximum(a, b), torch.minimum(a, b)
    ratio = torch.where(big == 0, 0.0, small / big)
    return big * torch.sqrt(1 + ratio * ratio)


def sech2_of_nonneg(u: Tensor) -> Tensor:
    """sech²(u) for u ≥ 0 as 4e/(1+e)², e = exp(-2u): exact where 1 - tanh² would round to 0."""
    e = torch.exp(-2 * u)
    return 4 * e / ((1 + e) * (1 + e))


def sigmoid_pair(z: Tensor) -> Tensor:
    """σ(z)·σ(-z) = σ'(z), without the cancellation of σ(1-σ)."""
    return torch.sigmoid(z) * torch.sigmoid(-z)


# ----------------------------------------------------------------------------------------------
# Swish / SiLU  (arXiv:1710.05941, arXiv:1702.03118): x·σ(βx)


def swish(x: Tensor, beta: Tensor) -> Tensor:
    return x * torch.sigmoid(beta * x)


def swish_bwd(g: Tensor, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    bx = beta * x
    s, ss = torch.sigmoid(bx), sigmoid_pair(bx)
    grad_x = g * (s + mul0(bx, ss))
    grad_beta = g * mul0(x * x, ss)
    return grad_x, grad_beta


def silu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def silu_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    return (g * (torch.sigmoid(x) + x * sigmoid_pair(x)),)


# ----------------------------------------------------------------------------------------------
# Softplus ln(1 + e^{βx})/β (linear above βx > threshold, as torch), the ELU family, PReLU


def softplus(x: Tensor, beta: Tensor, threshold: Tensor) -> Tensor:
    z = beta * x
    smooth = (torch.relu(z) + torch.log1p(torch.exp(-z.abs()))) / beta  # no overflow for z ≫ 0
    return torch.where(z > threshold, x, smooth)


def softplus_bwd(g: Tensor, x: Tensor, beta: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    z = beta * x
    grad_x = g * torch.where(z > threshold, 1.0, torch.sigmoid(z))
    none = torch.zeros_like(grad_x)  # β and the threshold are fixed (buffers): never asked for
    return grad_x, none, none


def elu(x: Tensor, alpha: Tensor, input_scale: Tensor, scale: Tensor) -> Tensor:
    """scale·(x if x > 0 else α·(e^{x·input_scale} - 1)): ELU (1, 1), CELU (input_scale 1/α), SELU (scale λ);
    ±inf give their limits as they are (the unselected branch may be inf, never NaN)."""
    return scale * torch.where(x > 0, x, alpha * torch.expm1(x * input_scale))


def elu_bwd(g: Tensor, x: Tensor, alpha: Tensor, input_scale: Tensor, scale: Tensor) -> tuple[Tensor, ...]:
    slope = torch.where(x > 0, 1.0, (alpha * input_scale) * torch.exp(x * input_scale))
    grad_x = g * (scale * slope)
    none = torch.zeros_like(grad_x)  # α, the input scale and λ are fixed (buffers): never asked for
    return grad_x, none, none, none


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    return torch.where(x > 0, x, mul0(weight, x))  # a = 0 at x = -inf: 0, not NaN


def prelu_bwd(g: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    return g * torch.where(x > 0, 1.0, weight), g * torch.clamp(x, max=0.0)


def hard_swish(x: Tensor) -> Tensor:
    # x·(relu6(x + 3)/6): divide the gate first so x·gate never overflows (native x·relu6(x+3)/6 does)
    return x * (torch.clamp(x + 3, 0.0, 6.0) / 6)


def hard_swish_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    inner = (2 * x + 3) / 6
    return (g * torch.where(x >= 3, 1.0, torch.where(x <= -3, 0.0, inner)),)


# ----------------------------------------------------------------------------------------------
# Mish (arXiv:1908.08681): x·tanh(softplus(x))


# One exponential: with e = eˣ, n = e(e + 2) = (1 + e)² - 1, tanh(softplus(x)) = n/(n + 2) and
# σ(x)·sech²(softplus(x)) = 4e(1 + e)/(n + 2)²; no cancellation for any x. Past x = 20 tanh(softplus(x))
# is 1 in float32 and float64, so eˣ is taken at min(x, 20) and never overflows (n + 2 ≤ e⁴⁰, squared e⁸⁰).
MISH_CLAMP = 20.0


def _mish_parts(x: Tensor) -> tuple[Tensor, Tensor]:
    e = torch.exp(torch.clamp(x, max=20.0))  # MISH_CLAMP
    return e, e * (e + 2)


def mish(x: Tensor) -> Tensor:
    _, n = _mish_parts(x)
    return x * (n / (n + 2))


def mish_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    e, n = _mish_parts(x)
    den = n + 2
    slope = n / den + x * (4 * e * (1 + e) / (den * den))
    return (g * torch.where(x > 20.0, 1.0, slope),)  # MISH_CLAMP


# ----------------------------------------------------------------------------------------------
# GELU (arXiv:1606.08415): x·Φ(x), Φ via erfc so the left tail keeps its relative precision


def gelu(x: Tensor) -> Tensor:
    return x * (0.5 * torch.erfc(-x * 0.7071067811865475))  # INV_SQRT_2


def gelu_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    cdf = 0.5 * torch.erfc(-x * 0.7071067811865475)  # INV_SQRT_2
    pdf = torch.exp(-0.5 * x * x) * 0.3989422804014327  # INV_SQRT_2PI
    return (g * (cdf + x * pdf),)


def _gelu_tanh_u(x: Tensor) -> Tensor:
    return 0.7978845608028654 * (x + 0.044715 * x * x * x)  # SQRT_2_OVER_PI, GELU_TANH_C


def gelu_tanh(x: Tensor) -> Tensor:
    # 0.5·x·(1 + tanh u) = x·σ(2u): same value, no cancellation of 1 + tanh u for u ≪ 0
    return x * torch.sigmoid(2 * _gelu_tanh_u(x))


def gelu_tanh_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    two_u = 2 * _gelu_tanh_u(x)
    du = 0.7978845608028654 * (1 + 3 * 0.044715 * x * x)  # SQRT_2_OVER_PI, GELU_TANH_C
    return (g * (torch.sigmoid(two_u) + 2 * mul0(x * du, sigmoid_pair(two_u))),)


# ----------------------------------------------------------------------------------------------
# Smooth maximum of (a·x, b·x) (SMU paper, arXiv:2111.04682), |z| ≈ z·erf(μz) or sqrt(z² + μ²)
#   erf form:  x·h,  h = b + (a-b)·Φ̃(z),  Φ̃(z) = erfc(-z)/2,  z = μ(a-b)x      (x factored out)
#   sqrt form: ((a+b)x + sqrt(((a-b)x)² + μ²)) / 2


def smooth_max_erf(x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> Tensor:
    d = a - b
    z = mu * d * x
    return x * (b + d * (0.5 * torch.erfc(-z)))


def smooth_max_erf_bwd(g: Tensor, x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> tuple[Tensor, ...]:
    d = a - b
    z = mu * d * x
    upper = 0.5 * torch.erfc(-z)  # Φ̃(z)
    gauss = torch.exp(-z * z) * 0.5641895835477563  # INV_SQRT_PI
    z_gauss = mul0(z, gauss)
    grad_x = g * (b + d * upper + d * z_gauss)
    grad_a = g * x * (upper + z_gauss)
    grad_b = g * x * (0.5 * torch.erfc(z) - z_gauss)
    dx = d * x
    grad_mu = g * mul0(dx * dx, gauss)
    return grad_x, grad_a, grad_b, grad_mu


def smooth_max_sqrt(x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> Tensor:
    s, d = a + b, a - b
    ax, amu = x.abs(), mu.abs()
    direct = 0.5 * s * x + 0.5 * hypot(d * x, mu)
    # |x| > |μ|: divide through by |x| (t = |μ|/|x| < 1) so nothing overflows, and where s·x < 0
    # use (r - |s||x|) = (r² - s²x²)/(r + |s||x|) = (μ² - 4abx²)/(...) to avoid cancellation.
    t = amu / torch.where(ax > amu, ax, 1.0)
    rt = hypot(d, t)
    same_sign = ax * (0.5 * (s * torch.sign(x) + rt))
    opposite = 0.5 * (amu * t - 4 * mul0(a * b, ax)) / (rt + s.abs())
    far = torch.where(s * x >= 0, same_sign, opposite)
    return torch.where(ax > amu, far, direct)


def smooth_max_sqrt_bwd(g: Tensor, x: Tensor, a: Tensor, b: Tensor, mu: Tensor) -> tuple[Tensor, ...]:
    s, d = a + b, a - b
    r = hypot(d * x, mu)
    safe_r = torch.where(r == 0, 1.0, r)
    u = torch.where(r == 0, 0.0, (d * x) / safe_r)  # ∈ [-1, 1]
    grad_x = g * 0.5 * (s + d * u)
    grad_a = g * 0.5 * x * (1 + u)
    grad_b = g * 0.5 * x * (1 - u)
    grad_mu = g * torch.where(r == 0, 0.5, 0.5 * mu / safe_r)
    return grad_x, grad_a, grad_b, grad_mu


def smu_pair(smooth_max_fwd: Callable[..., Tensor], smooth_max_bwd: Callable[..., tuple[Tensor, ...]]):
    """(forward, backward) of smooth max(x, αx), i.e. a = 1, b = α, from a smooth maximum's pair; the backward
    returns the gradients for (x, α, μ)."""

    def forward(x: Tensor, alpha: Tensor, mu: Tensor) -> Tensor:
        return smooth_max_fwd(x, torch.ones_like(alpha), alpha, mu)

    def backward(g: Tensor, x: Tensor, alpha: Tensor, mu: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        grad_x, _, grad_alpha, grad_mu = smooth_max_bwd(g, x, torch.ones_like(alpha), alpha, mu)
        return grad_x, grad_alpha, grad_mu

    return forward, backward


# SMU: smooth max(x, αx) with the erf approximation of |·|; SMU-1: with the sqrt(z² + μ²) one.
smu, smu_bwd = smu_pair(smooth_max_erf, smooth_max_erf_bwd)
smu1, smu1_bwd = smu_pair(smooth_max_sqrt, smooth_max_sqrt_bwd)


# ----------------------------------------------------------------------------------------------
# TanhSoft (arXiv:2009.03863): tanh(αx + β·e^{γx})·ln(δ + eˣ)


def _tanhsoft_parts(x, alpha, beta, gamma, delta):
    e_gx = torch.exp(gamma * x)
    w = alpha * x + mul0(beta, e_gx)
    log_term = torch.logaddexp(x, torch.log(delta))  # ln(δ + eˣ); δ = 0 gives x exactly
    return e_gx, w, torch.tanh(w), log_term


def tanhsoft(x: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, delta: Tensor) -> Tensor:
    _, _, tanh_w, log_term = _tanhsoft_parts(x, alpha, beta, gamma, delta)
    return mul0(tanh_w, log_term)


def tanhsoft_bwd(g, x, alpha, beta, gamma, delta) -> tuple[Tensor, ...]:
    e_gx, w, tanh_w, log_term = _tanhsoft_parts(x, alpha, beta, gamma, delta)
    sech2 = sech2_of_nonneg(w.abs())
    sech2_e = mul0(sech2, e_gx)  # sech²(w)·e^{γx} → 0 when e^{γx} overflows
    d_log = torch.sigmoid(x - torch.log(delta))  # eˣ/(δ + eˣ)
    grad_x = g * (mul0(sech2 * alpha + mul0(beta * gamma, sech2_e), log_term) + tanh_w * d_log)
    grad_alpha = g * sech2 * x * log_term
    grad_beta = g * mul0(sech2_e, log_term)
    grad_gamma = g * mul0(mul0(beta * x, sech2_e), log_term)  # β = 0: 0 where e^{γx} overflowed
    grad_delta = g * tanh_w * torch.exp(-log_term)
    return grad_x, grad_alpha, grad_beta, grad_gamma, grad_delta


# ----------------------------------------------------------------------------------------------
# EIS (arXiv:2009.13501): x·softplus(x)^α / (sqrt(β + γx²) + δ·e^{-θx})
# Written as P·R with P = sp^α and R = x/D, and nothing may overflow. With M = max(1, |x|·min(1, √γ))
# the root is H = M·hs, hs = sqrt(β/M² + γ(x/M)²) (M = 1 when γ = 0: H is just √β), and D is scaled
# by F = exp(-|θx|) ∈ (0, 1]: for θx < 0, D·F = H·F + δ (e^{-θx} = 1/F would overflow), else D = H + δF.


def _eis_parts(x, alpha, beta, gamma, delta, theta):
    sp = F.softplus(x)
    p = sp.pow(alpha)
    big = torch.clamp(x.abs() * torch.clamp(torch.sqrt(gamma), max=1.0), min=1.0)
    xs = x / big
    hs = hypot(torch.sqrt(beta) / big, torch.sqrt(gamma) * xs)  # H / M
    f = torch.exp(-(theta * x).abs())
    mf = big * f
    neg = theta * x < 0
    den_neg, den_pos = hs * mf + delta, hs + delta * f / big  # D·F and D/M
    # δ = 0 with H·F underflowed: D·F is 0, where D = H itself is the positive side's D/M
    by_f = neg & (den_neg != 0)
    r = torch.where(by_f, xs * mf / den_neg, xs / den_pos)  # x/D
    inv_d = torch.where(by_f, f / den_neg, (1 / big) / den_pos)  # 1/D
    e_inv_d = torch.where(neg, 1 / den_neg, (f / big) / den_pos)  # e^{-θx}/D
    x_over_h = torch.where(hs == 0, 0.0, xs / torch.where(hs == 0, 1.0, hs))
    return sp, p, big * hs, r, inv_d, e_inv_d, x_over_h


def eis(x: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, delta: Tensor, theta: Tensor) -> Tensor:
    _, p, _, r, _, _, _ = _eis_parts(x, alpha, beta, gamma, delta, theta)
    return p * r


def eis_bwd(g, x, alpha, beta, gamma, delta, theta) -> tuple[Tensor, ...]:
    sp, p, h, r, inv_d, e_inv_d, x_over_h = _eis_parts(x, alpha, beta, gamma, delta, theta)
    # d/dx sp^α = α·sp^α·(σ/sp); σ/sp → 1 - eˣ/2 as x → -∞, where both underflow
    ratio = torch.where(x < -20, 1 - 0.5 * torch.exp(x), torch.sigmoid(x) / torch.where(x < -20, 1.0, sp))
    dp = alpha * p * ratio
    safe_h = torch.where(h == 0, 1.0, h)
    q = mul0(delta, e_inv_d)  # share of the exponential term in D: 0 for δ = 0 even where e^{-θx}/D is inf
    # x/H is unbounded only when γ = 0 (then it is multiplied by 0): mul0 keeps that product 0
    dr = inv_d - mul0(r * gamma, x_over_h) * inv_d + theta * mul0(r, q)
    grad_x = g * (dp * r + p * dr)
    pr = p * r
    grad_alpha = g * mul0(p, torch.log(sp)) * r
    grad_beta = g * torch.where(h == 0, 0.0, -pr * inv_d / (2 * safe_h))
    grad_gamma = g * (-0.5 * mul0(pr * r, x_over_h))
    grad_delta = g * (-pr * e_inv_d)
    grad_theta = g * pr * mul0(x, q)
    return grad_x, grad_alpha, grad_beta, grad_gamma, grad_delta, grad_theta


# ----------------------------------------------------------------------------------------------
# ErfAct and Pserf (arXiv:2109.04386), Serf (arXiv:2108.09598)


def erfact(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    return x * torch.erf(mul0(alpha, torch.exp(beta * x)))


def erfact_bwd(g, x, alpha, beta) -> tuple[Tensor, Tensor, Tensor]:
    e_bx = torch.exp(beta * x)
    w = mul0(alpha, e_bx)
    k = 1.1283791670955126 * torch.exp(-w * w)  # erf'(w); 2·INV_SQRT_PI
    k_w = mul0(w, k)
    grad_x = g * (torch.erf(w) + x * beta * k_w)
    grad_alpha = g * x * mul0(e_bx, k)
    grad_beta = g * mul0(x * x, k_w)
    return grad_x, grad_alpha, grad_beta


def pserf(x: Tensor, gamma: Tensor, delta: Tensor) -> Tensor:
    return x * torch.erf(gamma * F.softplus(delta * x))


def pserf_bwd(g, x, gamma, delta) -> tuple[Tensor, Tensor, Tensor]:
    dx = delta * x
    sp = F.softplus(dx)
    v = gamma * sp
    k = 1.1283791670955126 * torch.exp(-v * v)  # 2·INV_SQRT_PI
    k_sig = k * torch.sigmoid(dx)
    grad_x = g * (torch.erf(v) + (x * k_sig) * (gamma * delta))  # x·k_sig first: x·γ may overflow
    grad_gamma = g * x * mul0(k, sp)
    grad_delta = g * gamma * mul0(x * x, k_sig)
    return grad_x, grad_gamma, grad_delta


def serf(x: Tensor) -> Tensor:
    return x * torch.erf(F.softplus(x))


def serf_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    sp = F.softplus(x)
    k = 1.1283791670955126 * torch.exp(-sp * sp)  # 2·INV_SQRT_PI
    return (g * (torch.erf(sp) + x * torch.sigmoid(x) * k),)  # x·σ first: x·k may overflow


# ----------------------------------------------------------------------------------------------
# TanhExp (arXiv:2003.01950): x·tanh(eˣ); Logish (Neurocomputing 2021): αx·ln(1 + σ(βx))


def tanhexp(x: Tensor) -> Tensor:
    return x * torch.tanh(torch.exp(x))


def tanhexp_bwd(g: Tensor, x: Tensor) -> tuple[Tensor]:
    e = torch.exp(x)
    return (g * (torch.tanh(e) + x * mul0(e, sech2_of_nonneg(e))),)


def logish(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    return alpha * (x * torch.log1p(torch.sigmoid(beta * x)))  # α·x may overflow before the 0 factor


def logish_bwd(g, x, alpha, beta) -> tuple[Tensor, Tensor, Tensor]:
    bx = beta * x
    s = torch.sigmoid(bx)
    log_term = torch.log1p(s)
    ss = sigmoid_pair(bx) / (1 + s)
    grad_x = g * alpha * (log_term + mul0(bx, ss))
    grad_alpha = g * (x * log_term)
    grad_beta = g * alpha * mul0(x * x, ss)
    return grad_x, grad_alpha, grad_beta


# ----------------------------------------------------------------------------------------------
# Padé Activation Unit, "safe" form (arXiv:1907.06732): P(x)/Q(x),
#   P = Σ_{j=0}^{m} a_j x^j,  Q = 1 + Σ_{k=1}^{n} |b_k|·|x|^k.
# Evaluated with numerator and denominator divided by M^n, M = max(1, |x|), so x^m never overflows:
#   x^j/M^n = s^j·M^{j-n} with s = x/M ∈ [-1, 1].


def _scaled_power(s: Tensor, big: Tensor, inv: Tensor, j: int, n: int) -> Tensor:
    """x^j / M^n = s^j·M^{j-n}: a power of s ∈ [-1, 1] times a power of M that cannot overflow."""
    return s**j * (inv ** (n - j) if j <= n else big ** (j - n))


def _pau_scaled_powers(x: Tensor, n: int, m: int):
    big = torch.clamp(x.abs(), min=1.0)
    s = x / big
    inv = 1 / big
    # x^j / M^n for j = 0..m (j > n grows like M^{j-n}, exact powers of M, never of x)
    pow_x = [_scaled_power(s, big, inv, j, n) for j in range(m + 1)]
    pow_abs = [s.abs() ** k * inv ** (n - k) for k in range(n + 1)]  # |x|^k / M^n
    return s, big, inv, pow_x, pow_abs


def pau(x: Tensor, numerator: Tensor, denominator: Tensor) -> Tensor:
    m, n = numerator.numel() - 1, denominator.numel()
    _, _, _, pow_x, pow_abs = _pau_scaled_powers(x, n, m)
    p = sum(numerator[j] * pow_x[j] for j in range(m + 1))
    q = pow_abs[0] + sum(denominator[k - 1].abs() * pow_abs[k] for k in range(1, n + 1))
    return p / q


def _totals(terms: list[Tensor]) -> Tensor:
    """The sum of all of each term, as one vector: by the last dimension first, stacked, then over the rest.
    On the 2-D views of the compiled backward (``fused.by_rows``) the row sums then run in grad_x's kernel,
    where a full sum would read x again, and one reduction adds up the rows of every term (a sum per term
    was a kernel per term on the GPU: PAU's backward launched 9 kernels where 2 do)."""
    return torch.stack([t.sum(-1).reshape(-1) for t in terms]).sum(1)


def pau_bwd(g: Tensor, x: Tensor, numerator: Tensor, denominator: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    m, n = numerator.numel() - 1, denominator.numel()
    s, big, inv, pow_x, pow_abs = _pau_scaled_powers(x, n, m)
    p = sum(numerator[j] * pow_x[j] for j in range(m + 1))
    q = pow_abs[0] + sum(denominator[k - 1].abs() * pow_abs[k] for k in range(1, n + 1))
    y = p / q
    # d/dx x^j = j·x^{j-1}, divided by M^n like everything else
    dp = sum(j * numerator[j] * _scaled_power(s, big, inv, j - 1, n) for j in range(1, m + 1))
    dq = torch.sign(x) * sum(
        k * denominator[k - 1].abs() * s.abs() ** (k - 1) * inv ** (n - k + 1) for k in range(1, n + 1)
    )
    grad_x = g * (dp - y * dq) / q
    g_over_q = (g / q).double()
    # accumulate in float64: terms grow like x, and ±huge terms must not sum to inf - inf. d|b|/db = sign(b)
    # goes into each term (exact), so that the sums' only epilogue is the cast, fused into the last reduction.
    sums = _totals(
        [g_over_q * pow_x[j].double() for j in range(m + 1)]
        + [-g_over_q * (y * pow_abs[k] * torch.sign(denominator[k - 1])).double() for k in range(1, n + 1)]
    )
    grads = sums.to(x.dtype)
    return grad_x, grads[: m + 1], grads[m + 1 :]
