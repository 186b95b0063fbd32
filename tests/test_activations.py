"""The activation library: exact values and gradients, stability at extreme inputs, identities."""

from __future__ import annotations

import math

import mpmath as mp
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import act_info, cpu_kernels, fused, get_act, list_acts
from actlab.activations.modules import PAU

mp.mp.dps = 40


def f32(value: str) -> mp.mpf:
    """A parameter as the module stores it: rounded to float32."""
    return mp.mpf(float(torch.tensor(float(value), dtype=torch.float32)))


# Every activation with every parameter learnable (interior values, so finite differences stay valid).
LEARNABLE_SPECS = [
    "swish(beta=1.3, learnable=True)",
    "swish(beta=0.7, learnable=True, num_parameters=3)",
    "smu(learnable_alpha=True)",
    "smu(alpha=0.25, mu=3.0, learnable_alpha=True)",
    "smu1(mu=0.5, learnable_alpha=True)",
    "smooth_max(a=0.8, b=0.1, mu=1.5, learnable_ab=True)",
    "smooth_max(a=0.8, b=0.1, mu=0.7, form='sqrt', learnable_ab=True)",
    "tanhsoft(alpha=0.5, beta=0.6, gamma=1.0, delta=0.5, learnable=True)",
    "eis(alpha=0.7, beta=0.5, gamma=1.3, delta=0.9, theta=1.1, learnable=True)",
    "erfact",
    "pserf(gamma=1.2, delta=0.8)",
    "logish(alpha=1.2, beta=2.0, learnable=True)",
    "pau",
    "prelu",
    "prelu(num_parameters=3, init=-0.3)",
]


def _mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _mp_softplus(x):
    return mp.log1p(mp.exp(x))


def _mp_smooth_max_erf(x, a, b, mu):
    return ((a + b) * x + (a - b) * x * mp.erf(mu * (a - b) * x)) / 2


def _mp_smooth_max_sqrt(x, a, b, mu):
    return ((a + b) * x + mp.sqrt(((a - b) * x) ** 2 + mu**2)) / 2


def _mp_eis(a, b, g, d, t):
    return lambda x: x * _mp_softplus(x) ** a / (mp.sqrt(b + g * x * x) + d * mp.exp(-t * x))


def _mp_tanhsoft(a, b, g, d):
    return lambda x: mp.tanh(a * x + b * mp.exp(g * x)) * mp.log(d + mp.exp(x))


PAU_NUM = [mp.mpf(v) for v in PAU().numerator.tolist()]
PAU_DEN = [mp.mpf(v) for v in PAU().denominator.tolist()]

# High-precision definitions straight from the papers' formulas (default parameters).
MP_REFERENCE = {
    "relu": lambda x: max(x, 0),
    "leaky_relu": lambda x: x if x > 0 else mp.mpf("0.01") * x,  # a Python float in torch
    "prelu": lambda x: x if x > 0 else f32("0.25") * x,
    "elu": lambda x: x if x > 0 else mp.expm1(x),
    "celu": lambda x: max(x, 0) + min(0, mp.expm1(x)),
    "selu": lambda x: (
        mp.mpf("1.0507009873554804934193349852946")
        * (x if x > 0 else mp.mpf("1.6732632423543772848170429916717") * mp.expm1(x))
    ),
    "softplus": _mp_softplus,
    "hard_swish": lambda x: x * min(max(x + 3, 0), 6) / 6,
    "identity": lambda x: x,
    "gelu": lambda x: x * mp.ncdf(x),
    "swish": lambda x: x * _mp_sigmoid(x),
    "silu": lambda x: x * _mp_sigmoid(x),
    "mish": lambda x: x * mp.tanh(_mp_softplus(x)),
    "smu": lambda x: _mp_smooth_max_erf(x, 1, f32("0.01"), f32("2.5")),
    "smu1": lambda x: _mp_smooth_max_sqrt(x, 1, f32("0.01"), f32("4.332461424154261e-9")),
    "smu_v1": lambda x: _mp_smooth_max_erf(x, 1, f32("0.25"), f32("1e6")),
    "smu1_v1": lambda x: _mp_smooth_max_sqrt(x, 1, f32("0.25"), f32("4.352665993287951e-9")),
    "smooth_max": lambda x: _mp_smooth_max_erf(x, 1, f32("0.01"), f32("2.5")),
    "tanhsoft": _mp_tanhsoft(0, f32("0.6"), 1, 0),
    "tanhsoft1": _mp_tanhsoft(f32("0.87"), 0, 1, 1),
    "tanhsoft2": _mp_tanhsoft(0, f32("0.6"), 1, 0),
    "eis": _mp_eis(1, 0, 1, f32("1.16"), 1),
    "eis1": _mp_eis(1, 0, 1, f32("1.16"), 1),
    "eis2": _mp_eis(1, 1, 1, 0, 0),
    "eis3": _mp_eis(0, 1, 0, f32("0.68"), f32("1.7")),
    "erfact": lambda x: x * mp.erf(f32("0.75") * mp.exp(f32("0.75") * x)),
    "pserf": lambda x: x * mp.erf(_mp_softplus(x)),
    "serf": lambda x: x * mp.erf(_mp_softplus(x)),
    "tanhexp": lambda x: x * mp.tanh(mp.exp(x)),
    "logish": lambda x: x * mp.log1p(_mp_sigmoid(x)),
    "pau": lambda x: (
        sum(PAU_NUM[j] * x**j for j in range(6))
        / (1 + sum(abs(PAU_DEN[k - 1]) * abs(x) ** k for k in range(1, 5)))
    ),
}
GOLDEN_POINTS = [-30.0, -6.0, -2.5, -1.0, -0.3, 0.1, 0.5, 1.0, 2.0, 4.5, 25.0]


def _fresh(spec: str) -> nn.Module:
    module = get_act(spec)()
    return module.eval() if isinstance(module, nn.RReLU) else module


def test_every_activation_has_a_reference():
    assert set(list_acts()) - {"rrelu"} == set(MP_REFERENCE)


@pytest.mark.parametrize("name", sorted(MP_REFERENCE))
def test_values_and_derivatives_match_high_precision(name):
    module = _fresh(name).double()
    x = torch.tensor(GOLDEN_POINTS, dtype=torch.float64, requires_grad=True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    f = MP_REFERENCE[name]
    for xi, yi, di in zip(GOLDEN_POINTS, y.tolist(), dy.tolist(), strict=True):
        ref = f(mp.mpf(xi))
        ref_d = mp.diff(f, mp.mpf(xi))
        assert yi == pytest.approx(float(ref), rel=1e-12, abs=1e-300), (name, xi)
        # one-sided kinks (relu at 0...) are not on the grid; tolerance covers mp.diff's step
        assert di == pytest.approx(float(ref_d), rel=1e-9, abs=1e-12), (name, xi)


@pytest.mark.parametrize("name", sorted(MP_REFERENCE))
def test_float32_values_close_to_high_precision(name):
    module = _fresh(name)
    x = torch.tensor(GOLDEN_POINTS, dtype=torch.float32)
    with torch.no_grad():
        y = module(x)
    for xi, yi in zip(GOLDEN_POINTS, y.tolist(), strict=True):
        assert yi == pytest.approx(float(MP_REFERENCE[name](mp.mpf(xi))), rel=2e-6, abs=1e-7), (name, xi)


@pytest.mark.parametrize("spec", sorted(set(list_acts()) - {"rrelu"}) + LEARNABLE_SPECS)
def test_gradcheck_float64_including_parameters(spec):
    module = _fresh(spec).double()
    torch.manual_seed(0)
    channels = 3 if "num_parameters=3" in spec else 4
    x = (torch.randn(2, channels, 5, dtype=torch.float64) * 3).requires_grad_()
    params = tuple(p for p in module.parameters())
    assert torch.autograd.gradcheck(lambda x, *_: module(x), (x, *params), eps=1e-6, atol=1e-6)


def test_learnable_specs_really_have_parameters():
    for spec in LEARNABLE_SPECS:
        assert list(_fresh(spec).parameters()), spec


NATIVE = {
    "silu": F.silu,
    "swish": F.silu,
    "mish": F.mish,
    "gelu": F.gelu,
    "gelu(approximate='tanh')": lambda x: F.gelu(x, approximate="tanh"),
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softplus(beta=2, threshold=5)": lambda x: F.softplus(x, 2, 5),
    "softplus(beta=0.5)": lambda x: F.softplus(x, 0.5),
    "celu(alpha=0.5)": lambda x: F.celu(x, 0.5),
    "elu(alpha=2.0)": lambda x: F.elu(x, 2.0),
    "prelu": lambda x: F.prelu(x, torch.tensor([0.25])),
    "leaky_relu": F.leaky_relu,
    "hard_swish": F.hardswish,
}


@pytest.mark.parametrize("spec", sorted(NATIVE))
def test_agrees_with_native_torch_in_float32(spec):
    torch.manual_seed(1)
    x = (torch.randn(4096) * 6).requires_grad_()
    x_native = x.detach().clone().requires_grad_()
    y = _fresh(spec)(x)
    y_native = NATIVE[spec](x_native)
    y.sum().backward()
    y_native.sum().backward()
    x64 = x.detach().double().requires_grad_()
    truth = _fresh(spec).double()(x64)
    (truth_grad,) = torch.autograd.grad(truth.sum(), x64)
    _assert_close_or_closer(y, y_native, truth)
    _assert_close_or_closer(x.grad, x_native.grad, truth_grad)


def test_prelu_softplus_and_elus_are_drop_in_for_torchs_modules():
    torch.manual_seed(0)
    native = torch.nn.PReLU(3, init=0.1)
    ours = _fresh("prelu(num_parameters=3)")
    ours.load_state_dict(native.state_dict())  # same parameter name and shape
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(ours(x), native(x))
    pairs = (("elu(alpha=1.0)", torch.nn.ELU()), ("celu(alpha=0.5)", torch.nn.CELU(0.5)))
    for spec, module in (*pairs, ("selu(inplace=True)", torch.nn.SELU())):
        ours = _fresh(spec)
        ours.load_state_dict(module.state_dict())  # nothing persistent, as torch's
        torch.testing.assert_close(ours(x), module(x))
    assert not _fresh("softplus(beta=2)").state_dict()
    with pytest.raises(ValueError, match="alpha must be non-zero"):
        _fresh("celu(alpha=0)")
    with pytest.raises(ValueError, match="beta must be non-zero"):
        _fresh("softplus(beta=0)")
    with pytest.raises(ValueError, match="num_parameters must be >= 1"):
        _fresh("prelu(num_parameters=0)")


def _assert_close_or_closer(ours, native, truth, tol=1e-6):
    """Within 1e-6 of native torch, except where native is the less exact one (vs a float64 reference)."""
    off = (ours - native).abs() > tol * (1 + native.abs())
    ours_err = (ours.double() - truth)[off].abs()
    native_err = (native.double() - truth)[off].abs()
    assert (ours_err <= native_err).all(), (ours[off], native[off], truth[off])


def test_smu_identities():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    with torch.no_grad():
        smu = get_act("smu(alpha=0.0)")().double()
        smu.mu.fill_(1 / math.sqrt(2))  # exactly 1/√2: float32 storage would round it
        as_gelu = smu(x)
        torch.testing.assert_close(as_gelu, F.gelu(x), rtol=1e-12, atol=1e-14)
        for alpha in (0.01, 0.25):
            smu, smu1 = get_act(f"smu(alpha={alpha}, mu=1e6)")(), get_act(f"smu1(alpha={alpha}, mu=1e-9)")()
            leaky = F.leaky_relu(x, smu.alpha.item())  # α as stored (float32)
            torch.testing.assert_close(smu.double()(x), leaky, rtol=0, atol=1e-6)
            torch.testing.assert_close(smu1.double()(x), leaky, rtol=0, atol=1e-9)


def test_swish_limits_in_beta():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(get_act("swish(beta=1e-9)")().double()(x), x / 2, rtol=0, atol=1e-8)
        torch.testing.assert_close(get_act("swish(beta=1e4)")().double()(x), F.relu(x), rtol=0, atol=1e-3)
        torch.testing.assert_close(get_act("swish(beta=1.0)")().double()(x), F.silu(x))


def test_measured_properties():
    mish = act_info("mish")
    assert mish.minimum == pytest.approx(-0.30884, abs=1e-5)
    assert mish.argmin == pytest.approx(-1.1924, abs=1e-4)
    assert mish.bounded_below and not mish.bounded_above and not mish.monotonic and mish.smooth
    assert act_info("swish").minimum == pytest.approx(-0.2785, abs=1e-4)
    assert act_info("gelu").argmin == pytest.approx(-0.7518, abs=1e-4)
    relu = act_info("relu")
    assert relu.monotonic and relu.bounded_below and not relu.smooth and relu.minimum is None
    assert act_info("smu").learnable == ["mu"]
    assert act_info("smu").paper == "arXiv:2111.04682"
    assert act_info("smu_v1").defaults["alpha"] == 0.25


def test_pau_is_initialised_to_a_leaky_relu_fit():
    x = torch.linspace(-3, 3, 601)
    with torch.no_grad():
        err = (PAU()(x) - F.leaky_relu(x, 0.01)).abs().max()
    assert err < 0.035  # the least-squares optimum of this form is 0.0298


# ------------------------------------------------------------------------------------------------
# Extreme inputs


def _extreme_grid(dtype: torch.dtype) -> list[float]:
    big = torch.finfo(dtype).max
    tiny = torch.finfo(dtype).smallest_normal
    values = [big, 1e4, 100.0, 88.8, 30.0, tiny, tiny / 4, 0.0, 1.0]
    values += [1e20] if dtype != torch.float16 else [6e4]
    return sorted({v for m in values for v in (m, -m)})


def _true_overflows(name: str, x: float, dtype: torch.dtype) -> bool:
    """Whether |f(x)| exceeds the dtype's max; beyond 1e4 from the asymptotic slope f(±1e4)/1e4."""
    f = MP_REFERENCE.get(name, lambda v: v)
    if abs(x) <= 1e4:
        return abs(f(mp.mpf(x))) > torch.finfo(dtype).max
    anchor = mp.mpf(1e4 if x > 0 else -1e4)
    return abs(f(anchor) / anchor * x) > torch.finfo(dtype).max


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("spec", sorted(set(list_acts())) + LEARNABLE_SPECS)
def test_extreme_inputs_finite_with_correct_limits(spec, dtype):
    module = _fresh(spec)
    if not any(True for _ in module.parameters()):
        module = module.to(dtype)  # natives compute in the input dtype; ours keep fp32 parameters
    grid = _extreme_grid(dtype)
    channels = 3 if "num_parameters=3" in spec else 1
    x = torch.tensor([*grid, -math.inf, math.inf], dtype=dtype).expand(1, channels, -1)
    x = x.contiguous().requires_grad_()  # (1, C, L): the grid along the last dim
    y = module(x)
    y.backward(torch.ones_like(y))
    assert y.dtype == dtype and x.grad.dtype == dtype
    values, grads = y.detach().float()[0], x.grad.float()[0]
    name = spec.split("(")[0]
    for i, xi in enumerate(grid):
        if not _true_overflows(name, xi, dtype):
            assert torch.isfinite(values[:, i]).all(), (spec, xi, values[:, i])
        assert torch.isfinite(grads[:, i]).all(), (spec, xi, grads[:, i])
    n = len(grid)
    assert not torch.isnan(values[:, n:]).any(), (spec, values[:, n:])
    assert torch.isfinite(grads[:, n:]).all(), (
        "gradient at ±inf must be its finite limit",
        spec,
        grads[:, n:],
    )
    for p in module.parameters():  # may overflow where the true sum does, but never NaN
        assert not torch.isnan(p.grad).any(), (spec, p.grad)
    with torch.no_grad():
        assert torch.isnan(module(torch.full((1, channels, 2), math.nan, dtype=dtype))).all(), (
            "NaN propagates"
        )


@pytest.mark.parametrize(
    "name", ["swish", "silu", "mish", "gelu", "smu", "smu1", "serf", "tanhexp", "logish"]
)
def test_limits_at_infinity(name):
    x = torch.tensor([-math.inf, math.inf], requires_grad=True)
    y = _fresh(name)(x)
    y.sum().backward()
    alpha = 0.01 if name.startswith("smu") else 0.0
    slope = math.log(2) if name == "logish" else 1.0  # logish → x·ln 2
    assert y[1].item() == math.inf
    assert y[0].item() == (-math.inf if alpha else 0.0)
    torch.testing.assert_close(x.grad, torch.tensor([alpha, slope]))


@pytest.mark.parametrize("spec", ["smu1", "smu1_v1"])
def test_smu1_tiny_mu_has_a_finite_gradient_at_zero_in_half(spec):
    x = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    module = _fresh(spec)
    y = module(x)
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(module.mu.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["swish", "mish", "gelu", "smu", "smu1", "tanhsoft", "eis", "pau"])
def test_reduced_precision_matches_float32_reference(name, dtype):
    torch.manual_seed(2)
    x32 = (torch.randn(1000) * 4).requires_grad_()
    x = x32.detach().to(dtype).requires_grad_()
    ref = _fresh(name)(x32.detach().to(dtype).float().requires_grad_())
    y = _fresh(name)(x)
    assert y.dtype == dtype
    tol = {torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    torch.testing.assert_close(y.float(), ref.detach(), rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------------
# Memory: the autograd op keeps only its input


@pytest.mark.parametrize("spec", ["swish(learnable=True)", "mish", "gelu", "smu", "smu1", "eis", "pau"])
def test_saves_only_the_input_for_backward(spec):
    module = _fresh(spec)
    x = torch.randn(64, 32, requires_grad=True)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        module(x * 1.0)
    big = [t for t in saved if t.numel() >= x.numel()]
    assert len(big) == 1, [t.shape for t in saved]


def test_plain_ops_path_when_no_gradient_is_needed():
    module = _fresh("mish")
    with torch.no_grad():
        y = module(torch.randn(10))
    assert y.grad_fn is None
    name = module(torch.randn(10, requires_grad=True)).grad_fn.name()
    # actlab's autograd op: the Python one, or the C++ one over the C kernels (test_cpp_op.py)
    assert name.endswith("FunctionBackward") or name == "torch::autograd::CppNode<actlab::CKernelOp>"


def test_per_channel_parameters_check_the_channel_count():
    module = _fresh("swish(learnable=True, num_parameters=4)")
    assert module(torch.randn(2, 4, 3)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="4 per-channel parameters"):
        module(torch.randn(2, 5, 3))


def test_act_curve_gives_values_and_derivatives():
    from actlab.activations import act_curve

    x, y, dy = act_curve("relu", -2.0, 2.0, 5)
    assert x.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0] and y.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert dy.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    _, y, dy = act_curve("smu(alpha=0.25)", -3.0, 3.0, 7)
    assert y.dtype.name == "float64" and dy[0] == pytest.approx(0.25, abs=1e-6)


def test_formulas_spell_their_constants_as_literals():
    """torch.compile lifts a float read from a module global into a kernel input, so the formulas write the
    named constants out; each literal must be the constant's exact value."""
    import inspect

    from actlab.activations import functional as AF

    source = inspect.getsource(AF)
    for name in ("INV_SQRT_PI", "INV_SQRT_2", "INV_SQRT_2PI", "SQRT_2_OVER_PI", "GELU_TANH_C", "MISH_CLAMP"):
        assert f"{getattr(AF, name)!r})" in source or f"{getattr(AF, name)!r} " in source, name
    assert 2 * AF.INV_SQRT_PI == 1.1283791670955126


@pytest.mark.parametrize("fast", [False, True])
def test_eis_without_its_exponential_term_far_left(fast):
    """δ = 0 with θ > 0: H·e^{θx} underflows to 0 from x ≈ -44, where x/D is still x/H (it was 0/0).

    Each value alone as well: a kernel's vector takes its branch from all its lanes, and a vector whose
    H·e^{θx} is 0 in every lane took the wrong one on AVX2 (the output was 0)."""
    spec = "eis(alpha=0.5, beta=1.0, gamma=0.25, delta=0.0, theta=2.0, learnable=True)"
    module = get_act(spec)()
    values = [-30.0, -50.0, -86.0, -100.0]
    f = _mp_eis(mp.mpf(0.5), 1, mp.mpf(0.25), 0, 2)
    for batch in [values, *([v] * 40 for v in values)]:
        x = torch.tensor(batch, requires_grad=True)
        with fused.use_fused(fast, min_numel=0), cpu_kernels.use_cpu_kernels(fast):
            y = module(x)
            grads = torch.autograd.grad(y.sum(), [x, *module.parameters()])
        for xi, yi, di in zip(x.tolist(), y.tolist(), grads[0].tolist(), strict=True):
            assert yi == pytest.approx(float(f(mp.mpf(xi))), rel=1e-5), xi
            assert di == pytest.approx(float(mp.diff(f, mp.mpf(xi))), rel=1e-4), xi
        assert all(g.isfinite().all() for g in grads[1:4]) and grads[5] == 0  # α, β, γ; θ: δ·... = 0
