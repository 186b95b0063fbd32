"""The C kernels equal the eager reference in value and gradient, at every size, layout and thread count, and
fall back cleanly where they cannot be built.

Tolerances: float32 rtol 1e-5, atol 1e-6 against the eager float32 reference (as the compiled kernels in
test_fused.py); against float64, relative error ≤ 1e-6 for the erfc-based values and gradients down to 1e-36
and ≤ 5e-7 for the exp-based ones (silu, mish, swish: 2–3e-7 measured).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import importlib.util
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from actlab.activations import cpp_op, cpu_kernels, fused, get_act
from actlab.activations import functional as AF
from actlab.activations.autograd import _limits
from actlab.activations.modules import KERNELS

SPECIAL_TANHSOFT = {  # fixed parameters of TanhSoft's kernels of their own
    # alpha = delta = 0: x·tanh(beta·e^(gamma·x))
    "tanhsoft": "exp",
    "tanhsoft(alpha=0.0, beta=50.0, gamma=2.5, delta=0.0)": "exp",  # u clamped below 0; gamma·x -inf at -max
    "tanhsoft(alpha=0.0, beta=1e-30, gamma=0.5, delta=0.0)": "exp",  # the smallest beta it takes
    # beta = 0, delta = 1: tanh(alpha·x)·sp(x)
    "tanhsoft1": "softplus",
    "tanhsoft(alpha=-2.5, beta=0.0, gamma=3.0, delta=1.0)": "softplus",
    "tanhsoft(alpha=1e-30, beta=0.0, gamma=1.0, delta=1.0)": "softplus",
}
SPECIAL_EIS = {  # fixed parameters of EIS's kernels of their own
    # alpha = gamma = 0: x·c·sigma(theta·x - ln(delta·c)), c = 1/sqrt(beta)
    "eis3": "sigmoid",
    "eis(alpha=0.0, beta=4.0, gamma=0.0, delta=3.0, theta=0.5)": "sigmoid",
    "eis(alpha=0.0, beta=2.0, gamma=0.0, delta=1e-3, theta=4.0)": "sigmoid",  # theta·x = inf from x = 8.5e37
    # alpha = 1, delta = 0: x·sp(x)/sqrt(beta + gamma·x²)
    "eis2": "root",
    "eis(alpha=1.0, beta=0.01, gamma=3.0, delta=0.0, theta=2.0)": "root",
    "eis(alpha=1.0, beta=2.0, gamma=0.0, delta=0.0, theta=0.0)": "root",
    # alpha = 1, beta = 0, theta = 1: x·sp(x)/(sqrt(gamma)·|x| + delta·e^-x)
    "eis1": "abs",
    "eis(alpha=1.0, beta=0.0, gamma=1e-6, delta=1e6, theta=1.0)": "abs",
    "eis(alpha=1.0, beta=0.0, gamma=1e6, delta=1e-6, theta=1.0)": "abs",
}

SPECS = [  # every C kernel, with every parameter learnable where it has any (and the special ones above)
    "silu",
    "hard_swish",
    "elu",
    "elu(alpha=0.5)",
    "celu(alpha=2.0)",
    "celu(alpha=-1.5)",  # input scale 1/alpha < 0: expm1 of positive arguments, overflowing to inf
    "selu",
    "swish(learnable=True)",
    "mish",
    "softplus",
    "softplus(beta=2.0, threshold=10.0)",
    "softplus(beta=-0.5)",
    "gelu",
    "smu(learnable_alpha=True)",
    "smu(alpha=0.25, mu=1e6)",
    "smu(alpha=0.0)",  # -inf·0 at -inf: the forward must put the limit there
    "smooth_max(learnable_ab=True)",
    "smu1(learnable_alpha=True)",
    "smooth_max(form='sqrt', learnable_ab=True)",
    "logish(learnable=True)",
    "tanhexp",
    "tanhsoft(learnable=True)",
    "tanhsoft(alpha=0.5, beta=0.0, gamma=1.0, delta=1.0)",
    "tanhsoft(alpha=0.0, beta=1e-38, gamma=1.0, delta=1.0)",  # beta·e^x is inf past x = 88.7, not beta·max
    "tanhsoft(alpha=0.5, beta=2.0, gamma=1.0, delta=0.5, learnable=True)",  # beta·x = -inf at x = -max
    *SPECIAL_TANHSOFT,
    "tanhsoft(alpha=0.0, beta=1e-31, gamma=1.0, delta=0.0)",  # below it: the general kernel
    "erfact",
    "erfact(alpha=0.0, beta=2.0)",  # w = 0·e^(2x), where e^(2x) overflows from x = 44
    "serf",
    "pserf",
    "pau",
    "eis(learnable=True)",
    "eis(alpha=0.5, beta=1.0, gamma=0.25, delta=0.0, theta=2.0, learnable=True)",
    "eis(alpha=0.0, beta=0.5, gamma=0.0, delta=1.0, theta=0.0)",  # gamma = 0: x/H unbounded, times 0
    "eis(alpha=1.0, beta=1.0, gamma=1.0, delta=0.5, theta=0.0)",  # theta = 0: e^-0 without an exp
    *SPECIAL_EIS,
    # x^5 over a weak denominator: the huge inputs' lanes in double, x-gradients of ±inf where the
    # reference's float32 form gives inf - inf; b = 0 and b < 0: sign(b) as the |b|-gradient's factor
    "pau(numerator=(0.5, -1.0, 0.25, 2.0, -0.5, 3.0), denominator=(0.0, -1.5, 0.0, 0.0))",
]

needs_c = pytest.mark.skipif(
    cpu_kernels.library() is None, reason=f"no C kernels here: {cpu_kernels.status()}"
)
needs_cc = pytest.mark.skipif(cpu_kernels.compiler() is None, reason="no C compiler")


def extreme_inputs(n_random: int = 2000, seed: int = 0) -> torch.Tensor:
    """Random values, a grid out to ±max of float32, ±inf and NaN: shape (1, L)."""
    info = torch.finfo(torch.float32)
    mags = [0.0, info.tiny, 1e-30, 1e-10, 1e-3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 9.0, 9.3, 10.0, 13.2, 15.0]
    mags += [20.0, 21.0, 30.0, 50.0, 86.6, 88.0, 89.0, 100.0, 104.0, 500.0, 1e4, 1e10, 1e30, info.max]
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randn(n_random, generator=gen, dtype=torch.float64) * 4
    grid = torch.tensor(mags + [-m for m in mags] + [math.inf, -math.inf, math.nan])
    return torch.cat([rand, grid]).float().unsqueeze(0)


@pytest.fixture
def calls(monkeypatch):
    """Counts the C forward and backward calls (through the Python op: the C++ op's own tests are
    test_cpp_op.py's); compiling an inductor kernel fails the test."""
    monkeypatch.setattr(cpp_op._STATE, "enabled", False)
    seen = {"forward": 0, "backward": 0}
    for which in seen:
        original = getattr(cpu_kernels, which)

        def counted(*args, _which=which, _original=original):
            seen[_which] += 1
            return _original(*args)

        monkeypatch.setattr(cpu_kernels, which, counted)

    def no_inductor(fn):
        raise AssertionError(f"inductor compiled {fn.__name__}: the C kernel should have served")

    monkeypatch.setattr(fused, "_compile", no_inductor)
    fused.reset()
    yield seen
    fused.reset()


def _grads(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, c: bool, fuse: bool = True):
    with fused.use_fused(fuse, min_numel=0), cpu_kernels.use_cpu_kernels(c):
        leaf = x.clone().requires_grad_()
        y = module(leaf)
        grads = torch.autograd.grad(y, [leaf, *module.parameters()], g)
    return y.detach(), grads


def _kernel_params(module: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    """The module's parameters and buffers in its kernel's order, as the C functions take them."""
    return tuple(getattr(module, n).detach() for n in module.param_names)


def _assert_same(got, want, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)


@needs_c
@pytest.mark.parametrize("spec", SPECS)
def test_c_kernel_equals_the_eager_reference(spec, calls):
    module = get_act(spec)()
    x = extreme_inputs()
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    y, grads = _grads(module, x, g, c=True)
    y_ref, grads_ref = _grads(module, x, g, c=False, fuse=False)
    assert calls == {"forward": 1, "backward": 1}
    _assert_same(y, y_ref)
    at_inf = x.isinf()
    assert torch.equal(y[at_inf], y_ref[at_inf])  # the limits exactly, and the sign of a zero one
    assert torch.equal(y[at_inf].signbit(), y_ref[at_inf].signbit())
    _assert_same_grads(grads, grads_ref, module, x, g)
    # the NaN input makes every parameter-gradient sum NaN on both sides: the sums again without it, against
    # the float64 reference (float32 terms of ±3e38 give inf - inf there), rounded to float32 (±inf beyond)
    keep = ~x.isnan()
    x, g = x[keep].unsqueeze(0), g[keep].unsqueeze(0)
    sums = _grads(module, x, g, c=True)[1][1:]
    big = torch.finfo(torch.float32).max
    ref64 = _grads(copy.deepcopy(module).double(), x.double().clamp(-big, big), g.double(), False, False)[1][
        1:
    ]
    for got, want in zip(sums, ref64, strict=True):
        _assert_same(got, want.float(), rtol=2e-5, atol=1e-5)  # float32 partial sums in the kernel


def _assert_same_grads(grads, grads_ref, module, x, g):
    assert len(grads) == len(grads_ref)
    if module.kernel_name == "pau":
        grads_ref = _float64_where_nan(grads_ref, module, x, g)
    for got, want in zip(grads, grads_ref, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        _assert_same(got, want)


def _float64_where_nan(grads_ref, module, x, g):
    """PAU's x-gradient from the float64 reference where the float32 one is NaN at a non-NaN input: its
    scaled float32 form gives inf - inf there, where the gradient is ±inf in float32 (x^5 cannot
    overflow in double: the C kernel takes those lanes in double)."""
    overflowed = grads_ref[0].isnan() & ~x.isnan()
    if not overflowed.any():
        return grads_ref
    big = torch.finfo(torch.float32).max
    _, grads64 = _grads(copy.deepcopy(module).double(), x.double().clamp(-big, big), g.double(), False, False)
    return (torch.where(overflowed, grads64[0].float(), grads_ref[0]), *grads_ref[1:])


@needs_c
@pytest.mark.parametrize("spec", [s for s in SPECS if len(get_act(s)().param_names) > 1])
def test_one_parameter_gradient_alone_is_the_same_as_among_all(spec):
    """The kernel computes only the summands asked for (want: one bit per parameter value): each parameter's
    gradient alone, and the input's, as when all are asked for (to rounding: the compiler contracts the
    specialised copies' products into FMAs in its own way)."""
    module = get_act(spec)()
    params = _kernel_params(module)
    x = extreme_inputs()
    x = x[~x.isnan()].unsqueeze(0)  # a NaN would make every sum NaN, on both sides
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    everything = cpu_kernels.backward(module.kernel_name, g, x, params, (True,) * (1 + len(params)))
    for k in range(len(params)):
        needs = (True, *(j == k for j in range(len(params))))
        alone = cpu_kernels.backward(module.kernel_name, g, x, params, needs)
        _assert_same(alone[0], everything[0])
        _assert_same(alone[1 + k], everything[1 + k], rtol=2e-5, atol=1e-5)
        assert all(alone[1 + j] is None for j in range(len(params)) if j != k)


SPECIAL_BEYOND_THE_REFERENCE = {  # where the eager float32 reference is off: against float64 alone
    # c = 2 and c = 1e15 (the smallest beta it takes): c·x overflows at ±max, where the reference's
    # x-gradient is NaN
    "eis(alpha=0.0, beta=0.25, gamma=0.0, delta=3.0, theta=0.5)": "sigmoid",
    "eis(alpha=0.0, beta=1e-30, gamma=0.0, delta=1e-15, theta=1.0)": "sigmoid",
    # the smallest beta it takes: the reference's derivative cancels (3e-4 off), this kernel's does not
    "eis(alpha=1.0, beta=1e-20, gamma=3.0, delta=0.0, theta=2.0)": "root",
}
SPECIAL_KERNELS = {**SPECIAL_TANHSOFT, **SPECIAL_EIS, **SPECIAL_BEYOND_THE_REFERENCE}


def _inner_kernel(prefix: str):
    """The library's ``prefix``_fwd and _bwd (a kernel behind a dispatcher), declared as the entries are."""
    lib = cpu_kernels.library()
    pair = getattr(lib, f"{prefix}_fwd"), getattr(lib, f"{prefix}_bwd")
    for fn, entry in zip(pair, (lib.silu_fwd, lib.silu_bwd), strict=True):
        fn.argtypes, fn.restype = entry.argtypes, entry.restype
    return pair


@needs_c
@pytest.mark.parametrize("spec", SPECIAL_KERNELS)
def test_the_special_parameter_kernels_are_exact(spec):
    """For fixed parameters where a simpler form is the function (TanhSoft x·tanh(βe^{γx}) and TanhSoft-1
    without the general selects, EIS-3 a shifted Swish, EIS-1 and EIS-2 without divisions) the kernel
    takes it: value and x-gradient as float64's (the float32 reference loses digits where these forms do
    not: EIS-2's derivative with a tiny β)."""
    module = get_act(spec)()
    params = _kernel_params(module)
    x = extreme_inputs()
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    with cpu_kernels.use_cpu_kernels(True):
        y = module(x)
    special = cpu_kernels.backward(module.kernel_name, g, x, params, (True,) + (False,) * len(params))
    assert all(p is None for p in special[1:])
    big = torch.finfo(torch.float32).max
    y64, (gx64, *_) = _grads(
        copy.deepcopy(module).double(), x.double().clamp(-big, big), g.double(), False, False
    )
    _assert_same(y, torch.where(x.isinf(), y, y64.float()))  # at ±inf the limits: test_probed_limits_...
    # where the x-gradient crosses 0 it is the difference of two terms: atol relative to its largest value
    slope = (gx64 / g).abs().nan_to_num(0.0, 0.0, 0.0).max().clamp(min=1.0)
    _assert_same(special[0], gx64.float(), atol=1e-6 * float(slope))
    # the dispatcher's x-gradient is the special kernel's own, bit for bit
    direct, gx = _inner_kernel(f"{module.kernel_name}_{SPECIAL_KERNELS[spec]}")[1], torch.empty_like(x)
    sums = (ctypes.c_double * cpu_kernels.MAX_PARAMS)()
    direct(
        g.data_ptr(), x.data_ptr(), gx.data_ptr(), x.numel(), cpu_kernels.param_values(params), 0, sums, 1, 0
    )
    assert torch.equal(gx.nan_to_num(), special[0].nan_to_num())


def test_the_want_mask_has_one_bit_per_parameter_value():
    a, vec, b = torch.tensor(1.0), torch.zeros(6), torch.tensor(2.0)
    assert cpu_kernels._wanted_sums((a, vec, b), (False, True, False)) == 0b0111_1110
    assert cpu_kernels._wanted_sums((a, vec, b), (True, False, True)) == 0b1000_0001
    assert cpu_kernels._wanted_sums((a, b), (False, True)) == 0b10


@needs_c
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1023, 1024, 1025, 70_001])
def test_every_size_and_the_partial_last_vector(n, calls):
    """Full vectors, the padded last one (its extra lanes must not reach the parameter sums) and, from
    65 536 elements, the parallel loop."""
    module = get_act("smu(learnable_alpha=True)")()
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=gen) * 3
    g = torch.randn(n, generator=gen)
    y, grads = _grads(module, x, g, c=True)
    y_ref, grads_ref = _grads(module, x, g, c=False, fuse=False)
    _assert_same(y, y_ref)
    for got, want in zip(grads, grads_ref, strict=True):
        _assert_same(got, want, rtol=2e-5, atol=1e-5)  # sums over n: float32 partial sums in either


@pytest.fixture
def streaming():
    """Sets the C kernels' streaming-store threshold (bytes moved) for one test; the default after it."""
    yield cpu_kernels.stream_from
    cpu_kernels.stream_from(-1)


def _c_forward_backward(name, x, g, params, out_offset=0):
    """The C forward and backward with every parameter sum asked for, into outputs ``out_offset`` floats into
    their buffers (1: not aligned to a vector)."""
    values, n = cpu_kernels.param_values(params), x.numel()
    y, gx = (torch.empty(n + out_offset)[out_offset:] for _ in range(2))
    sums = (ctypes.c_double * cpu_kernels.MAX_PARAMS)()
    fwd, bwd = cpu_kernels._functions(name)
    fwd(x.data_ptr(), y.data_ptr(), n, values, 2, 0)
    bwd(g.data_ptr(), x.data_ptr(), gx.data_ptr(), n, values, (1 << cpu_kernels.MAX_PARAMS) - 1, sums, 2, 0)
    return y, gx, [v if v == v else "nan" for v in sums]  # NaN equal to NaN


@needs_c
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("out_offset", [0, 1])
def test_streaming_stores_change_no_value(spec, out_offset, streaming):
    """Outputs written around the caches (for calls that move more than the L3 holds) are the ordinary
    stores' bit for bit, in the parallel loop and the last partial vector; an output not aligned to a vector
    takes the ordinary stores (a streaming store there would fault)."""
    module = get_act(spec)()
    gen = torch.Generator().manual_seed(3)
    x = torch.cat([torch.randn(70_001, generator=gen) * 3, extreme_inputs()[0]])
    g = torch.randn(x.numel(), generator=gen)
    params = _kernel_params(module)
    assert streaming(0) == 0
    streamed = _c_forward_backward(module.kernel_name, x, g, params, out_offset)
    assert streaming(2**62) == 2**62
    ordinary = _c_forward_backward(module.kernel_name, x, g, params, out_offset)
    for got, want in zip(streamed[:2], ordinary[:2], strict=True):
        assert torch.equal(got.nan_to_num(), want.nan_to_num()) and torch.equal(got.isnan(), want.isnan())
    assert streamed[2] == ordinary[2]


HALF = [torch.bfloat16, torch.float16]  # computed through float32 by the C kernels (float16: F16C here)


def _half_bits(t: torch.Tensor) -> torch.Tensor:
    """A half-precision tensor's bits, every NaN as one pattern (a NaN input keeps its own payload)."""
    return torch.where(t.isnan(), torch.full_like(t, math.nan), t).view(torch.int16)


def check_half_is_float32_rounded(
    spec: str, dtype: torch.dtype, sizes: tuple[int, ...] = (3 * 1024 + 37, 70_001, 262_181)
) -> None:
    """The C kernels on bfloat16 or float16 give their float32 results on x.float() and g.float(), rounded
    as ``.to(dtype)`` rounds, bit for bit; the parameter sums up to their order of summation."""
    module = get_act(spec)()
    name, params = module.kernel_name, _kernel_params(module)
    needs = (True,) + (True,) * len(params)
    gen = torch.Generator().manual_seed(5)
    for n in sizes:
        x = torch.cat([torch.randn(n, generator=gen) * 3, extreme_inputs(n_random=0)[0]]).to(dtype)
        g = torch.randn(x.numel(), generator=gen).to(dtype)
        assert cpu_kernels.applies(name, x, params)
        for threads in (1, 2):
            with _threads(threads):
                y = cpu_kernels.forward(name, x, params)
                grads = cpu_kernels.backward(name, g, x, params, needs)
                y32 = cpu_kernels.forward(name, x.float(), params)
                grads32 = cpu_kernels.backward(name, g.float(), x.float(), params, needs)
            assert y.dtype == grads[0].dtype == dtype
            assert torch.equal(_half_bits(y), _half_bits(y32.to(dtype))), (spec, n, threads)
            assert torch.equal(_half_bits(grads[0]), _half_bits(grads32[0].to(dtype))), (spec, n, threads)
            for got, want in zip(grads[1:], grads32[1:], strict=True):
                torch.testing.assert_close(got, want, rtol=1e-6, atol=0.0, equal_nan=True)


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@needs_c
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("spec", SPECS)
def test_half_precision_is_the_float32_kernel_rounded(spec, dtype):
    check_half_is_float32_rounded(spec, dtype)


def check_half_rounding(dtype: torch.dtype, same_nan_bits: bool = True) -> None:
    """Every value of ``dtype`` through SELU-like scaling (x > 0: (1 + 2^-k)·x, one bit more than the dtype
    holds, so ties, rounding up to inf and subnormals all occur; x < 0 an expm1) and through its backward:
    the float32 kernel's results rounded by torch, bit for bit. NaN, of any sign and payload: 0xFFFF in
    bfloat16; in float16 F16C's (torch's) quieted payload, or any NaN (``same_nan_bits=False``, _Float16)."""
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
    mantissa = {torch.bfloat16: 7, torch.float16: 10}[dtype]  # stored bits
    scale = 1.0 + 2.0 ** -(mantissa + 1)
    params = (torch.tensor(1.5), torch.tensor(1.0), torch.tensor(scale))  # alpha, input scale, scale
    y = cpu_kernels.forward("elu", every, params)
    ones = torch.ones_like(every)
    gx = cpu_kernels.backward("elu", every, ones, params, (True, False, False, False))[0]
    for got, want in [
        (y, cpu_kernels.forward("elu", every.float(), params)),
        (gx, cpu_kernels.backward("elu", every.float(), ones.float(), params, (True,) * 4)[0]),
    ]:
        nan = want.isnan()
        assert int(nan.sum()) == 2 * (2**mantissa - 1)
        assert torch.equal(got.view(torch.int16)[~nan], want.to(dtype).view(torch.int16)[~nan])
        assert bool(got[nan].isnan().all())
        if dtype == torch.bfloat16:
            assert bool((got.view(torch.int16)[nan] == -1).all())
        elif same_nan_bits:
            assert torch.equal(got.view(torch.int16)[nan], want.to(dtype).view(torch.int16)[nan])


@needs_c
@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_rounds_to_nearest_even_as_torch_does(dtype):
    check_half_rounding(dtype)


@needs_c
@pytest.mark.parametrize("dtype", HALF)
def test_a_half_precision_model_takes_the_c_kernels(calls, dtype):
    """A module with bfloat16 or float16 parameters on such inputs (model.to(dtype)): the C kernels serve
    both directions, and the gradients have the parameters' dtype."""
    module = get_act("smu(learnable_alpha=True)")().to(dtype)
    x = (torch.randn(4, 8, 16, 16) * 3).to(dtype).to(memory_format=torch.channels_last).requires_grad_()
    y = module(x)
    y.backward(torch.ones_like(y))
    assert calls == {"forward": 1, "backward": 1}
    assert y.dtype == x.grad.dtype == module.mu.grad.dtype == module.alpha.grad.dtype == dtype
    y32 = copy.deepcopy(module).float()(x.detach().float())  # the same (rounded) parameter values
    assert torch.equal(_half_bits(y.detach()), _half_bits(y32.detach().to(dtype)))


@needs_c
def test_the_streaming_threshold_is_the_l3_by_default(streaming):
    """The default is the first CPU's L3 as sysfs gives it (32 MiB where it cannot be read); -2 reads it."""
    size = Path("/sys/devices/system/cpu/cpu0/cache/index3/size")
    text = size.read_text().strip() if size.exists() else ""
    expected = int(text[:-1]) * 1024 if text.endswith("K") and text[:-1].isdigit() else 32 << 20
    assert streaming(-1) == expected == streaming()
    assert streaming(12345) == 12345 == streaming(-2)
    assert "streaming stores from" in cpu_kernels.status()


@needs_c
def test_the_streaming_threshold_comes_from_the_environment(streaming, monkeypatch):
    """ACTLAB_STREAM_FROM (bytes) sets it when the library loads; anything but a whole number is refused by
    name."""
    monkeypatch.setenv(cpu_kernels.ENV_STREAM_FROM, "1048576")
    cpu_kernels.reset()
    assert cpu_kernels.library() is not None and streaming() == 1048576
    monkeypatch.setenv(cpu_kernels.ENV_STREAM_FROM, "32MiB")
    cpu_kernels.reset()
    for _ in range(2):  # every call, until it is fixed
        with pytest.raises(ValueError, match=r"ACTLAB_STREAM_FROM must be a whole number of bytes.*'32MiB'"):
            cpu_kernels.library()
    monkeypatch.delenv(cpu_kernels.ENV_STREAM_FROM)
    cpu_kernels.reset()
    assert cpu_kernels.library() is not None


@needs_c
def test_small_tensors_take_the_c_kernel_by_default(calls):
    """Below fused.min_numel() the compiled kernels are not worth their ~85 µs per call; the C ones are."""
    module = get_act("smu")()
    x = torch.randn(100, requires_grad=True)
    assert x.numel() < fused.min_numel()
    y = module(x)
    y.sum().backward()
    assert calls == {"forward": 1, "backward": 1} and y.grad_fn.name().endswith("FusedFunctionBackward")
    with cpu_kernels.use_cpu_kernels(False):
        assert not module(x).grad_fn.name().endswith("FusedFunctionBackward")  # eager below the threshold


@needs_c
def test_a_c_served_call_skips_the_compiled_paths_dispatch(calls, monkeypatch):
    """The C op calls the kernels directly: FusedKernel's forward and backward (and checks) never run."""

    def not_here(*args):
        raise AssertionError("the compiled path's dispatch ran for a C-served call")

    monkeypatch.setattr(fused.FusedKernel, "forward", not_here)
    monkeypatch.setattr(fused.FusedKernel, "backward", not_here)
    module = get_act("swish(learnable=True)")()
    x = torch.randn(5000, requires_grad=True)
    y = module(x)
    y.sum().backward()
    assert y.grad_fn.name() == "SwishCFusedFunctionBackward" and calls == {"forward": 1, "backward": 1}
    with torch.no_grad():
        module(x)  # no graph: the C forward alone
    assert calls["forward"] == 2 and module.beta.grad is not None


@needs_c
@pytest.mark.parametrize("spec", ["swish(learnable=True)", "pserf", "erfact"])  # tables fitted in one thread
def test_thread_count_changes_nothing_but_the_summation_order(spec):
    """1, 2 and 5 threads (parts of 58 and 59 blocks, the last one partial) and more threads than blocks."""
    module = get_act(spec)()
    x = torch.randn(300_000) * 4
    g = torch.randn(300_000)
    for threads, n in [(2, 300_000), (5, 300_000), (80, 70_001)]:
        with _threads(threads):
            y2, grads2 = _grads(module, x[:n], g[:n], c=True)
        with _threads(1):
            y1, grads1 = _grads(module, x[:n], g[:n], c=True)
        assert torch.equal(y1, y2) and torch.equal(grads1[0], grads2[0]), threads  # elementwise: bit for bit
        for sum1, sum2 in zip(grads1[1:], grads2[1:], strict=True):
            torch.testing.assert_close(sum1, sum2, rtol=1e-6, atol=0)


@needs_c
def test_channels_last_input_and_a_gradient_of_another_layout(calls):
    module = get_act("smu")()
    x = torch.randn(4, 8, 6, 5).to(memory_format=torch.channels_last) * 3
    g = torch.randn(4, 8, 5, 6).transpose(2, 3)  # same shape, other strides
    y, grads = _grads(module, x, g, c=True)
    y_ref, grads_ref = _grads(module, x, g, c=False, fuse=False)
    assert y.is_contiguous(memory_format=torch.channels_last)
    _assert_same(y, y_ref)
    _assert_same(grads[0], grads_ref[0])
    _assert_same(grads[1], grads_ref[1], rtol=2e-5, atol=1e-5)
    assert calls == {"forward": 1, "backward": 1}


@needs_c
def test_where_the_c_kernels_do_not_apply():
    smu = get_act("smu")()
    x = torch.randn(64)
    params = (smu.alpha, smu.mu)
    assert cpu_kernels.applies("smu", x, params)
    assert cpu_kernels.applies("smu", x.bfloat16(), params)  # computed in float32, rounded back
    assert cpu_kernels.applies("smu", x.half(), params) == bool(cpu_kernels.library().actlab_has_f16())
    assert not cpu_kernels.applies("smu", x.double(), params)
    assert not cpu_kernels.applies("smu", torch.randn(64, 2)[:, 0], params)  # strided
    assert not cpu_kernels.applies("smu", x, (torch.ones(3), smu.mu))  # per-channel parameters
    assert not cpu_kernels.applies("gelu_tanh", x, ())  # no C kernel
    pau, pau_32 = get_act("pau")(), get_act("pau(numerator=(0.0, 1.0, 0.5, 0.1), denominator=(1.0, 2.0))")()
    assert cpu_kernels.applies("pau", x, (pau.numerator, pau.denominator))
    assert not cpu_kernels.applies("pau", x, (pau_32.numerator, pau_32.denominator))  # degrees (3, 2)
    with cpu_kernels.use_cpu_kernels(False):
        assert not cpu_kernels.applies("smu", x, params)
    assert cpu_kernels.cpu_kernels_enabled()


@needs_c
@pytest.mark.parametrize("spec", [s for s in SPECS if s not in ("silu", "mish", "gelu")])
def test_probed_limits_are_the_reference_ones(spec):
    module = get_act(spec)()
    params = _kernel_params(module)
    want = _limits(KERNELS[module.kernel_name].forward, params, torch.zeros(1))
    assert cpu_kernels.probe_limits(module.kernel_name, params) == tuple(float(t) for t in want)


@needs_c
def test_the_limits_are_put_in_only_where_the_formula_misses_them():
    def substitutes(spec):
        module = get_act(spec)()
        return cpu_kernels.substitutes_limits(module.kernel_name, _kernel_params(module))

    # alpha != 0: -inf·alpha is SMU's limit; alpha = 0: -inf·0 is NaN where the limit is -0
    assert not substitutes("smu") and substitutes("smu(alpha=0.0)")
    assert not substitutes("swish") and not substitutes("silu")
    flags = {substitutes(spec) for spec in SPECS}
    assert flags == {True, False}  # the equality test above runs both forms of the loop


def test_every_table_entry_has_its_kernel_and_a_reference():
    lib = cpu_kernels.library()
    for name, sizes in cpu_kernels.KERNELS.items():
        assert hasattr(lib, f"{name}_fwd") and hasattr(lib, f"{name}_bwd") and hasattr(lib, f"{name}_limits")
        assert name in KERNELS and sum(sizes) <= cpu_kernels.MAX_PARAMS


def _relative_error(got: torch.Tensor, want: torch.Tensor, floor: torch.Tensor | float = 0.0):
    normal = want.abs() > 1e-36
    rel = (got.double() - want).abs() / torch.maximum(want.abs(), torch.as_tensor(floor, dtype=want.dtype))
    return rel[normal].max().item()


@needs_c
def test_erfc_based_kernels_are_exact_in_the_tails():
    check_tails()


def check_tails() -> None:
    """Against float64 on the same float32 inputs: ≤ 1e-6 relative, down to values of 1e-36."""
    x = torch.cat(
        [torch.linspace(-14.5, 14.5, 58001), torch.logspace(-30, 0, 301), -torch.logspace(-30, 0, 301)]
    )
    xd, g, gd = x.double(), torch.ones_like(x), torch.ones_like(x).double()
    alpha, mu = torch.tensor(0.0), torch.tensor(1.0)
    near_root = torch.where(xd.abs() < 3, 0.1, 0.0)  # the gradients cross 0 near x = -0.75
    for name, params, ref, ref_bwd in [
        ("gelu", (), AF.gelu(xd), AF.gelu_bwd(gd, xd)[0]),
        ("smu", (alpha, mu), AF.smu(xd, alpha.double(), mu.double()), None),
    ]:
        y = cpu_kernels.forward(name, x, params)
        assert _relative_error(y, ref) < 1e-6, name
        (gx, *_) = cpu_kernels.backward(name, g, x, params, (True,) + (False,) * len(params))
        want = AF.smu_bwd(gd, xd, alpha.double(), mu.double())[0] if ref_bwd is None else ref_bwd
        assert _relative_error(gx, want, near_root) < 1e-6, name


@needs_c
@pytest.mark.parametrize("name", ["silu", "mish", "swish", "tanhexp", "serf", "logish", "softplus"])
def test_exp_based_kernels_are_within_5e7_of_float64(name):
    """Down to x = -80 (values of 1e-33): below -86.6 exp is flushed to 0 (|values| < 2e-36)."""
    x = torch.cat(
        [torch.linspace(-80, 88, 336001), torch.logspace(-30, 1, 301), -torch.logspace(-30, 1, 301)]
    )
    xd, one = x.double(), torch.tensor(1.0)
    params = {"swish": (one,), "logish": (one, one), "softplus": (one, torch.tensor(20.0))}.get(name, ())
    refs = {"silu": AF.silu, "mish": AF.mish, "tanhexp": AF.tanhexp, "serf": AF.serf}
    refs["swish"] = lambda t: AF.swish(t, one.double())
    refs["logish"] = lambda t: AF.logish(t, one.double(), one.double())
    refs["softplus"] = lambda t: AF.softplus(t, one.double(), torch.tensor(20.0).double())
    assert _relative_error(cpu_kernels.forward(name, x, params), refs[name](xd)) < 5e-7


@needs_c
@pytest.mark.parametrize("name", ["logish", "tanhexp", "serf"])
def test_gradients_are_within_1e6_of_float64(name):
    """TanhExp's x·w·sech²(w) needs sech² at full relative precision: from 1 - tanh² it was off by 3e-6.
    Serf's derivative comes from its table (2.4e-7 here; 1.3e-6 near its root as the formula)."""
    x = torch.cat(
        [torch.linspace(-80, 88, 168001), torch.logspace(-30, 1, 301), -torch.logspace(-30, 1, 301)]
    )
    xd, g, one = x.double(), torch.ones_like(x), torch.tensor(1.0)
    params = {"logish": (one, one), "tanhexp": (), "serf": ()}[name]
    got = cpu_kernels.backward(name, g, x, params, (True,) * (1 + len(params)))
    want = getattr(AF, f"{name}_bwd")(g.double(), xd, *(p.double() for p in params))
    # the x-gradients cross 0 (logish near x = -1.37, tanhexp near -1.08, serf near -1.2) as the difference
    # of two terms of ~0.2: relative to 0.1 there
    assert _relative_error(got[0], want[0], torch.where(xd.abs() < 3, 0.1, 0.0)) < 1e-6
    for got_p, want_p in zip(got[1:], want[1:], strict=True):  # sums over n in float32 blocks
        torch.testing.assert_close(got_p.double(), want_p.sum().reshape(got_p.shape), rtol=1e-5, atol=0)


@needs_c
def test_double_backward_still_records_the_eager_ops():
    x = torch.randn(100_000, requires_grad=True)
    smu = get_act("smu")()
    (g,) = torch.autograd.grad(smu(x).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(gg).all()


@pytest.fixture
def fresh_build(tmp_path, monkeypatch):
    """An empty cache folder and nothing loaded; afterwards the normal library is loaded again."""
    monkeypatch.setenv(cpu_kernels.ENV_CACHE, str(tmp_path))
    cpu_kernels.reset()
    fused.reset()
    yield tmp_path
    monkeypatch.undo()
    cpu_kernels.reset()
    fused.reset()


def test_without_a_compiler_the_compiled_kernels_serve(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_build / "no-such-cc"))
    module = get_act("smu")()
    x = torch.randn(40_000) * 3
    with pytest.warns(RuntimeWarning, match="C kernels could not be built"):
        y = module(x)
    assert "unavailable" in cpu_kernels.status() and "no-such-cc" in cpu_kernels.status()
    assert not cpu_kernels.applies("smu", x, (module.alpha, module.mu))
    with fused.use_fused(False):
        _assert_same(y, module(x))
    assert "C kernels unavailable" in fused.describe()


@needs_c
def test_the_library_is_built_once_and_then_loaded_from_the_cache(fresh_build, monkeypatch):
    monkeypatch.setattr(cpu_kernels, "OPTIONAL_FLAGS", (["-O0"],))  # 6 s to build instead of 20-30
    assert cpu_kernels.library() is not None
    built = list(fresh_build.glob("kernels-*.so"))
    assert len(built) == 1 and not list(fresh_build.glob("*.tmp*"))
    cpu_kernels.reset()

    def no_compiling(*args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(cpu_kernels, "_compile", no_compiling)
    assert cpu_kernels.library() is not None and cpu_kernels.status().startswith("C kernels /")
    assert str(built[0]) in cpu_kernels.status()


@needs_cc
def test_a_failing_flag_set_falls_back_to_the_next(fresh_build, monkeypatch):
    monkeypatch.setattr(cpu_kernels, "OPTIONAL_FLAGS", (["-fno-such-flag"], ["-O0"]))  # -O0: a quick build
    assert cpu_kernels.library() is not None
    assert "(-O0), streaming stores from " in cpu_kernels.status()
    monkeypatch.setattr(cpu_kernels._STATE, "flags", ())
    assert "(no optional flags), streaming stores from " in cpu_kernels.status()


@needs_cc
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 flags")
@pytest.mark.parametrize("flags", [["-march=x86-64-v3", "-fopenmp"], ["-march=x86-64", "-fopenmp"]])
def test_the_generic_vector_code_without_avx512(fresh_build, monkeypatch, flags):
    """AVX2 (most laptops) and SSE2 builds take the portable min/max, reciprocal, exp and streaming stores:
    the same results."""
    monkeypatch.setattr(cpu_kernels, "OPTIONAL_FLAGS", (flags,))
    assert cpu_kernels.library() is not None
    assert f"({' '.join(flags)}), streaming stores from " in cpu_kernels.status()
    x = extreme_inputs(n_random=500)
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    for threshold in (0, -1):  # streaming stores (their AVX or SSE form) for every call, then the default
        cpu_kernels.stream_from(threshold)
        for spec in SPECS:
            module = get_act(spec)()
            y, grads = _grads(module, x, g, c=True)
            y_ref, grads_ref = _grads(module, x, g, c=False, fuse=False)
            _assert_same(y, y_ref)
            _assert_same_grads(grads, grads_ref, module, x, g)
    check_tails()  # the t² rounding error: one FMA with AVX2, Dekker's split with SSE2 alone
    check_serf_tables()  # their coefficients by a gather instead of AVX-512's permute
    check_erfact_table(exact_t="-march=x86-64" not in flags)
    check_fitted_tables(exact_t="-march=x86-64" not in flags)  # AVX2: gathers; the formula's summands
    for spec, key in SMOOTH_ERF_TABLED:  # without an FMA t = s·x - centre carries s·x's rounding
        check_smooth_erf_table(spec, key, 4e-7 if "-march=x86-64" not in flags else 2e-6)
    for spec in FIXED_TABLED:
        check_fixed_table(spec, 4e-7 if "-march=x86-64" not in flags else 2e-6)
    for dtype in HALF:  # the portable widening and narrowing (AVX-512 has intrinsics of its own)
        check_half_rounding(dtype, same_nan_bits="-march=x86-64" not in flags)  # SSE2 alone: _Float16
        for spec in SPECS:
            check_half_is_float32_rounded(spec, dtype, sizes=(3 * 1024 + 37,))


@needs_c
def test_serf_tables_are_exact_at_their_ends_and_in_between():
    check_serf_tables()


def test_the_tables_are_what_the_fitting_script_makes(monkeypatch):
    """kernels.c's tables are tools/fit_tables.py's output, both exact to 1e-7 relative against mpmath.
    lstsq differs across BLAS and numpy builds in the last bits, which float32 rounding can move by an ulp
    (or more in a tiny high-order coefficient): so each coefficient's term at the interval's end, c·(w/2)^k,
    must match within 1e-6 of the interval's largest term."""
    path = Path(__file__).resolve().parents[1] / "tools" / "fit_tables.py"
    spec = importlib.util.spec_from_file_location("fit_tables", path)
    fit = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fit_tables", fit)  # its dataclass looks its module up there
    spec.loader.exec_module(fit)
    text = fit.KERNELS.read_text()
    assert [t.name for t in fit.TABLES] == ["SERF_G", "SERF_D", "ERFACT_H"]
    serf_g, serf_d = fit.TABLES[:2]
    assert (serf_g.x0, serf_g.w) == (serf_d.x0, serf_d.w)  # serf_table takes SERF_G's intervals for both
    for table in fit.TABLES:
        coef = fit.coefficients(table)
        body = text[text.index(f"float {table.name}[") :].split("= {", 1)[1].split("};", 1)[0]
        numbers = body.replace("{", " ").replace("}", " ").replace("f", " ").split(",")
        written = np.array([float(v) for v in numbers]).reshape(coef.shape)
        reach = (table.w / 2) ** np.arange(coef.shape[0])[:, None]
        largest = np.abs(coef * reach).max(axis=0)
        assert np.all(np.abs(written - coef) * reach <= 1e-6 * largest), table.name
        assert fit.worst(table, coef, per_interval=40) < 1e-7, table.name
        assert fit.worst(table, written, per_interval=40) < 1e-7, table.name


@needs_c
def test_erfact_table_is_exact_for_any_parameters():
    check_erfact_table()


def _forward_in_chunks(name: str, x: torch.Tensor, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The C forward on chunks under FIT_FROM elements (ErfAct's: from ERFACT_H, not its fitted tables)."""
    return torch.cat([cpu_kernels.forward(name, xc, params) for xc in x.split(FIT_FROM // 2)])


def check_erfact_table(exact_t: bool = True) -> None:
    """ErfAct's forward as sign(alpha)·x·erf(e^u), u = beta·x + ln|alpha|, erf(e^u) from its table on
    [-10.5, 1.5) and 1 beyond, against float64: within 3e-7 where every u >= -10.5, for small, large and
    negative alpha and beta and at both ends of the table. Vectors with a lane below its start take the
    formula, whose exp(beta·x) carries beta·x's rounding (5-7e-7 at the start, 2e-6 at x = -60), as does the
    table's t without an FMA (``exact_t`` False: SSE2 alone). An AVX2 build without AVX-512 keeps the
    formula (``erfact_tabled``)."""
    tight = 3e-7 if exact_t and cpu_kernels.library().erfact_tabled() else 1e-6
    grid = torch.linspace(-30, 30, 120001)
    for alpha, beta in [(0.75, 0.75), (-0.75, 0.75), (1e-3, 2.0), (5.0, -0.5), (0.75, 0.0), (1e4, 0.1)]:
        ln_alpha = math.log(abs(alpha))
        ends = [(u - ln_alpha) / beta for u in (-10.5, 1.5)] if beta else []
        ends = torch.tensor(ends).repeat_interleave(3) + torch.tensor([-1e-5, 0.0, 1e-5]).repeat(len(ends))
        mixed = torch.tensor([-80.0, 0.5, 80.0, -3.0] * 8)
        x = torch.cat([grid, ends.float(), mixed])
        a, b = torch.tensor(alpha), torch.tensor(beta)
        want = AF.erfact(x.double(), a.double(), b.double())
        assert _relative_error(_forward_in_chunks("erfact", x, (a, b)), want) < 3e-6, (alpha, beta)
        # alone, so that no vector mixes in a formula lane; the kernel's branch sees u without ln|alpha|'s
        # low part (< 2^-11), so a lane within that of the start may take the formula
        in_table = beta * x.double() + ln_alpha >= -10.5 + 1e-3
        y = _forward_in_chunks("erfact", x[in_table], (a, b))
        assert _relative_error(y, want[in_table]) < tight, (alpha, beta)
    # ±inf give the limits there (test_c_kernel_equals_the_eager_reference), not the raw formula
    x = torch.cat([grid, torch.tensor([math.nan])])
    y = cpu_kernels.forward("erfact", x, (torch.tensor(0.0), torch.tensor(1.0)))  # alpha = 0: the formula
    torch.testing.assert_close(y, AF.erfact(x, torch.tensor(0.0), torch.tensor(1.0)), equal_nan=True)


FITTED = {  # (p, s) of the kernels whose tables are fitted at run time for p (kernels.c)
    "pserf": [(1.0, 1.0), (0.7, 1.5), (2.0, -0.5), (-1.0, 1.0), (4.0, 1.0), (0.26, 1.0), (7.9, 2.0)],
    "erfact": [(0.75, 0.75), (-0.75, 0.75), (1e-3, 2.0), (5.0, -0.5), (1e4, 0.1), (-2.0, 0.5), (1e-30, 0.5)],
}
FIT_FROM = 65536  # kernels.c: smaller tensors take the formula (ErfAct's forward: its table ERFACT_H)


def _fitted_table(name: str, p: float) -> dict[str, float]:
    """Whether the kernel's run-time tables serve parameter p, and their range in z = s·x (kernels.c)."""
    params, out = (ctypes.c_float * 16)(p, 1.0), (ctypes.c_float * 5)()
    cpu_kernels.library().fitted_table_range(int(name == "erfact"), params, out)
    return dict(zip(("usable", "z0", "w", "z_end", "z_rel"), out, strict=True))


def _c_both(name: str, x: torch.Tensor, p: float, s: float, g: torch.Tensor | None = None):
    """The C kernels' value, x-gradient and both parameter-gradient sums."""
    a, b = torch.tensor(p), torch.tensor(s)
    g = torch.ones_like(x) if g is None else g
    y = cpu_kernels.forward(name, x, (a, b))
    return (y, *cpu_kernels.backward(name, g, x, (a, b), (True, True, True)))


def _float64_both(name: str, x: torch.Tensor, p: float, s: float, g: torch.Tensor | None = None):
    """The float64 reference's value, x-gradient and per-element parameter summands."""
    a, b, xd = torch.tensor(p).double(), torch.tensor(s).double(), x.double()
    g = torch.ones_like(xd) if g is None else g.double()
    return (getattr(AF, name)(xd, a, b), *getattr(AF, f"{name}_bwd")(g, xd, a, b))


@needs_c
def test_fitted_tables_are_exact_for_any_parameters():
    check_fitted_tables()


def check_fitted_tables(exact_t: bool = True) -> None:
    """Pserf and ErfAct from their tables fitted at run time (n >= FIT_FROM), against float64 on every
    input the tables serve alone (z = s·x from the first interval to 2 past the last, and the ends): values
    and x-gradients within 4e-7 (the fit's check: 3e-7; the x-gradient relative to its two terms, as it
    crosses 0), parameter sums within 2e-6 of the sum of their summands' magnitudes (float32 block sums).
    Without an FMA (``exact_t`` False: SSE2 alone) t = s·x - centre carries s·x's rounding, |z|·2^-24 (1.1e-6
    for ErfAct's x-gradient at z = -13; its alpha = 1e-30 puts z near 70): 2e-6, and the sums 2e-5."""
    tight, sums = (4e-7, 2e-6) if exact_t else (2e-6, 2e-5)
    for name, cases in FITTED.items():
        for p, s in cases:
            table = _fitted_table(name, p)
            table_end = table["z0"] + 32 * table["w"]
            assert table["usable"] == 1.0 and table["z0"] < table["z_rel"] <= table_end, (name, p, table)
            assert table["z_end"] <= table_end, (name, p, table)
            ends = torch.tensor([table[k] for k in ("z0", "z_rel", "z_end")]).repeat_interleave(3)
            ends = ends + torch.tensor([0.0, 1e-6, -1e-6]).repeat(3)
            z = torch.cat([torch.linspace(table["z0"], table_end + 2, 200001).double(), ends.double()])
            x = (z / s).float()
            x = x[s * x >= table["z0"]]
            got, want = _c_both(name, x, p, s), _float64_both(name, x, p, s)
            assert _relative_error(got[0], want[0]) < tight, (name, p, s)
            # the x-gradient alone: from the tables in every build (AVX2 alone keeps the formula for the
            # backward with parameter gradients)
            (gx,) = cpu_kernels.backward(
                name, torch.ones_like(x), x, (torch.tensor(p), torch.tensor(s)), (True, False, False)
            )[:1]
            assert _relative_error(gx, want[1], _terms_of_d(x, want)) < tight, (name, p, s)
            for got_p, want_p in zip(got[2:], want[2:], strict=True):
                assert abs(got_p.item() - want_p.sum().item()) < sums * want_p.abs().sum().item(), (
                    name,
                    p,
                    s,
                )
        x = torch.randn(FIT_FROM) * 4  # s = 0: z = 0 at every input
        p = {"pserf": 0.5, "erfact": 5.0}[name]
        assert _fitted_table(name, p)["z0"] <= 0.0
        got, want = _c_both(name, x, p, 0.0), _float64_both(name, x, p, 0.0)
        assert _relative_error(got[0], want[0]) < tight and _relative_error(got[1], want[1]) < tight
        assert abs(got[3].item() - want[3].sum().item()) < sums * want[3].abs().sum().item()


@needs_c
@pytest.mark.parametrize(
    "name, p, s", [("pserf", 1.0, 1.0), ("pserf", 2.0, -0.5), ("erfact", 0.75, 0.75), ("erfact", -2.0, 0.5)]
)
def test_fitted_tables_keep_each_parameter_summand_exact(name, p, s):
    """Each summand alone (g one-hot: the sum is that summand), across the tables' range and past it: within
    1e-6 up to z_rel (Pserf: where its tables keep only the summands' absolute precision; ErfAct's
    G'(centre)·exp(q) keeps their relative precision to the last interval). Past it the formula serves,
    whose exp(-v²) carries v's rounding (~2v²·2^-24: Pserf's v = gamma·sp, 1.6e-6 at v = 4.5; ErfAct's
    w = alpha·e^(beta·x), 1e-5 at w² = 80, where the summands reach 1e-36): within 5e-6 and 3e-5 there."""
    table = _fitted_table(name, p)
    if name == "pserf":  # the gamma summand's degree-4 table of its ratio to G' reaches as far as G' itself
        assert table["z_rel"] >= {1.0: 2.99, 2.0: 1.57}[p], table  # (degree 2: -4.9 and -2.7)
    g = torch.zeros(FIT_FROM)
    g[0] = 1.0
    for z in torch.linspace(table["z0"], table["z0"] + 32 * table["w"] + 1, 61).tolist():
        x = torch.full((FIT_FROM,), z / s)
        got, want = _c_both(name, x, p, s, g), _float64_both(name, x[:1], p, s, g[:1])
        assert _relative_error(got[1][:1], want[1], _terms_of_d(x[:1], want)) < 4e-7, z
        for got_p, want_p in zip(got[2:], want[2:], strict=True):
            if want_p.abs().item() <= 1e-36:  # flushed, as by the other kernels
                assert abs(got_p.item()) <= 1e-35, (z, got_p.item())
                continue
            bound = 1e-6 if z <= table["z_rel"] else {"pserf": 5e-6, "erfact": 3e-5}[name]
            assert _relative_error(got_p.reshape(1), want_p) < bound, (z, got_p.item(), want_p.item())


SMOOTH_ERF_TABLED = [  # spec, (a, b) of its tables
    ("smu", (1.0, 0.01)),
    ("smu(alpha=0.25, mu=1.0)", (1.0, 0.25)),
    ("smu(alpha=-0.5, mu=-2.0)", (1.0, -0.5)),
    ("smu(alpha=1e-4, mu=7.0)", (1.0, 1e-4)),
    ("smooth_max(a=2.0, b=0.5, mu=1.0)", (2.0, 0.5)),
    ("smooth_max(a=0.001, b=1.0, mu=3.0)", (0.001, 1.0)),
]


def _smooth_erf_table(a: float, b: float) -> dict[str, float]:
    out, key = (ctypes.c_float * 4)(), (ctypes.c_float * 2)(a, b)
    cpu_kernels.library().smooth_erf_table_range(key, out)
    return dict(zip(("usable", "z0", "w", "z_end"), out, strict=True))


def _c_sums(module, x, g):
    """The C kernel's value, x-gradient and parameter sums, mu's alone asked for (as by default)."""
    params = _kernel_params(module)
    needs = (True, *(n == "mu" for n in module.param_names))
    y = cpu_kernels.forward(module.kernel_name, x, params)
    return (y, *cpu_kernels.backward(module.kernel_name, g, x, params, needs))


@needs_c
@pytest.mark.parametrize("spec, key", SMOOTH_ERF_TABLED)
def test_smu_and_smooth_max_tables_are_exact(spec, key):
    """SMU and smooth max (erf) from their fitted tables (n >= FIT_FROM, mu's gradient alone asked for),
    against float64 from the first interval's start minus 2 to the last's end plus 2 (the flat ends beyond)
    and at extreme inputs: values within 4e-7 relative, the x-gradient within 4e-7 of its two terms |G| +
    |z·G'| (it crosses 0 where a and b differ in sign), mu's sum within 2e-6 of its summands' magnitudes."""
    check_smooth_erf_table(spec, key)


def check_smooth_erf_table(spec: str, key: tuple[float, float], tight: float = 4e-7) -> None:
    """test_smu_and_smooth_max_tables_are_exact's check for one spec (``tight``: values and x-gradients)."""
    table = _smooth_erf_table(*key)
    assert table["usable"] == 1.0 and table["w"] <= 0.5 and table["z0"] < 0.0 < table["z_end"], table
    module = get_act(spec)()
    s = module.mu.item() * (key[0] - key[1])
    z = torch.linspace(table["z0"] - 2, table["z0"] + 32 * table["w"] + 2, FIT_FROM).double()
    x = torch.cat([(z / s).float(), extreme_inputs(n_random=100)[0]])
    x = x[~x.isnan()]  # NaN: test_c_kernel_equals_the_eager_reference
    g = torch.linspace(0.5, 1.5, x.numel()) * (1 - 2 * (torch.arange(x.numel()) % 2))  # no 0: gx / g below
    y, gx, *sums = _c_sums(module, x, g)
    m64 = copy.deepcopy(module).double()
    big = torch.finfo(torch.float32).max
    leaf = x.double().clamp(-big, big).requires_grad_()
    y64 = m64(leaf)
    gx64, gmu64 = torch.autograd.grad(y64, [leaf, m64.mu], g.double())
    finite = x.isfinite() & (y64.abs() < big)  # not where float32 overflows (a·max)
    zz = (s * x.double()).clamp(-40, 40)
    # the value relative to its two terms |x|·(|b| + |a - b|·U): G crosses 0 where a and b differ in sign
    g_terms = abs(key[1]) + abs(key[0] - key[1]) * torch.special.erfc(-zz) / 2
    assert _relative_error(y[finite], y64[finite].detach(), (x.double().abs() * g_terms)[finite]) < tight
    terms = g_terms + zz.abs() * abs(key[0] - key[1]) * torch.exp(-zz * zz) / math.pi**0.5
    assert _relative_error(gx[finite] / g[finite], (gx64 / g.double())[finite], terms[finite]) < tight
    mu_sum = next(v for v, n in zip(sums, module.param_names, strict=True) if n == "mu")
    gauss = torch.exp(-zz * zz) / math.pi**0.5
    magnitudes = g.double().abs() * (key[0] - key[1]) ** 2 * leaf.detach() ** 2 * gauss
    bound = 2e-6 * magnitudes.sum().item()
    assert abs(mu_sum.item() - gmu64.item()) <= bound + 1e-30, (mu_sum.item(), gmu64.item())
    x[::1000] = math.nan  # NaN in, NaN out, and mu's sum NaN, as the reference's
    y, gx, *sums = _c_sums(module, x, g)
    assert y[::1000].isnan().all() and gx[::1000].isnan().all() and not y[1::1000].isnan().any()
    assert math.isnan(next(v for v, n in zip(sums, module.param_names, strict=True) if n == "mu").item())


@needs_c
@pytest.mark.parametrize("spec", ["smu", "smu(alpha=0.0)", "smu(alpha=1e-8)", "smooth_max(a=0.0, b=1.0)"])
def test_the_smu_formula_serves_where_its_tables_do_not(spec):
    """Where the tables do not serve (a or b 0 or too small for the flat ends, a tensor under FIT_FROM
    elements, another parameter's gradient asked for), the results are the formula kernel's bit for bit."""
    module = get_act(spec)()
    name, params = module.kernel_name, _kernel_params(module)
    x = torch.cat([torch.randn(FIT_FROM) * 3, extreme_inputs(n_random=10)[0]])
    g = torch.linspace(-1, 1, x.numel())
    values, n = cpu_kernels.param_values(params), x.numel()
    formula_fwd, formula_bwd = _inner_kernel(f"{name}_formula")
    key = (1.0, float(module.alpha)) if name == "smu" else (float(module.a), float(module.b))
    served = _smooth_erf_table(*key)["usable"] == 1.0
    assert served == (spec == "smu")
    all_sums = (1 << len(params)) - 1
    for size, want in [(n, all_sums), (FIT_FROM - 1, 0)] + ([] if served else [(n, 0)]):
        y, gx = torch.empty(size), torch.empty(size)
        sums, ref_sums = ((ctypes.c_double * cpu_kernels.MAX_PARAMS)() for _ in range(2))
        y_ref, gx_ref = torch.empty(size), torch.empty(size)
        cpu_kernels._functions(name)[1](
            g.data_ptr(), x.data_ptr(), gx.data_ptr(), size, values, want, sums, 2, 0
        )
        formula_bwd(g.data_ptr(), x.data_ptr(), gx_ref.data_ptr(), size, values, want, ref_sums, 2, 0)
        same_sums = [v if v == v else "nan" for v in sums] == [v if v == v else "nan" for v in ref_sums]
        assert torch.equal(gx.nan_to_num(), gx_ref.nan_to_num()) and same_sums, (size, want)
        if want == 0:
            cpu_kernels._functions(name)[0](x.data_ptr(), y.data_ptr(), size, values, 2, 0)
            formula_fwd(x.data_ptr(), y_ref.data_ptr(), size, values, 2, 0)
            assert torch.equal(y.nan_to_num(), y_ref.nan_to_num()), size


@needs_c
def test_the_formula_serves_where_the_fitted_tables_do_not():
    """Pserf's |gamma| outside [1/4, 8] (or not finite), ErfAct's |alpha| outside [1e-30, 1e30], the scale not
    finite, or a tensor under FIT_FROM elements: the formula's results bit for bit (elementwise, so chunks
    of the formula's size give them; ErfAct's forward: its table ERFACT_H's)."""
    x = torch.cat([torch.randn(3 * FIT_FROM) * 4, torch.tensor([1e30, -1e30, 0.0, math.nan])])
    g = torch.linspace(-1, 1, x.numel())
    outside = {
        "pserf": [0.2, 8.5, 0.0, -0.24, math.inf, math.nan],
        "erfact": [0.0, 1e-35, -2e30, math.inf, math.nan],
    }
    for name, ps in outside.items():
        for p in ps:
            assert _fitted_table(name, p)["usable"] == 0.0, (name, p)
        for p, s in [(ps[0], 1.0), (ps[1], 0.5), (1.0, math.inf), (1.0, math.nan)]:
            got, formula = _c_both(name, x, p, s, g), _in_chunks(name, x, p, s, g)
            for k in range(2):
                assert torch.equal(got[k].isnan(), formula[k].isnan()), (name, p, s)
                same = ~got[k].isnan()
                assert torch.equal(got[k][same], formula[k][same]), (name, p, s)
        # where they serve, the small tensors' paths and the tables agree to float32 rounding
        got, formula = _c_both(name, x[:-1], 1.0, 1.0, g[:-1]), _in_chunks(name, x[:-1], 1.0, 1.0, g[:-1])
        for k in range(2):
            _assert_same(got[k], formula[k])


def _terms_of_d(x: torch.Tensor, want: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """|G| + |z·G'| for the x-gradient D = G + z·G' (from the float64 value and x-gradient want; G = y/x):
    the fit's measure of D's error, as D crosses 0 where its two terms cancel."""
    xd = x.double()
    g_of_z = torch.where(xd == 0, want[1], want[0] / torch.where(xd == 0, 1.0, xd))
    return g_of_z.abs() + (want[1] - g_of_z).abs()


def _in_chunks(name: str, x: torch.Tensor, p: float, s: float, g: torch.Tensor) -> list[torch.Tensor]:
    """The value and x-gradient from calls on chunks too small for the fitted tables."""
    chunks = zip(x.split(FIT_FROM // 2), g.split(FIT_FROM // 2), strict=True)
    parts = [_c_both(name, xc, p, s, gc) for xc, gc in chunks]
    return [torch.cat([part[k] for part in parts]) for k in range(2)]


@needs_c
@pytest.mark.parametrize("name", FITTED)
def test_fitted_tables_are_fitted_again_after_others_pushed_them_out(name):
    """Each thread keeps the last few parameters' tables per kernel: cycling through more of them than it
    keeps (each refitted when it comes round again) gives the same results as the first time."""
    x = torch.randn(FIT_FROM) * 3
    ps = [0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    first = [_c_both(name, x, p, 1.0) for p in ps]
    for p, before in zip(ps * 2, first * 2, strict=True):
        for got, want in zip(_c_both(name, x, p, 1.0), before, strict=True):
            assert torch.equal(got, want), p


FIXED_FIT_FROM = (
    4 * FIT_FROM
)  # kernels.c: the fixed-parameter tables (EIS, TanhSoft, Logish, TanhExp) from here
FIXED_TABLED = {  # fixed parameters whose fitted tables serve (the others keep their kernels)
    "eis2": True,
    "eis(alpha=0.5, beta=1.0, gamma=0.25, delta=0.0, theta=2.0)": True,
    "eis(alpha=1.0, beta=0.0, gamma=1e-6, delta=1e6, theta=1.0)": True,
    "eis(alpha=0.5, beta=1.0, gamma=1.0, delta=0.5, theta=1.5)": True,
    # as 1/G on narrower intervals: sqrt(2 + 3x²) vanishes at ±0.82i
    "eis(alpha=0.25, beta=2.0, gamma=3.0, delta=0.5, theta=0.5)": True,
    "eis1": True,  # as 1/G: the continuations of |x| + e^-x vanish at x = ∓0.567, next to the kink
    "eis(alpha=1.0, beta=1e-20, gamma=3.0, delta=0.0, theta=2.0)": False,  # a near-kink (eis_root)
    "tanhsoft": True,
    "tanhsoft1": True,
    "tanhsoft2": True,
    "tanhsoft(alpha=0.5, beta=0.6, gamma=1.0, delta=1.0)": False,  # f(0) = tanh(0.6)·ln 2: G = f/x has a pole
    "tanhsoft(alpha=1.0, beta=0.0, gamma=1.0, delta=0.0)": False,  # G = tanh(x) crosses 0: no relative fit
    "logish": True,
    "logish(alpha=2.0, beta=0.5)": True,
    "tanhexp": True,
}


def _fixed_table(kernel: str, params: tuple[torch.Tensor, ...]) -> dict[str, float]:
    values, out = cpu_kernels.param_values(params), (ctypes.c_float * 5)()
    getattr(cpu_kernels.library(), f"{kernel}_table_range")(values, out)
    return dict(zip(("usable", "z0", "w", "end", "reciprocal"), out, strict=True))


@needs_c
@pytest.mark.parametrize("spec", FIXED_TABLED)
def test_fixed_tables_are_exact_where_they_serve(spec):
    """The tables serve where FIXED_TABLED says (in this build: another build's check, with its own
    rounding, may decide a borderline set otherwise; check_fixed_table tests whichever serves)."""
    module = get_act(spec)()
    assert _fixed_table(module.kernel_name, _kernel_params(module))["usable"] == float(FIXED_TABLED[spec])
    check_fixed_table(spec)


def check_fixed_table(spec: str, tight: float = 4e-7) -> None:
    """Fixed parameters at FIXED_FIT_FROM elements or more: value and x-gradient (no parameter gradient
    asked for) from the fitted tables against float64 on their range alone, within 4e-7 (the x-gradient
    relative to its two terms; SSE2 without an FMA: 2e-6). EIS-1's tables hold R = 1/G and D·R²: its
    x-gradient N·r² near 1, where float32's ulp is 1.2e-7, within 7e-7. Where the check fails the kernels
    of before serve, bit for bit."""
    module = get_act(spec)()
    name, params = module.kernel_name, _kernel_params(module)
    table, needs = _fixed_table(name, params), (True,) + (False,) * len(params)
    lo, hi = (table["z0"], table["end"]) if math.isfinite(table["z0"]) else (-7.5, 4.5)  # no fit made
    x = torch.linspace(lo, hi, FIXED_FIT_FROM + 1)[:-1]
    one = torch.ones_like(x)
    y = cpu_kernels.forward(name, x, params)
    gx = cpu_kernels.backward(name, one, x, params, needs)[0]
    if table["usable"]:
        p64 = [p.double() for p in params]
        want = (
            getattr(AF, name)(x.double(), *p64),
            getattr(AF, f"{name}_bwd")(one.double(), x.double(), *p64)[0],
        )
        assert _relative_error(y, want[0]) < tight
        bound = max(tight, 7e-7) if table["reciprocal"] else tight
        assert _relative_error(gx, want[1], _terms_of_d(x, want)) < bound
    else:  # chunks under FIXED_FIT_FROM take the kernels of before
        chunks = x.split(FIXED_FIT_FROM // 2)
        assert torch.equal(y, torch.cat([cpu_kernels.forward(name, xc, params) for xc in chunks]))
        parts = [cpu_kernels.backward(name, torch.ones_like(xc), xc, params, needs)[0] for xc in chunks]
        assert torch.equal(gx, torch.cat(parts))


FITTED_SPECS = ["pserf", "pserf(gamma=2.0, delta=-0.5)", "pserf(gamma=-0.7, delta=1.5)", "erfact"]
FITTED_SPECS += ["erfact(alpha=-2.0, beta=0.5)", "erfact(alpha=1e-3, beta=2.0)"]
FITTED_SPECS += ["eis2", "eis(alpha=0.5, beta=1.0, gamma=0.25, delta=0.0, theta=2.0)", "eis1"]
FITTED_SPECS += ["tanhsoft", "tanhsoft1", "logish(alpha=2.0, beta=0.5)", "tanhexp"]
FIXED_KERNELS = ("eis", "tanhsoft", "logish", "tanhexp")


@needs_c
@pytest.mark.parametrize("spec", FITTED_SPECS)
def test_fitted_tables_equal_the_eager_reference_on_extreme_inputs(spec):
    """As test_c_kernel_equals_the_eager_reference, at a size the fitted tables serve (vectors of the extreme
    grid take the formula), and each parameter's gradient alone as among all."""
    module = get_act(spec)()
    x = extreme_inputs(n_random=FIXED_FIT_FROM if module.kernel_name in FIXED_KERNELS else FIT_FROM)
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    y, grads = _grads(module, x, g, c=True)
    y_ref, grads_ref = _grads(module, x, g, c=False, fuse=False)
    _assert_same(y, y_ref)
    _assert_same_grads(grads, grads_ref, module, x, g)
    params, finite = _kernel_params(module), x[~x.isnan()].unsqueeze(0)
    g = g[:, : finite.numel()]
    n_params = len(params)
    everything = cpu_kernels.backward(module.kernel_name, g, finite, params, (True,) * (1 + n_params))
    for k in range(n_params):
        needs = (True, *(j == k for j in range(n_params)))
        alone = cpu_kernels.backward(module.kernel_name, g, finite, params, needs)
        _assert_same(alone[0], everything[0])  # to rounding: each copy's own FMA contraction
        _assert_same(alone[1 + k], everything[1 + k], rtol=2e-5, atol=1e-5)


def check_serf_tables() -> None:
    """Serf's value and derivative from its interval tables and closed-form tails, against float64, on a dense
    grid across [-9.5, 4.5] (the tables), both ends exactly, and vectors mixing table and tail lanes."""
    ends = torch.tensor([-9.5, 4.5]).repeat_interleave(3) + torch.tensor([-1e-6, 0.0, 1e-6]).repeat(2)
    x = torch.cat([torch.linspace(-12, 6, 360001), ends, torch.tensor([-20.0, 0.5, 5.0, -9.6] * 8)])
    xd, g = x.double(), torch.ones_like(x)
    y = cpu_kernels.forward("serf", x, ())
    (gx,) = cpu_kernels.backward("serf", g, x, (), (True,))
    assert _relative_error(y, AF.serf(xd)) < 4e-7
    (want,) = AF.serf_bwd(g.double(), xd)
    assert _relative_error(gx, want, torch.where(xd.abs() < 3, 0.1, 0.0)) < 4e-7  # its root near -1.2
    assert torch.equal(y[x >= 4.5], x[x >= 4.5]) and torch.equal(gx[x >= 4.5], g[x >= 4.5])


def test_env_var_turns_them_off():
    code = "from actlab.activations import cpu_kernels as c; print(c.cpu_kernels_enabled(), c.status())"
    env = {**os.environ, "ACTLAB_CPU_KERNELS": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False C kernels off")


@pytest.mark.parametrize("c", [True, False])
def test_tanhsoft1_gradient_is_finite_where_its_exponential_overflows(c):
    """β = 0 (tanhsoft1): e^{γx} overflows from x = 89 while sech²(αx)·e^{γx} is 0 there; β·γ·inf was NaN."""
    module = get_act("tanhsoft1")()
    x = torch.tensor([89.0, 100.0, 1e4] * 11_000)
    for fuse in (True, False):
        _, (grad,) = _grads(module, x, torch.ones_like(x), c=c, fuse=fuse)
        torch.testing.assert_close(grad, torch.ones_like(x))


@needs_c
def test_pau_sums_a_block_again_in_double_where_its_float32_sums_overflow(calls):
    """Terms of ±3e38 (x^5 = 1e30 times g = ±3e8, x below the double-lane bound 2^20) cancel exactly in
    float64; float32 block sums give inf - inf. The exact sums in float64 are the measure: the reference
    sums in float64 too, but terms rounded to float32 first (2e-5 off here)."""
    module = get_act("pau(numerator=(0.0, 0.0, 0.0, 0.0, 0.0, 1.0), denominator=(0.0, 0.0, 0.0, 0.0))")()
    x = torch.full((4096,), 1e6)
    g = torch.tensor([3e8, -3e8]).repeat(2048)
    g[:2] = 1.0  # a small remainder the sums must keep
    _, (gx, grad_num, grad_den) = _grads(module, x, g, c=True)
    assert calls["backward"] == 1
    exact = [math.fsum((g.double() * x.double() ** j).tolist()) for j in range(6)]
    torch.testing.assert_close(grad_num, torch.tensor(exact, dtype=torch.float32), rtol=1e-7, atol=0)
    assert grad_den.tolist() == [0.0] * 4  # sign(0) = 0
    torch.testing.assert_close(gx, g * 5 * x**4)


@needs_c
def test_pau_without_learnable_coefficients(calls):
    module = get_act("pau(learnable=False)")()
    x = extreme_inputs()
    y, (gx,) = _grads(module, x, torch.ones_like(x), c=True)
    y_ref, (gx_ref,) = _grads(module, x, torch.ones_like(x), c=False, fuse=False)
    assert calls == {"forward": 1, "backward": 1}
    _assert_same(y, y_ref)
    _assert_same(gx, gx_ref)


def test_parameter_gradients_beyond_float32_become_inf():
    p = torch.zeros((), dtype=torch.float32)
    assert cpu_kernels._param_grad([1e39], p).item() == math.inf
    assert cpu_kernels._param_grad([-1e39], p).item() == -math.inf
    assert cpu_kernels._param_grad([3e38], torch.zeros(1)).tolist() == [pytest.approx(3e38)]
    assert math.isnan(cpu_kernels._param_grad([math.nan], p).item())
    vector = cpu_kernels._param_grad([1.0, -1e39, 2.0], torch.zeros(3))  # PAU's coefficient vectors
    assert vector.tolist() == [1.0, -math.inf, 2.0]
