"""Fused kernels equal the eager reference kernels, in value and gradient, on random and extreme inputs.

Tolerances: float32 rtol 1e-5 (the fast float32 formulas are within 5e-7 of the reference); float64
rtol 1e-12 (the reference formulas, compiled); bfloat16 one rounding step (rtol 8e-3), since both
compute in float32 and may round a last-bit difference either way. Every kernel is compiled for one
shape family (dynamic shapes) and reused across tests in a worker, so the suite compiles ~40 graphs.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch

from actlab.activations import cpp_op, cpu_kernels, fused, get_act
from actlab.activations import functional as AF
from actlab.activations.autograd import Kernel, evaluate, evaluate_backward
from actlab.activations.modules import KERNELS

SPECS = [  # every kernel, with learnable parameters where it has any, so their gradients are checked
    "swish(learnable=True)",
    "silu",
    "hard_swish",
    "mish",
    "gelu",
    "gelu(approximate='tanh')",
    "smu(learnable_alpha=True)",
    "smu1(learnable_alpha=True)",
    "smooth_max(learnable_ab=True)",
    "smooth_max(form='sqrt', learnable_ab=True)",
    "tanhsoft(learnable=True)",
    "eis(learnable=True)",
    "erfact",
    "pserf",
    "serf",
    "tanhexp",
    "logish(learnable=True)",
    "pau",
    "softplus",
    "softplus(beta=2, threshold=5)",
    "prelu",
    "elu",
    "celu(alpha=0.5)",
    "selu",
]
OTHER_DTYPES = ["mish", "smu(learnable_alpha=True)"]  # one cheap and one heavy kernel


def extreme_inputs(dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random values, a grid out to ±max of ``dtype``, and ±inf: shape (1, L)."""
    info = torch.finfo(dtype)
    mags = [0.0, info.tiny, 1e-30, 1e-10, 1e-3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 9.0, 10.0, 15.0, 20.0, 21.0]
    mags += [30.0, 50.0, 88.0, 89.0, 100.0, 500.0, 1e4, 1e10, 1e30, info.max / 2, info.max]
    grid = [m for m in mags if m <= info.max]
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randn(2000, generator=gen, dtype=torch.float64) * 4
    values = torch.cat([rand, torch.tensor(grid + [-m for m in grid] + [math.inf, -math.inf])])
    return values.to(dtype).unsqueeze(0)


@pytest.fixture(autouse=True)
def fused_for_every_size():
    """The compiled fast path for any size here (its threshold is a speed choice, not a correctness one);
    the C kernels, which would take the float32, bfloat16 and float16 CPU calls first, are tested in
    test_cpu_kernels.py."""
    with fused.use_fused(True, min_numel=0), cpu_kernels.use_cpu_kernels(False):
        yield


def _run(module: torch.nn.Module, x: torch.Tensor, use: bool):
    with fused.use_fused(use, min_numel=0):
        leaf = x.clone().requires_grad_()
        y = module(leaf)
        g = torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape).to(y.dtype)
        params = [p for p in module.parameters()]
        grads = torch.autograd.grad(y, [leaf, *params], g)
        return y.detach(), grads, y.grad_fn.name()


def _check(spec: str, dtype: torch.dtype, rtol: float, atol: float, x: torch.Tensor | None = None) -> None:
    module = get_act(spec)()
    x = extreme_inputs(dtype) if x is None else x
    y_ref, grads_ref, name_ref = _run(module, x, use=False)
    y, grads, name = _run(module, x, use=True)
    assert name.endswith("FusedFunctionBackward") and not name_ref.endswith("FusedFunctionBackward")
    assert y.dtype == dtype and grads[0].dtype == dtype
    torch.testing.assert_close(y, y_ref, rtol=rtol, atol=atol, equal_nan=True)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("spec", SPECS)
def test_fused_equals_eager_float32(spec):
    _check(spec, torch.float32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", OTHER_DTYPES)
def test_fused_equals_eager_float64(spec):
    _check(spec, torch.float64, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("spec", OTHER_DTYPES)
def test_fused_equals_eager_bfloat16(spec):
    _check(spec, torch.bfloat16, rtol=8e-3, atol=1e-5)


@pytest.mark.parametrize("spec", ["mish", "smu", "gelu"])
def test_nan_propagates_and_no_grad_path_is_fused(spec):
    module = get_act(spec)()
    x = torch.tensor([[math.nan, 1.0, -math.inf, math.inf, 0.0]])
    with torch.no_grad():
        y = module(x)
        with fused.use_fused(False):
            ref = module(x)
    assert torch.isnan(y[0, 0]) and y.grad_fn is None
    torch.testing.assert_close(y, ref, equal_nan=True)


def test_saves_only_the_input_for_backward():
    module = get_act("smu(learnable_alpha=True)")()  # shares its compiled kernels with the test above
    x = torch.randn(64, 512, requires_grad=True)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = module(x * 1.0)
    assert y.grad_fn.name().endswith("FusedFunctionBackward")
    assert [t.numel() for t in saved if t.numel() >= x.numel()] == [x.numel()]


def test_per_channel_parameters_and_4d_inputs():
    module = get_act("swish(learnable=True, num_parameters=3)")()
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    y_ref, grads_ref, _ = _run(module, x, use=False)
    y, grads, name = _run(module, x, use=True)
    assert name.endswith("FusedFunctionBackward") and grads[1].shape == (3,)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=0)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-300)


# a parameter of shape (), one of shape (1,), a gradient asked for one of two, four, coefficient vectors
BY_ROWS = ["swish(learnable=True)", "prelu", "smu(learnable_alpha=True)", "tanhsoft(learnable=True)", "pau"]


def _by_rows_input(dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    """The extreme inputs (2056 values), then random values up to ``shape``."""
    x = extreme_inputs(dtype).flatten()
    fill = torch.randn(math.prod(shape) - x.numel(), generator=torch.Generator().manual_seed(1)) * 4
    return torch.cat([x, fill.to(dtype)]).reshape(shape)


@pytest.fixture
def rows_on_the_cpu(monkeypatch):
    """``fused.by_rows`` on the CPU too (it serves Triton's devices: the CPU's compiled rows are slower)."""
    monkeypatch.setattr(fused, "ROW_DEVICES", fused.ROW_DEVICES | {"cpu"})


@pytest.mark.parametrize("spec", BY_ROWS)
def test_parameter_gradients_summed_by_rows_equal_eager(spec, rows_on_the_cpu):
    _check(spec, torch.float32, rtol=1e-5, atol=1e-6, x=_by_rows_input(torch.float32, (4, 8, 128)))


def test_parameter_gradients_summed_by_rows_of_a_channels_last_input(rows_on_the_cpu):
    x = _by_rows_input(torch.float32, (2, 8, 16, 16)).contiguous(memory_format=torch.channels_last)
    _check("swish(learnable=True)", torch.float32, rtol=1e-5, atol=1e-6, x=x)


@pytest.fixture
def compiled_calls(monkeypatch):
    """(which, x's shape) of every call of a compiled forward or backward."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    real = fused.FusedKernel._call

    def spy(self, which, device, *args):
        if which != "limits":
            seen.append((which, tuple(args[0 if which.startswith("forward") else 2].shape)))
        return real(self, which, device, *args)

    monkeypatch.setattr(fused.FusedKernel, "_call", spy)
    return seen


ALIGNED_CASES = [  # spec, x's shape, layout → (forward's x, backward's x); "_aligned": its row length static
    ("swish(learnable=True)", (4096,), None, ("forward_aligned", (4, 1024)), ("backward_aligned", (4, 1024))),
    (
        "swish(learnable=True)",
        (2, 8, 16, 16),
        None,
        ("forward_aligned", (4, 1024)),
        ("backward_aligned", (4, 1024)),
    ),
    (
        "swish(learnable=True)",
        (2, 8, 16, 16),
        "channels_last",
        ("forward_aligned", (4, 1024)),
        ("backward_aligned", (4, 1024)),
    ),
    # 4000 = 250·16: rows of 16 where nothing is summed; beta's sum keeps x's shape (its rows by_rows's own)
    ("swish(learnable=True)", (4000,), None, ("forward_aligned", (250, 16)), ("backward", (4000,))),
    ("silu", (4000,), None, ("forward_aligned", (250, 16)), ("backward_aligned", (250, 16))),
    ("pau", (8, 512), None, ("forward_aligned", (4, 1024)), ("backward_aligned", (4, 1024))),
    ("swish(learnable=True)", (3000,), None, ("forward", (3000,)), ("backward", (3000,))),  # not 16·k
    (
        "swish(learnable=True, num_parameters=8)",
        (2, 8, 16, 16),
        None,
        ("forward", (2, 8, 16, 16)),
        ("backward", (2, 8, 16, 16)),
    ),  # per channel: broadcast along x's own dimensions
    ("silu", (2, 8, 16, 16), "transposed", ("forward", (2, 8, 16, 16)), ("backward", (2, 8, 16, 16))),
]


@pytest.mark.parametrize(("spec", "shape", "layout", "forward", "backward"), ALIGNED_CASES)
def test_triton_devices_get_x_in_aligned_rows(
    spec, shape, layout, forward, backward, rows_on_the_cpu, compiled_calls
):
    x = _by_rows_input(torch.float32, shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(2, 3)
    _check(spec, torch.float32, 1e-5, 1e-6, x=x)
    assert compiled_calls == [forward, backward]
    module = get_act(spec)()
    leaf = x.clone().requires_grad_()
    y = module(leaf)
    y.backward(torch.ones_like(y))
    assert y.shape == x.shape and y.stride() == x.stride() and leaf.grad.stride() == x.stride()


def test_aligned_rows_switched_off_keep_x_shape(rows_on_the_cpu, compiled_calls):
    fused.set_fused(align=False)  # ACTLAB_FUSED_ALIGN=0, the GPU's comparison
    try:
        _check("silu", torch.float32, 1e-5, 1e-6, x=_by_rows_input(torch.float32, (4, 1024)))
        assert compiled_calls == [("forward", (4, 1024)), ("backward", (4, 1024))]
        assert "no aligned rows" in fused.describe()
    finally:
        fused.set_fused(align=True)


def test_aligned_rows_only_on_triton_devices(compiled_calls):
    _check("silu", torch.float32, 1e-5, 1e-6, x=_by_rows_input(torch.float32, (4096,)))
    assert compiled_calls == [("forward", (4096,)), ("backward", (4096,))]  # the CPU's C++: x as it is


def test_by_rows_views_g_and_x_where_a_scalar_parameter_needs_its_gradient(monkeypatch, rows_on_the_cpu):
    from actlab.activations import autograd

    seen: list[tuple[tuple[int, ...], bool]] = []
    real = autograd.evaluate_backward

    def spy(backward, g, x, params, needs, clamp=True, row_sums=False):
        seen.append((tuple(x.shape), row_sums))
        return real(backward, g, x, params, needs, clamp, row_sums)

    monkeypatch.setattr(autograd, "evaluate_backward", spy)
    swish, pau = KERNELS["swish"], KERNELS["pau"]
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    beta, coefficients = torch.tensor([1.5], dtype=torch.float64), (torch.rand(6), torch.rand(4))
    channels_last = x.contiguous(memory_format=torch.channels_last)
    cases = [  # (kernel, x, params, needs) → the shape the backward saw, summed by rows?
        (swish, x, (beta,), (True, True), (6, 1024), True),  # rows: the last dimensions with >= 256 elements
        (pau, x, coefficients, (True, True, True), (6, 1024), True),
        (swish, channels_last, (beta,), (True, True), (2, 3072), True),  # memory order: (2, 32, 32, 3)
        (swish, x[0, 0], (beta,), (True, True), (32, 32), True),  # the first dimension stays the rows
        (swish, x[0, 0, 0, :5].reshape(1, 5), (beta,), (True, True), (1, 5), True),
        (swish, x, (beta,), (True, False), x.shape, False),  # no parameter gradient: nothing to sum
        (swish, x.flatten(), (beta,), (True, True), (6144,), False),  # one dimension: one row, one block
        (swish, x.transpose(2, 3), (beta,), (True, True), (2, 3, 32, 32), False),  # neither layout
        (swish, x, (torch.ones(3, 1, 1, dtype=torch.float64),), (True, True), x.shape, False),  # per channel
    ]
    for kernel, xs, params, needs, shape, rows in cases:
        seen.clear()
        g = torch.randn_like(xs)
        grads = fused.by_rows(kernel, kernel.backward, g, xs, params, needs)
        assert seen == [(tuple(shape), rows)]
        assert grads[0].stride() == xs.stride() or not rows  # grad_x in x's layout
        want = real(kernel.backward, g, xs, params, needs)
        for got, ref in zip(grads, want, strict=True):
            assert (got is None) == (ref is None)
            if got is not None:
                assert got.shape == ref.shape
                torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    fused.set_fused(rows=False)  # ACTLAB_FUSED_ROWS=0, the GPU's comparison
    try:
        seen.clear()
        fused.by_rows(swish, swish.backward, torch.randn_like(x), x, (beta,), (True, True))
        assert seen == [(tuple(x.shape), False)] and "parameter sums not by rows" in fused.describe()
    finally:
        fused.set_fused(rows=True)
    monkeypatch.setattr(fused, "ROW_DEVICES", frozenset({"cuda"}))  # as by default: not on the CPU
    seen.clear()
    fused.by_rows(swish, swish.backward, torch.randn_like(x), x, (beta,), (True, True))
    assert seen == [(tuple(x.shape), False)]


def test_each_shape_family_has_its_own_recompile_budget(monkeypatch):
    """Dynamo compiles a function anew for each rank and dtype, up to ``recompile_limit`` times per code
    object (8), then fullgraph=True fails: with one function for all, the ninth family (4 dtypes × 3 ranks)
    turned the kernel eager for good. Here the limit is 1, so one function would have failed at the second."""
    monkeypatch.setitem(fused._FUSED, "silu", fused.FusedKernel(KERNELS["silu"]))  # nothing compiled yet
    module = get_act("silu")()
    families = [torch.randn(300), torch.randn(3, 100), torch.randn(3, 10, 10), torch.randn(3, 100).double()]
    with torch._dynamo.config.patch(recompile_limit=1):  # not monkeypatch: its undo deletes config entries
        for x in families:
            y, grads, name = _run(module, x, use=True)
            assert name == "SiluFusedFunctionBackward" and not fused.failures()
            y_ref, grads_ref, _ = _run(module, x, use=False)
            torch.testing.assert_close((y, grads), (y_ref, grads_ref), rtol=1e-5, atol=1e-6)
        # one family recompiled past the limit (a dimension of size 1 specializes): it alone runs eagerly
        one_row = torch.randn(1, 100)
        with pytest.warns(RuntimeWarning, match="recompiled too often") as warned:
            got = _run(module, one_row, use=True)
    said = sorted(str(w.message).split(" was ")[0] for w in warned)
    family = "for 2-D torch.float32 on cpu"
    assert said == [f"actlab: the fused 'silu' {d} {family}" for d in ("backward", "forward")]
    torch.testing.assert_close(got[:2], _run(module, one_row, use=False)[:2], rtol=1e-5, atol=1e-6)
    assert not fused.failures()
    compiled = fused.fused_kernel(KERNELS["silu"])._compiled
    assert compiled[("forward", True, torch.float32, 2)] is None
    assert compiled[("forward", True, torch.float32, 3)] is not None


def test_double_backward_uses_the_eager_backward():
    x = torch.randn(300, dtype=torch.float64, requires_grad=True)
    kernel = KERNELS["silu"]
    (g,) = torch.autograd.grad(kernel(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(gg, s * (1 - s) * (2 + x.detach() * (1 - 2 * s)))


# ------------------------------------------------------------------------------------------------
# The fast float32 formulas themselves, uncompiled (cheap)


def test_erfc_fast_is_within_5e7_of_erfc():
    t = torch.cat([torch.linspace(-10, 11, 400001), torch.tensor([0.0, 1e-30, -1e-30, 3e38, -3e38])])
    ref = torch.erfc(t.double())
    got = fused.erfc_fast(t).double()
    mask = ref > 1e-37
    assert ((got - ref).abs() / ref)[mask].max() < 5e-7
    assert (got[~mask] < 1e-36).all()


def test_compiled_erfc_gelu_and_smu_are_exact_in_the_tails():
    check_compiled_tails("cpu")


def check_compiled_tails(device: str) -> None:
    """Compiled (FMA contraction on) against float64 on the same float32 inputs, tails included: relative
    error ≤ 1e-6 for values and gradients down to 1e-36 (100× float32's smallest normal)."""
    x = torch.cat(
        [torch.linspace(-14.5, 14.5, 58001), torch.logspace(-30, 0, 301), -torch.logspace(-30, 0, 301)]
    ).to(device)
    alpha, mu = torch.tensor([0.0], device=device), torch.tensor([1.0], device=device)
    g = torch.ones_like(x)

    def fast(x, alpha, mu):
        e, gauss = fused.erfc_and_gauss(x.abs())
        return (e, gauss, fused.gelu_fast(x), *fused.gelu_fast_bwd(g, x), fused.smu_fast(x, alpha, mu))

    def fast_bwd(x, alpha, mu):
        return fused.smu_fast_bwd(g, x, alpha, mu)

    got = fused._compile(fast)(x, alpha, mu) + fused._compile(fast_bwd)(x, alpha, mu)[:1]
    got = tuple(t.cpu() for t in got)
    xd, ad, md, gd = (t.double().cpu() for t in (x, alpha, mu, g))
    want = (
        torch.erfc(xd.abs()),
        torch.exp(-xd * xd),
        AF.gelu(xd),
        *AF.gelu_bwd(gd, xd),
        AF.smu(xd, ad, md),
        AF.smu_bwd(gd, xd, ad, md)[0],
    )
    # The gradients cross 0 near x = -0.75: relative to their O(1) terms there, to themselves in the tails.
    near_root = torch.where(xd.abs() < 3, 0.1, 0.0)
    for i, (got_i, want_i) in enumerate(zip(got, want, strict=True)):
        normal = want_i.abs() > 1e-36  # below, intermediates (erfc of the tail) are subnormal
        rel = ((got_i.double() - want_i).abs() / torch.maximum(want_i.abs(), near_root))[normal]
        assert rel.max() < 1e-6, (i, rel.max(), xd[normal][rel.argmax()], want_i[normal][rel.argmax()])


def test_tanh_fast_keeps_relative_precision():
    w = torch.cat([torch.logspace(-30, 2, 10001), -torch.logspace(-30, 2, 10001), torch.tensor([0.0, 3e38])])
    ref = torch.tanh(w.double())
    got = fused.tanh_fast(w).double()
    assert ((got - ref).abs() / ref.abs().clamp(min=1e-300)).max() < 3e-7


@pytest.mark.parametrize("name", sorted(fused.FAST_FP32))
def test_fast_formulas_match_reference_eagerly(name):
    kernel = KERNELS[name]
    fast_fwd, fast_bwd = fused.FAST_FP32[name]
    x = extreme_inputs(torch.float32)[0]
    specs = {"smooth_max_erf": "smooth_max", "smooth_max_sqrt": "smooth_max(form='sqrt')"}
    module = get_act(specs.get(name, name))()
    params = tuple(getattr(module, n).detach() for n in getattr(module, "param_names", ()))
    torch.testing.assert_close(
        evaluate(fast_fwd, x, params), evaluate(kernel.forward, x, params), rtol=1e-5, atol=1e-6
    )
    g = torch.ones_like(x)
    needs = (True,) * (1 + len(params))
    for got, want in zip(
        evaluate_backward(fast_bwd, g, x, params, needs),
        evaluate_backward(kernel.backward, g, x, params, needs),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", sorted(fused.OWN_LIMITS))
def test_own_limits_forwards_need_no_limit_handling(name):
    """Listed in OWN_LIMITS: the bare fast forward already gives the limits at ±inf and NaN for NaN, the fast
    backward finite limits at ±inf without the clamp."""
    x = torch.cat([extreme_inputs(torch.float32)[0], torch.tensor([math.nan])])
    for spec in {"softplus": ["softplus", "softplus(beta=-2, threshold=5)"]}.get(name, [name]):
        module = get_act(spec)()
        params = tuple(getattr(module, n).detach() for n in module.param_names)
        got = fused.FAST_FP32[name][0](x, *params)
        want = evaluate(KERNELS[name].forward, x, params)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        needs, g = (True,) + (False,) * len(params), torch.ones_like(x)
        (grad_x, *_) = evaluate_backward(fused.FAST_FP32[name][1], g, x, params, needs, clamp=False)
        (want_x, *_) = evaluate_backward(KERNELS[name].backward, g, x, params, needs)
        torch.testing.assert_close(grad_x, want_x, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_erf_fast_keeps_relative_precision():
    s = torch.cat(
        [torch.linspace(-6, 6, 200001), torch.logspace(-38, 0, 2001), -torch.logspace(-38, 0, 2001)]
    )
    ref = torch.erf(s.double())
    got = fused.erf_fast(s).double()
    assert ((got - ref).abs() / ref.abs().clamp(min=1e-300)).max() < 5e-7


def _graphs_compiled_for(spec: str, monkeypatch) -> dict[str, torch.fx.GraphModule]:
    """The FX graphs dynamo hands the compiler, by function name, when ``spec`` runs fused from scratch."""
    graphs: dict[str, torch.fx.GraphModule] = {}

    def recording(fn):
        def backend(gm, example_inputs):
            graphs[fn.__name__] = gm
            return gm.forward

        return torch.compile(fn, dynamic=True, fullgraph=True, backend=backend)

    monkeypatch.setattr(fused, "_compile", recording)
    kernel = KERNELS[get_act(spec)().kernel_name]
    monkeypatch.setitem(fused._FUSED, kernel.name, fused.FusedKernel(kernel))  # nothing compiled yet
    _run(get_act(spec)(), extreme_inputs(torch.float32), use=True)
    return graphs


@pytest.mark.parametrize("spec", SPECS)
def test_float32_kernels_take_no_lifted_float_constants(spec, monkeypatch):
    """dynamo turns a float read from a module global or a default argument into a float64 input of the kernel
    (reloaded and converted in every iteration, and a stale on-disk-cache hazard): the fast formulas spell
    their constants as literals, so each compiled graph's inputs are the call's own tensors only."""
    graphs = _graphs_compiled_for(spec, monkeypatch)
    inputs = {fn: [n.target for n in gm.graph.nodes if n.op == "placeholder"] for fn, gm in graphs.items()}
    assert any(name.endswith("_fused_backward") for name in inputs), inputs
    lifted = {fn: [a for a in args if a.startswith("G_")] for fn, args in inputs.items()}
    assert not any(lifted.values()), lifted


def test_limits_kernel_takes_its_probe_as_an_input(monkeypatch):
    """Built inside the graph, the probe's values (±max) are known to inductor, whose sympy value ranges
    then grow through the whole formula: Serf's limits kernel took 250 s to compile instead of 30."""
    nodes = list(_graphs_compiled_for("serf", monkeypatch)["serf_fused_limits"].graph.nodes)
    built = [n for n in nodes if n.op == "get_attr" or n.target in (torch.tensor, torch.as_tensor)]
    assert not built, built
    assert "l_probe_" in [n.name for n in nodes if n.op == "placeholder"], nodes
    cpu = torch.device("cpu")
    assert fused._probe(torch.bfloat16, cpu) is fused._probe(torch.bfloat16, cpu)  # made once per device
    assert fused._probe(torch.bfloat16, cpu).dtype == torch.float32  # the compute dtype
    big = torch.finfo(torch.float64).max
    assert fused._probe(torch.float64, cpu).flatten().tolist() == [-big, -big / 2, big / 2, big]


def test_a_users_compile_keeps_the_probe_out_of_the_generated_code():
    """Under a user's ``torch.compile`` the probe is a constant of the graph; inlined into the code, its
    values would feed inductor's value ranges as above (a model with Serf: 404 s to compile instead of 59)."""
    from torch._functorch.aot_autograd import aot_module_simplified
    from torch._inductor.graph import GraphLowering

    constants = []

    def record(gm, example_inputs):
        constants.extend(getattr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr")
        return gm.forward

    def backend(gm, example_inputs):
        return aot_module_simplified(gm, example_inputs, fw_compiler=record)

    model = torch.compile(get_act("serf")(), backend=backend, fullgraph=True)
    x = torch.randn(64, requires_grad=True)
    torch.testing.assert_close(model(x), get_act("serf")()(x))
    probes = [c for c in constants if c.numel() == 4]
    assert probes and not any(GraphLowering.can_inline_constant(c) for c in probes), constants


# ------------------------------------------------------------------------------------------------
# When the fast path is used, and the fallback


def test_fallback_when_compiling_fails(monkeypatch):
    def broken(fn):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(fused, "_compile", broken)
    monkeypatch.setattr(fused._SETTINGS, "failed", {})
    kernel = Kernel("fallback_probe", AF.mish, AF.mish_bwd)  # its own name: nothing cached
    x = torch.randn(100, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="fallback_probe.*runs eagerly"):
        y = kernel(x)
    assert ("fallback_probe", "cpu") in fused.failures()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        y2 = kernel(x)
        y2.sum().backward()
    assert y2.grad_fn.name() == "FallbackProbeFunction" + "Backward"  # remembered: the eager op
    torch.testing.assert_close(y, evaluate(AF.mish, x.detach(), ()))


def test_fallback_inside_backward(monkeypatch):
    kernel = Kernel("fallback_probe_bwd", AF.silu, AF.silu_bwd)
    fk = fused.fused_kernel(kernel)
    monkeypatch.setattr(fused._SETTINGS, "failed", {})
    real = fused._compile
    monkeypatch.setattr(fused, "_compile", lambda fn: 1 / 0 if "backward" in fn.__name__ else real(fn))
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    y = kernel(x)
    assert y.grad_fn.name().endswith("FusedFunctionBackward")
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, AF.silu_bwd(torch.ones_like(x), x.detach())[0])
    assert fk is fused.fused_kernel(kernel)


def test_user_errors_are_raised_not_swallowed(monkeypatch):
    monkeypatch.setattr(fused._SETTINGS, "failed", {})
    module = get_act("swish(learnable=True, num_parameters=4)")()
    with pytest.raises(ValueError, match="4 per-channel parameters"):
        module(torch.randn(2, 5, 3))
    assert not fused.failures()


def test_where_the_fast_path_is_skipped(monkeypatch):
    x, mish = torch.randn(1000), KERNELS["mish"]
    assert fused._path(mish, x, ()) == "compiled"  # C kernels are off in this file
    with fused.use_fused(True, min_numel=1001):
        assert fused._path(mish, x, ()) is None
        with cpu_kernels.use_cpu_kernels(True):  # a C kernel serves any size
            assert fused._path(mish, x, ()) == ("c" if cpu_kernels.library() is not None else None)
            assert fused._path(KERNELS["gelu_tanh"], x, ()) is None  # no C kernel: the threshold holds
    monkeypatch.setitem(fused._SETTINGS.failed, ("mish", "cpu"), "compiling failed")
    assert fused._path(mish, x, ()) is None  # the eager op after a failed compile
    monkeypatch.delitem(fused._SETTINGS.failed, ("mish", "cpu"))
    with fused.use_fused(False):
        assert fused._path(mish, x, ()) is None
    assert fused._path(mish, torch.arange(1000), ()) is None
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert fused._path(mish, x, ()) is None


@pytest.mark.skipif(cpu_kernels.compiler() is None, reason="no C compiler")
def test_the_c_route_serves_first_and_declines_to_the_general_one(monkeypatch):
    """``c_call``, asked first by every call: the C op with a gradient, the bare C forward without one, and
    None (then ``fused_call`` and the eager op decide) wherever a C kernel does not serve."""
    smu, module = KERNELS["smu"], get_act("smu")()
    params = (module.alpha, module.mu)
    x = torch.randn(64, 8)
    with cpu_kernels.use_cpu_kernels(True):
        assert cpu_kernels.library() is not None
        with cpp_op.use_cpp_op(False):  # the Python op over the C kernels (test_cpp_op.py: the C++ one)
            assert smu(x, *params).grad_fn.name() == "SmuCFusedFunctionBackward"  # mu is learnable
        with torch.no_grad():
            assert fused.c_call(smu, x, params).grad_fn is None
        fixed = (module.alpha, module.mu.detach())
        assert fused.c_call(smu, x, fixed).grad_fn is None  # nothing asks for a gradient
        assert fused.c_call(smu, x.double(), params) is None  # no C kernel for float64
        assert fused.c_call(smu, x.t(), params) is None  # strided
        assert fused.c_call(smu, x, (torch.full((8,), 0.01), module.mu)) is None  # per-channel
        assert fused.c_call(KERNELS["gelu_tanh"], x, ()) is None  # no C kernel of its own
        with fused.use_fused(False):
            assert fused.c_call(smu, x, params) is None
        with monkeypatch.context() as patched:
            patched.setattr(torch.jit, "is_tracing", lambda: True)
            assert fused.c_call(smu, x, params) is None  # tracing and export take the plain ops
        assert fused.c_call(smu, x, params) is not None
    assert fused.c_call(smu, x, params) is None  # C kernels off (this file's default)


def test_small_tensors_take_the_eager_op_by_default():
    with fused.use_fused(True, min_numel=fused.DEFAULT_MIN_NUMEL):
        y = get_act("mish")()(torch.randn(10, requires_grad=True))
    assert y.grad_fn.name() == "MishFunctionBackward"


def test_set_fused_validates_and_use_fused_restores():
    before = (fused.fused_enabled(), fused.min_numel())
    with fused.use_fused(False, min_numel=5):
        assert (fused.fused_enabled(), fused.min_numel()) == (False, 5)
    assert (fused.fused_enabled(), fused.min_numel()) == before
    with pytest.raises(ValueError, match="min_numel"):
        fused.set_fused(min_numel=-1)
    assert "min_numel" in fused.describe()


@pytest.fixture
def reference_formulas_static_shapes():
    """The GPU experiment's variant (``ENV_FORMULAS``): reference formulas, compiled for the size met."""
    fused.set_fused(formulas="reference", dynamic=False)
    yield
    fused.set_fused(formulas="auto", dynamic=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec, dtype",
    [("smu", torch.float32), ("mish", torch.float32), ("swish(learnable=True)", torch.bfloat16)],
)
def test_reference_formulas_and_static_shapes(spec, dtype, reference_formulas_static_shapes):
    """The variant computes what the fast one does (mish's limits then come from the limits kernel)."""
    assert "reference formulas, static shapes first" in fused.describe()
    assert not fused.fused_kernel(KERNELS["mish"]).own_limits(torch.device("cpu"))
    _check(
        spec,
        dtype,
        rtol=1e-5 if dtype == torch.float32 else 8e-3,
        atol=1e-6 if dtype == torch.float32 else 1e-5,
    )


def test_formulas_and_dynamic_settings_validate():
    mish = fused.fused_kernel(KERNELS["mish"])
    assert mish.own_limits(torch.device("cpu")) and "formulas" not in fused.describe()
    # auto, the default: the fast float32 formulas on the CPU, the reference ones (libdevice's erf) elsewhere
    assert fused.fast_formulas(torch.device("cpu")) and not fused.fast_formulas(torch.device("cuda"))
    assert not mish.own_limits(torch.device("cuda")) and not mish.own_limits(torch.device("meta"))
    smu = fused.fused_kernel(KERNELS["smu"])
    for which in ("forward", "backward", "limits"):  # what compiles on each device, its own code object
        assert smu._python(which, torch.device("cuda")).__name__ == f"smu_fused_{which}_reference"
        assert smu._python(which, torch.device("cpu")).__name__ == f"smu_fused_{which}"
    fused.set_fused(formulas="fast")
    try:
        assert fused.fast_formulas(torch.device("cuda")) and "fast formulas" in fused.describe()
    finally:
        fused.set_fused(formulas="auto")
    with pytest.raises(ValueError, match="formulas must be one of auto, fast, reference, got 'exact'"):
        fused.set_fused(formulas="exact")
    code = (
        "import actlab.activations.fused as f; s = f._SETTINGS; print(s.formulas, s.dynamic, s.rows, s.align)"
    )
    env = {
        "ACTLAB_FUSED_FORMULAS": "Reference",
        "ACTLAB_FUSED_DYNAMIC": "0",
        "ACTLAB_FUSED_ROWS": "0",
        "ACTLAB_FUSED_ALIGN": "0",
        "PATH": "",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["reference", "False", "False", "False"]
    env["ACTLAB_FUSED_DYNAMIC"] = "maybe"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "ACTLAB_FUSED_DYNAMIC='maybe' is not one of 1, 0" in out.stderr


def test_env_var_turns_it_off():
    code = "import actlab.activations.fused as f; print(f.fused_enabled(), f.min_numel())"
    env = {"ACTLAB_FUSED": "0", "ACTLAB_FUSED_MIN_NUMEL": "123", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "123"]


def test_the_onnx_export_check_reads_the_same_flags_as_torch(monkeypatch):
    from torch.onnx._internal.exporter import _flags
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    assert fused.in_onnx_export() is torch.onnx.is_in_onnx_export() is False
    monkeypatch.setattr(_flags, "_is_onnx_exporting", True)
    assert fused.in_onnx_export() and torch.onnx.is_in_onnx_export()
    monkeypatch.setattr(_flags, "_is_onnx_exporting", False)
    monkeypatch.setattr(type(GLOBALS), "in_onnx_export", property(lambda self: True))
    assert fused.in_onnx_export() and torch.onnx.is_in_onnx_export()
    assert not fused._eligible(torch.randn(4), ())  # the fused paths step aside during an export
