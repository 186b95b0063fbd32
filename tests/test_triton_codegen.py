"""tools/triton_codegen.py: inductor's Triton kernels for the compiled backward, generated on the CPU.

Where Triton is importable (Linux x86-64: the dev extra installs it) this checks what the GPU will run:
grad_x and the parameters' row sums come out of one kernel that reads x and g once (``fused.by_rows``).
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


def test_summarize_reads_inductors_kernel_metadata():
    meta = "inductor_meta={'kernel_name': 'triton_per_fused_clamp_sum_0', 'num_load': 3, 'num_store': 2, "
    code = meta + "'num_reduction': 1, 'autotune_hints': set()}\n"
    (line,) = _tool_module().summarize(code)
    assert line.split() == ["triton_per_fused_clamp_sum_0", "loads=3", "stores=2", "reductions=1"]


def _kernels_reading_x(*args: str) -> dict[str, list[str]]:
    """Per activation, the generated kernels that read x and g: each clamps x (evaluate_backward) and loads
    both (a second stage's kernel keeps "clamp" in its name but loads only the first stage's sums)."""
    cmd = [
        sys.executable,
        str(TOOL),
        "--shape",
        "64,64,32,32",
        *args,
    ]  # big enough for inductor to split a sum
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    kernels: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("== "):
            spec = line[3:].split(" backward")[0]
            kernels[spec] = []
        elif "clamp" in line.split()[0] and int(line.split()[1].removeprefix("loads=")) >= 2:
            kernels[spec].append(line)
    return kernels


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (dev extra, Linux x86-64)")
def test_grad_x_and_the_parameter_sums_share_one_kernel():
    (by_rows,) = _kernels_reading_x("swish(learnable=True)").values()
    assert [line.split()[-1] for line in by_rows] == ["reductions=1"]
    # what by_rows replaces: a pointwise kernel, then a split sum that reads x and g again
    (plain,) = _kernels_reading_x("--no-rows", "swish(learnable=True)").values()
    assert [line.split()[-1] for line in plain] == ["reductions=0", "reductions=1"]
