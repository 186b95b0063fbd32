"""The C++ autograd op over the C kernels gives, bit for bit, what the Python op over the same kernels gives:
values, the input's and every parameter's gradients, in every dtype and layout the kernels take; a double
backward by the eager ops; and where it cannot be built, a warning and the Python op.

(test_cpu_kernels.py checks the C kernels themselves through the Python op, against the eager reference.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import torch

from actlab.activations import cpp_op, cpu_kernels, fused, get_act
from test_cpu_kernels import SPECS, extreme_inputs

pytestmark = pytest.mark.skipif(
    cpu_kernels.library() is None or cpp_op.extension() is None,
    reason=f"no C++ op here: {cpu_kernels.status()}; {cpp_op.status()}",
)
CPP_NODE = "torch::autograd::CppNode<actlab::CKernelOp>"


def _run(module, x, g, cpp: bool, create_graph: bool = False):
    """y, its grad_fn's name and the gradients of (x, *parameters) with the C++ op on or off."""
    with cpp_op.use_cpp_op(cpp), fused.use_fused(True, min_numel=0):
        leaf = x.clone().requires_grad_(x.is_floating_point())
        y = module(leaf)
        inputs = [leaf, *module.parameters()]
        grads = torch.autograd.grad(y, inputs, g, create_graph=create_graph)
    return y, y.grad_fn.name(), grads, leaf


def _same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("spec", SPECS)
def test_the_cpp_op_equals_the_python_op_bit_for_bit(spec):
    module = get_act(spec)()
    x = extreme_inputs()
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    y, name, grads, _ = _run(module, x, g, cpp=True)
    y_py, name_py, grads_py, _ = _run(module, x, g, cpp=False)
    assert name == CPP_NODE and name_py.endswith("CFusedFunctionBackward")
    _same(y, y_py)
    for got, want in zip(grads, grads_py, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        _same(got, want)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("spec", ["smu", "swish(learnable=True)", "pau", "gelu"])
def test_half_precision_through_the_cpp_op(spec, dtype):
    if dtype not in cpu_kernels._STATE.dtypes:
        pytest.skip(f"this build does not convert {dtype}")
    module = get_act(spec)()
    x = (torch.randn(3, 70_000) * 3).to(dtype)
    g = torch.randn(x.shape).to(dtype)
    y, name, grads, _ = _run(module, x, g, cpp=True)
    y_py, _, grads_py, _ = _run(module, x, g, cpp=False)
    assert name == CPP_NODE and y.dtype == dtype and grads[0].dtype == dtype
    _same(y, y_py)
    for got, want in zip(grads, grads_py, strict=True):
        _same(got, want)


def test_layouts_and_a_strided_upstream_gradient():
    """channels_last input; an upstream gradient in another layout is copied into x's first."""
    module = get_act("smu1(learnable_alpha=True)")()
    x = torch.randn(4, 8, 5, 6).to(memory_format=torch.channels_last)
    g = torch.randn(4, 6, 5, 8).permute(0, 3, 2, 1)  # (4, 8, 5, 6), neither layout of x
    y, name, grads, _ = _run(module, x, g, cpp=True)
    y_py, _, grads_py, _ = _run(module, x, g, cpp=False)
    assert name == CPP_NODE and y.is_contiguous(memory_format=torch.channels_last)
    _same(y, y_py)
    for got, want in zip(grads, grads_py, strict=True):
        _same(got, want)


def test_only_the_gradients_asked_for():
    module = get_act("smooth_max(learnable_ab=True)")()
    x, g = torch.randn(300), torch.randn(300)
    with cpp_op.use_cpp_op(True):
        y = module(x)  # x needs no gradient: the parameters' alone
        grads = torch.autograd.grad(y, list(module.parameters()), g)
        module.mu.requires_grad_(False)
        leaf = x.clone().requires_grad_()
        y2 = module(leaf)
        (gx,) = torch.autograd.grad(y2, [leaf], g)
    with cpp_op.use_cpp_op(False):
        module.mu.requires_grad_(True)
        grads_py = torch.autograd.grad(module(x), list(module.parameters()), g)
        leaf_py = x.clone().requires_grad_()
        (gx_py,) = torch.autograd.grad(module(leaf_py), [leaf_py], g)
    assert y.grad_fn.name() == y2.grad_fn.name() == CPP_NODE
    for got, want in zip(grads, grads_py, strict=True):
        _same(got, want)
    _same(gx, gx_py)
    with torch.no_grad():
        assert module(leaf).grad_fn is None  # no gradient asked for: the bare C forward


def test_a_parameter_gradient_beyond_float32_is_infinite():
    """Double sums past float32's largest value come back as ±inf, as a float32 sum would be."""
    module = get_act("swish(learnable=True)")()
    x = torch.ones(1000)
    g = torch.full((1000,), 3e38)
    (beta_grad,) = _run(module, x, g, cpp=True)[2][1:]
    (beta_grad_py,) = _run(module, x, g, cpp=False)[2][1:]
    assert beta_grad.item() == beta_grad_py.item() == float("inf")


def test_a_double_backward_takes_the_eager_ops():
    module = get_act("smu(learnable_alpha=True)")()
    x, g = torch.randn(500) * 2, torch.randn(500)
    results = []
    for cpp in (True, False):
        _, _, grads, leaf = _run(module, x, g, cpp=cpp, create_graph=True)
        assert grads[0].grad_fn is not None  # recorded by the eager backward
        with cpp_op.use_cpp_op(cpp):
            results.append(torch.autograd.grad(grads[0].square().sum(), [leaf, *module.parameters()]))
    for got, want in zip(*results, strict=True):
        _same(got, want)


def test_reports_name_it():
    assert fused.describe().endswith("; C++ op loaded")
    with cpp_op.use_cpp_op(False):
        assert fused.describe().endswith("; C++ op off (ACTLAB_CPP_OP=0 or set_cpp_op(False))")


def test_a_rebuilt_library_gets_its_own_slot():
    """Slots are keyed by the kernels' addresses: a library loaded again (other flags) is never called
    through a stale slot."""
    module = get_act("mish")()
    _run(module, torch.randn(10), torch.randn(10), cpp=True)
    assert cpu_kernels.function_addresses("mish") in cpp_op._STATE.slots


def test_where_it_cannot_be_built_the_python_op_serves(monkeypatch):
    monkeypatch.setattr(cpp_op, "_STATE", cpp_op._State())

    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(cpp_op, "_build", no_compiler)
    module = get_act("smu")()
    x, g = torch.randn(100), torch.randn(100)
    with pytest.warns(RuntimeWarning, match="C\\+\\+ autograd op could not be built.*Ninja is required"):
        y, name, grads, _ = _run(module, x, g, cpp=True)
    assert name == "SmuCFusedFunctionBackward"
    assert cpp_op.status().startswith("C++ op unavailable: RuntimeError: Ninja is required")
    _run(module, x, g, cpp=True)  # not retried, not warned again
    y_py, _, grads_py, _ = _run(module, x, g, cpp=False)
    _same(y, y_py)
    for got, want in zip(grads, grads_py, strict=True):
        _same(got, want)


def test_the_environment_switch():
    code = (
        "import torch, actlab\n"
        "from actlab.activations import cpp_op\n"
        "y = actlab.get_act('smu')()(torch.randn(10, requires_grad=True))\n"
        "print(cpp_op.status(), y.grad_fn.name())\n"
    )
    env = {**os.environ, "ACTLAB_CPP_OP": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    status, grad_fn = out.stdout.rsplit(" ", 1)
    assert status == "C++ op off (ACTLAB_CPP_OP=0 or set_cpp_op(False))"
    assert grad_fn.strip() == "SmuCFusedFunctionBackward"


def test_a_build_killed_mid_way_does_not_block_the_next():
    """torch's lock file, left in the build folder by a killed build, would make every later load wait
    forever; a process holding actlab's lock (freed by the system when its holder dies) removes it."""
    tag = hashlib.sha256(cpp_op.SOURCE.read_bytes() + torch.__version__.encode()).hexdigest()[:16]
    stale = cpu_kernels.cache_dir() / f"c_op-{tag}" / "lock"
    stale.touch()
    code = "from actlab.activations import cpp_op\nprint(cpp_op.extension() is not None)\n"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    finally:
        stale.unlink(missing_ok=True)
    assert out.stdout.strip() == "True", out.stderr
