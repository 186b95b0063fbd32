"""Inductor's Triton kernels for actlab's compiled forward and backward, generated without a GPU.

Inductor decides which operations share a kernel, and so what each kernel reads and writes, before a GPU is
involved. Its Triton backend for the CPU (``cpu_backend="triton"``), told to decide as for a GPU of
``--multiprocessors`` SMs (``route_inductor_to_triton``), writes the code it writes for CUDA, and fails only
afterwards, when a stock Triton has no CPU target to compile for. This prints each kernel's name, launches,
loads, stores and reductions per activation, as on CUDA (reference formulas, dynamic shapes, parameter sums
by rows), so a fusion can be checked on a CPU machine (docs/performance.md); ``tools/triton_interpret.py``
runs the same code in Triton's interpreter.

It compiles the functions the compiled path compiles, on the views ``FusedKernel`` makes before the call
(x as rows of 1024 or 16: ``fused.aligned_row``; ``--no-align``: x's own shape), and prints what Triton knows
of each kernel's sizes (``size_hints``).
Needs Triton importable: ``pip install --no-deps --target /tmp/triton triton`` and ``PYTHONPATH=/tmp/triton``.
Usage: python tools/triton_codegen.py [--which backward|forward|limits] [--shape 256,64,64,16]
[--dtype float32|bfloat16|float16] [--static] [--no-rows] [--no-align] [--dump DIR] [--multiprocessors 132]
SPEC...
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import torch

from actlab.activations import fused, get_act
from actlab.activations.modules import KERNELS

KERNEL_META = re.compile(
    r"'kernel_name': '(\w+)'.*?'num_load': (\d+), 'num_store': (\d+), 'num_reduction': (\d+)", re.S
)
# a kernel's definition: its triton_meta (argument names in order, the arguments hinted divisible by 16), then
# its body, where a size inductor knows is a number (``xnumel = 1024``)
KERNEL_DEF = re.compile(
    r"triton_meta=\{'signature': \{(.*?)\}.*?'configs': \[\{(.*?)\}\]\}.*?\ndef (\w+)\(", re.S
)


def size_hints(code: str) -> dict[str, str]:
    """Per kernel, what Triton knows of each size (``xnumel``, ``r0_numel``...): its value where it is a
    number, "16k" where hinted divisible by 16, "?" where neither: then every load is masked element by
    element and cannot be vectorised (a reduction's row count is harmless where its row length is a
    number)."""
    hints: dict[str, str] = {}
    for match in KERNEL_DEF.finditer(code):
        args = re.findall(r"'(\w+)':", match[1])
        divisible = {int(i) for i in re.findall(r"\((\d+),\)", match[2])}
        body = code[match.end() :].split("\n\n\n")[0]
        sizes = []
        for i, arg in enumerate(args):
            if arg.endswith("numel"):
                number = re.search(rf"^\s+{arg} = (\d+)$", body, re.M)
                sizes.append(f"{arg}:{number[1] if number else '16k' if i in divisible else '?'}")
        hints[match[3]] = ",".join(sizes)
    return hints


def summarize(code: str) -> list[str]:
    """One line per Triton kernel in inductor's generated module: name, launches per call, loads, stores,
    reductions (a kernel is defined once and may be launched more often, e.g. once per parameter) and sizes
    (``size_hints``)."""
    hints = size_hints(code)
    return [
        f"{m[1][:64]:64s} launches={code.count(m[1] + '.run(')} loads={m[2]} stores={m[3]} reductions={m[4]} "
        f"sizes={hints.get(m[1], '')}"
        for m in KERNEL_META.finditer(code)
    ]


GPU_MULTIPROCESSORS = 132  # an H100's (SXM) or H200's streaming multiprocessors: inductor's split heuristics


def route_inductor_to_triton(multiprocessors: int = GPU_MULTIPROCESSORS) -> None:
    """Make inductor write Triton code for CPU tensors and decide as it does for a GPU's.

    The torch internals this needs: ``cpu_backend``; the backend hash, which asks for an active GPU driver;
    ``is_cpu``, which picks the CPU's heuristics (a reused exp or log realized into a buffer of its own, so a
    parameter's log took a kernel; no loop reordering in fusion); and the device's multiprocessor count, by
    which inductor splits reductions (the CPU's is its core count). One choice stays the CPU's: ``torch.cat``
    lowers to a kernel per input there (pointwise on a GPU)."""
    import torch._inductor.config as inductor_config
    import torch._inductor.graph as inductor_graph
    import torch._inductor.ir as inductor_ir
    import torch._inductor.scheduler as inductor_scheduler
    import torch._inductor.utils as inductor_utils
    import torch.utils._triton as torch_triton
    from torch._inductor.runtime.hints import DeviceProperties

    inductor_config.cpu_backend = "triton"
    torch_triton.triton_hash_with_backend = lambda: "no-gpu-codegen-only"
    inductor_ir.is_cpu = lambda node: False
    inductor_scheduler.BaseSchedulerNode.is_cpu = lambda self: False
    # a GPU's inputs are taken as 16-byte aligned where the example is (checked at run time); a CPU's never
    inductor_graph.should_assume_input_aligned = inductor_utils.tensor_is_aligned
    create = DeviceProperties.create  # cached per device

    def as_gpu(cls, device):
        return create(device)._replace(multi_processor_count=multiprocessors, warp_size=32)

    DeviceProperties.create = classmethod(as_gpu)
    # said by each generated module: true of a stock Triton, and why this tool generates code only
    warnings.filterwarnings("ignore", message="Could not find an active CPU backend")


def _capture_generated_code(multiprocessors: int) -> list[str]:
    """Route inductor to Triton on the CPU and keep each graph's generated module."""
    import torch._inductor.graph as inductor_graph

    route_inductor_to_triton(multiprocessors)
    captured: list[str] = []
    codegen = inductor_graph.GraphLowering.codegen

    def keep(self, *args, **kwargs):
        result = codegen(self, *args, **kwargs)
        captured.append(getattr(result[0], "value", str(result[0])))
        return result

    inductor_graph.GraphLowering.codegen = keep
    return captured


def generate(
    spec: str, which: str, shape: tuple[int, ...], dtype: torch.dtype, dynamic: bool, captured: list[str]
) -> list[str]:
    """The generated modules of ``spec``'s compiled ``which`` (forward, backward, limits), CUDA's formulas."""
    module = get_act(spec)()
    name = getattr(module, "kernel_name", None)
    if name not in KERNELS:
        raise SystemExit(f"{spec!r} has no actlab kernel (torch's own module); kernels: {', '.join(KERNELS)}")
    fk = fused.fused_kernel(KERNELS[name])
    x = torch.randn(shape).to(dtype)
    params = tuple(module._broadcast(getattr(module, n), x).detach() for n in module.param_names)
    learnable = tuple(getattr(module, n).requires_grad for n in module.param_names)
    cuda = torch.device("cuda")  # picks the formulas only; the tensors stay on the CPU
    needs = (True, *learnable)
    # the view FusedKernel makes before the call where it applies (``fused.aligned_row``)
    row = fused.aligned_row(
        fk.kernel, x, params, which == "backward" and fused._sums_by_rows(fk.kernel, x, params, needs)
    )
    if row is not None and which != "limits":
        which, x, grad = (
            f"{which}_aligned",
            fused.as_aligned(x, x, row),
            fused.as_aligned(torch.randn_like(x), x, row),
        )
    else:
        grad = torch.randn_like(x)
    python = fk._python(which, cuda)
    if which.startswith("backward"):
        args = (needs, grad, x, *params)
    elif which.startswith("forward"):
        args = (x, *fk._python("limits", cuda)(x, None, *params), *params)
    else:  # as ``FusedKernel.limits`` calls it: only x's dtype counts
        args = (fused._empty_like(x.dtype, x.device), fused._probe(x.dtype, x.device), *params)
    captured.clear()
    torch._dynamo.reset()
    try:
        torch.compile(python, dynamic=dynamic or None, fullgraph=True)(*args)
    except Exception as err:  # expected once the code is written: no Triton target for the CPU
        if not captured:
            raise SystemExit(f"{spec}: inductor failed before generating code: {err}") from err
    return list(captured)


def main() -> None:
    """Print (and with --dump write) the Triton kernels of each activation's compiled forward or backward."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--which", choices=("backward", "forward", "limits"), default="backward")
    parser.add_argument("--shape", default="256,64,64,16", help="comma-separated input shape")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--static", action="store_true", help="static shapes (ACTLAB_FUSED_DYNAMIC=0)")
    parser.add_argument("--no-rows", action="store_true", help="parameter sums over all of x (no by_rows)")
    parser.add_argument("--no-align", action="store_true", help="x in its own shape (no fused.aligned_row)")
    parser.add_argument("--dump", type=Path, help="write each generated module into this folder")
    parser.add_argument(
        "--multiprocessors", type=int, default=GPU_MULTIPROCESSORS, help="the GPU's SMs (H100, H200: 132)"
    )
    args = parser.parse_args()
    try:
        import triton  # noqa: F401
    except ImportError:
        sys.exit(
            "triton is not importable: pip install --no-deps --target /tmp/triton triton, then run with "
            "PYTHONPATH=/tmp/triton (the CPU build of torch has no Triton)"
        )
    shape = tuple(int(s) for s in args.shape.split(","))
    captured = _capture_generated_code(args.multiprocessors)
    # CUDA's choices, or one of them changed; by_rows and aligned_row on the CPU too, as on CUDA
    fused.set_fused(
        formulas="reference", dynamic=not args.static, rows=not args.no_rows, align=not args.no_align
    )
    fused.ROW_DEVICES = fused.ROW_DEVICES | {"cpu"}
    for spec in args.specs:
        codes = generate(spec, args.which, shape, getattr(torch, args.dtype), not args.static, captured)
        flags = ", static" * args.static + ", no rows" * args.no_rows + ", no aligned rows" * args.no_align
        print(f"== {spec} {args.which}, shape {shape} {args.dtype}{flags}")
        for i, code in enumerate(codes):
            print("\n".join("   " + line for line in summarize(code)))
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                stem = re.sub(r"\W+", "_", spec).strip("_")
                (args.dump / f"{stem}_{args.which}_{i}.py").write_text(code)


if __name__ == "__main__":
    main()
