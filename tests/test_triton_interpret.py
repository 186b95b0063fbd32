"""tools/triton_interpret.py: inductor's Triton kernels for CUDA, run by Triton's interpreter on a CPU.

Every actlab kernel's compiled forward and backward, with CUDA's choices (reference formulas, dynamic shapes,
parameter sums by rows), equals the eager reference in value and gradient on extreme inputs: float32 for
every kernel, bfloat16 for one, channels_last and flat inputs for the row sums' views. The tool
runs in one subprocess, for all cases (it reroutes inductor and patches the interpreter, process-wide).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from actlab.activations import fused, get_act
from actlab.activations.modules import KERNELS
from test_fused import SPECS

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "triton_interpret.py"
HAS_TRITON = importlib.util.find_spec("triton") is not None

# each kernel once, with its learnable parameters where it has any (softplus: the one with other parameters)
EVERY_KERNEL = [spec for spec in SPECS if spec != "softplus"]
PER_CHANNEL = ["swish(learnable=True, num_parameters=8)"]  # summed per channel, not by rows
ROWS = "swish(learnable=True)"  # a scalar parameter's sums by rows, in each layout
CASES = [  # (spec, dtype, layout); more in the tool's command line (docs/performance.md)
    *((spec, "float32", "contiguous") for spec in EVERY_KERNEL + PER_CHANNEL),
    (ROWS, "bfloat16", "contiguous"),
    *((ROWS, "float32", layout) for layout in ["channels_last", "flat"]),
    ("silu", "float32", "flat4000"),  # rows of 16 forward and backward (per channel: x's own shape)
]

needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (dev extra, Linux x86-64)")


def _tool_module():
    sys.path.insert(0, str(TOOL.parent))  # the tool imports triton_codegen, its neighbour
    try:
        spec = importlib.util.spec_from_file_location("triton_interpret", TOOL)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(TOOL.parent))
    return module


def _reports() -> dict[tuple[str, str, str], dict]:
    """Every case's report, from one subprocess (torch's and dynamo's imports once, compiles shared)."""
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases.json"
        cases.write_text(json.dumps(CASES))
        cmd = [sys.executable, str(TOOL), "--json", "--cases", str(cases)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.stdout.strip(), f"no report (rc {done.returncode}): {done.stderr[-3000:]}"
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    found = {(r["spec"], r["dtype"], r["layout"]): r for r in listed}
    assert (done.returncode == 0) == all(r["ok"] for r in found.values())
    return found


def test_every_kernel_is_checked():
    assert {get_act(spec)().kernel_name for spec in EVERY_KERNEL} == set(KERNELS)


@needs_triton
@pytest.mark.slow
def test_cuda_kernels_equal_eager_in_the_interpreter():
    """One test for all cases: one subprocess, where a test per case would run it in each xdist worker."""
    reports = _reports()
    assert sorted(reports) == sorted(CASES)
    failed = [f"{case}: {r['error']}" for case, r in reports.items() if not r["ok"] or r["launches"] < 2]
    assert not failed, "\n".join(failed)


def test_a_check_that_ran_no_triton_kernel_fails(monkeypatch):
    """Where no Triton kernel ran (here: every call eager), the check fails, however equal the values."""
    tool = _tool_module()
    monkeypatch.setattr(fused, "fused_call", lambda *args, **kwargs: None)
    report = tool.check("mish", torch.float32, "contiguous", launches=[0])
    assert not report["ok"]
    assert report["error"] == "only 0 Triton kernels ran (a forward and a backward expected)"


def test_a_fallback_to_eager_fails_the_check(monkeypatch):
    tool = _tool_module()
    monkeypatch.setattr(fused, "failures", lambda: {("mish", "cpu"): "InterpreterError: ..."})
    report = tool.check("mish", torch.float32, "contiguous", launches=[0])
    assert not report["ok"] and report["error"].startswith("fell back to eager: {('mish', 'cpu')")


def test_extreme_inputs_in_each_layout():
    tool = _tool_module()
    x = tool.extreme_input(torch.bfloat16, "contiguous")
    assert x.shape == tool.SHAPE and torch.isinf(x).sum() == 2 and x.abs().max() == torch.inf
    assert torch.finfo(torch.bfloat16).max in x
    assert tool.extreme_input(torch.float32, "channels_last").is_contiguous(memory_format=torch.channels_last)
    assert tool.extreme_input(torch.float16, "flat").shape == (4096,)
    transposed = tool.extreme_input(torch.float32, "transposed")
    assert not transposed.is_contiguous() and not transposed.is_contiguous(memory_format=torch.channels_last)
    assert tool.extreme_input(torch.float32, "flat4000").shape == (4000,)


def test_layout_and_dtype_lists_are_validated():
    tool = _tool_module()
    parse = tool._choices(tool.LAYOUTS)
    assert parse("flat, channels_last") == ["flat", "channels_last"]
    with pytest.raises(Exception, match="'strided': give a comma-separated list of contiguous, channels_"):
        parse("strided")


@needs_triton
def test_libdevice_stand_ins_compute_with_numpy_and_name_what_is_missing():
    import numpy as np
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    tool = _tool_module()
    data = np.array([0.0, 1.0, 30.0, np.inf], dtype=np.float32)
    x = tl.tensor(TensorHandle(data, tl.float32), tl.block_type(tl.float32, [4]))
    out = tool._numpy_stand_in("erfc", tool.LIBDEVICE_NUMPY["erfc"])(x)
    assert out.handle.data.dtype == np.float32 and out.type == x.type
    np.testing.assert_allclose(out.handle.data, [1.0, 0.1572992, 0.0, 0.0], rtol=1e-6, atol=0)
    isinf = tool._numpy_stand_in("isinf", np.isinf)(x)
    assert isinf.handle.data.dtype == np.bool_ and isinf.type.scalar == tl.int1
    with pytest.raises(NotImplementedError, match=r"libdevice\.j0 has no numpy stand-in"):
        tool._numpy_stand_in("j0", None)(x)


def test_cases_come_from_specs_and_a_json_file_and_a_bad_spec_is_named(tmp_path):
    tool = _tool_module()
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([["pau", "bfloat16", "flat"]]))
    args = argparse.Namespace(specs=["mish"], dtypes=["float32"], layouts=["contiguous", "flat"], cases=cases)
    assert tool._cases(args) == [
        ("mish", "float32", "contiguous"),
        ("mish", "float32", "flat"),
        ("pau", "bfloat16", "flat"),
    ]
    args.specs, args.cases = ["smu(mu=)"], None
    with pytest.raises(SystemExit, match=r"'smu\(mu=\)' is not an activation spec"):
        tool._cases(args)
    cases.write_text(json.dumps([["pau", "float64", "flat"]]))
    args.specs, args.cases = [], cases
    with pytest.raises(SystemExit, match="float64"):
        tool._cases(args)
