"""tools/triton_codegen.py: inductor's Triton kernels for the compiled backward, generated on the CPU.

Where Triton is importable (Linux x86-64: the dev extra installs it) this checks what the GPU will run:
grad_x and the parameters' row sums come out of one kernel that reads x and g once (``fused.by_rows``),
and every parameter's total out of one more launch.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "triton_codegen.py"
HAS_TRITON = importlib.util.find_spec("triton") is not None
LEARNABLE = ["swish(learnable=True)", "pau", "eis(learnable=True)"]  # one, ten and five parameters


def _tool_module():
    spec = importlib.util.spec_from_file_location("triton_codegen", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_triton_is_named_with_how_to_install_it(monkeypatch):
    tool = _tool_module()
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton raises ImportError
    monkeypatch.setattr(sys, "argv", ["triton_codegen.py", "silu"])
    with pytest.raises(SystemExit, match="triton is not importable: pip install"):
        tool.main()


def test_summarize_reads_inductors_kernel_metadata_and_counts_launches():
    signature = (
        "{'in_ptr0': '*fp32', 'out_ptr0': '*fp64', 'xnumel': 'i32', 'r0_numel': 'i32', 'XBLOCK': 'constexpr'}"
    )
    code = f"@triton_heuristics.persistent_reduction(\n    triton_meta={{'signature': {signature}, "
    code += "'configs': [{(0,): [['tt.divisibility', 16]], (1,): [['tt.divisibility', 16]]}]},\n"
    code += (
        "    inductor_meta={'kernel_name': 'triton_per_fused_clamp_sum_0', 'num_load': 3, 'num_store': 2, "
    )
    code += "'num_reduction': 1, 'autotune_hints': set()}\n)\n@triton.jit\n"
    code += "def triton_per_fused_clamp_sum_0(in_ptr0, out_ptr0, xnumel, r0_numel, XBLOCK : tl.constexpr):\n"
    code += "    r0_numel = 1024\n    xoffset = tl.program_id(0) * XBLOCK\n\n\n"
    code += "triton_per_fused_clamp_sum_0.run(buf0, buf1)\n" * 2  # launched twice in the graph's call
    (line,) = _tool_module().summarize(code)
    assert line.split() == [
        "triton_per_fused_clamp_sum_0",
        "launches=2",
        "loads=3",
        "stores=2",
        "reductions=1",
        "sizes=xnumel:?,r0_numel:1024",  # the rows' count unknown, their length a number
    ]
    hinted = code.replace("(1,): [['tt", "(2,): [['tt").replace("    r0_numel = 1024\n", "")
    assert _tool_module().size_hints(hinted) == {"triton_per_fused_clamp_sum_0": "xnumel:16k,r0_numel:?"}


def _kernels(*args: str, shape: str = "64,64,32,32") -> dict[str, list[tuple[str, int, int, int, str]]]:
    """Per activation, its compiled backward's (or ``--which``'s) kernels: (name, launches, loads,
    reductions, sizes)."""
    cmd = [sys.executable, str(TOOL), "--shape", shape, *args]  # 64·64·32·32: big enough to split a sum
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    kernels: dict[str, list[tuple[str, int, int, int, str]]] = {}
    for line in out.splitlines():
        if line.startswith("== "):
            spec = line[3:].split(" backward")[0].split(" forward")[0]
            kernels[spec] = []
        else:
            name, *counts = line.split()
            launches, loads, _, reductions = (int(c.split("=")[1]) for c in counts[:4])
            kernels[spec].append((name, launches, loads, reductions, counts[4].removeprefix("sizes=")))
    return kernels


def _reading_x_and_g(kernels: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
    """The kernels that clamp x (evaluate_backward) and load at least x and g (a second stage's kernel may
    keep "clamp" in its name but loads only the first stage's sums)."""
    return [k for k in kernels if "clamp" in k[0] and k[2] >= 2]


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (dev extra, Linux x86-64)")
def test_grad_x_and_the_parameter_sums_share_one_kernel_and_two_launches_in_all():
    """The GPU's backward of a learnable activation: one kernel reads x and g and sums rows, one sums the
    rows of every parameter (PAU's ten, EIS's five): two launches."""
    found = _kernels("swish(learnable=True)", "pau", "eis(learnable=True)", "tanhsoft(learnable=True)")
    for spec, kernels in found.items():
        assert [k[3] for k in _reading_x_and_g(kernels)] != [0], spec
        assert len(_reading_x_and_g(kernels)) == 1, (spec, kernels)
        assert sum(k[1] for k in kernels) == 2, (spec, kernels)
        # rows of 1024 (``fused.aligned_row``): loads masked by row only, and one pass over x and g
        assert _reading_x_and_g(kernels)[0][4] == "xnumel:?,r0_numel:1024", (spec, kernels)
    # what by_rows and the aligned rows replace: a pointwise kernel whose loads are masked one by one (x's
    # size unknown), then a split sum that reads x and g again
    (plain,) = _kernels("--no-rows", "--no-align", "swish(learnable=True)").values()
    assert sorted(k[3] for k in _reading_x_and_g(plain)) == [0, 1]
    assert [k[4] for k in _reading_x_and_g(plain) if k[3] == 0] == ["xnumel:?"]


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (dev extra, Linux x86-64)")
def test_the_forwards_size_is_known_to_triton_as_a_multiple_of_16():
    """The GPU vectorises a load only where its mask is constant over a vector: where the size is a multiple
    of 16 that Triton knows of (``fused.aligned_row``). In x's own dynamic sizes every load was masked (the
    backward's kernels: the test above)."""
    for spec, kernels in _kernels("--which", "forward", "silu", "swish(learnable=True)").items():
        assert [k[4] for k in kernels] == ["xnumel:16k"], (spec, kernels)
