"""Every activation under torch.compile(fullgraph=True), torch.jit.trace and ONNX (onnxruntime)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from actlab.activations import get_act, list_acts

NAMES = [n for n in list_acts() if n != "rrelu"]  # rrelu samples its slope while training


class AllActs(nn.Module):
    """Applies every activation to the same input; one graph covers the whole registry."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.acts = nn.ModuleList([get_act(n)() for n in names])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([act(x) for act in self.acts])


def _input() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 4, 7) * 3


def _eager(model: nn.Module, x: torch.Tensor):
    x = x.clone().requires_grad_()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), x.grad


@pytest.mark.xdist_group("compile")
def test_compile_fullgraph_traces_every_activation_with_gradients():
    # aot_eager runs dynamo (fullgraph: no graph break allowed) and AOT autograd on our Functions;
    # inductor's code generation is covered below on a few activations (it takes minutes for all).
    model = AllActs(NAMES)
    x = _input()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y, gx = _eager(compiled, x)
    y_ref, gx_ref = _eager(model, x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(gx, gx_ref)


@pytest.mark.slow
@pytest.mark.xdist_group("compile")
def test_compile_inductor_matches_eager():
    model = AllActs(["mish", "smu", "swish(learnable=True)"])
    x = _input()
    y, gx = _eager(torch.compile(model, fullgraph=True), x)
    y_ref, gx_ref = _eager(model, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.xdist_group("compile")
def test_outer_compile_traces_the_fast_formulas():
    """Inside a user's torch.compile the fused kernels' float32 formulas are traced into the graph: no scalar
    per-element std::erfc in SMU's and GELU's generated code (the reference formulas would call it)."""
    from torch._inductor.utils import run_and_get_code

    model = AllActs(["smu", "gelu"])
    x = _input()
    compiled = torch.compile(model, fullgraph=True)
    (y, gx), codes = run_and_get_code(lambda: _eager(compiled, x))
    assert codes and not any("std::erfc" in code for code in codes)
    y_ref, gx_ref = _eager(model, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)


def test_jit_trace_matches_eager():
    model = AllActs(NAMES)
    x = _input()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
        torch.testing.assert_close(traced(x * 2), model(x * 2))  # a traced graph, not a cached value


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = AllActs(NAMES).eval()
    x = _input()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    path = tmp_path / "acts.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path))
    for scale in (1.0, 10.0):
        inp = (x * scale).numpy()
        (out,) = session.run(None, {session.get_inputs()[0].name: inp})
        with torch.no_grad():
            ref = model(torch.from_numpy(inp)).numpy()
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
