"""Run actlab's compiled kernels as CUDA runs them, in Triton's interpreter on the CPU; compare with eager.

Routed to its Triton backend (``tools/triton_codegen.py``), inductor writes the same kernels for CPU tensors
as for CUDA ones, and Triton's interpreter (``TRITON_INTERPRET=1``) runs them with numpy. Each activation's
forward and backward go through the public module path with CUDA's choices (reference formulas, dynamic
shapes, parameter sums by rows, no C kernels) and are compared with the eager reference in value and in every
gradient: the GPU kernels' indexing, masks, reductions, layouts and dtype conversions, checked without a GPU.
Not checked: the GPU's own arithmetic (libdevice's functions are numpy's, no multiply-add is fused), speed.

Two gaps of Triton 3's interpreter are filled while it runs: libdevice's functions, declared for the compiler
only (they return None), are numpy's and scipy's; and a comparison's result stays boolean when broadcast (the
interpreter tags it with its operands' dtype, so a splat made floats of it and ``mask |= a != a`` failed).
Usage: python tools/triton_interpret.py [--dtypes float32,bfloat16,float16]
[--layouts contiguous,channels_last,flat,transposed,flat4000] [--formulas reference|fast] [--cases FILE.json]
[--json] SPEC...
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.special
import torch
from triton_codegen import route_inductor_to_triton

# Tolerances (the eager reference runs the same formulas through torch's CPU ops): float32 values and grad_x
# a few ulps; bfloat16 and float16 one rounding step of the output; parameter gradients sum every element.
RTOL = {torch.float32: 1e-5, torch.bfloat16: 8e-3, torch.float16: 1e-3}
PARAM_RTOL = 1e-4
SHAPE = (2, 8, 16, 16)  # 4096 elements: x enters the kernels as (4, 1024) (``fused.aligned_row``)
# x's layouts: transposed keeps its own shape in the kernels (dynamic sizes, masked loads); flat4000 is 1-D
# with 4000 = 250·16 elements, rows of 16 (but where a parameter is summed: x's own shape)
LAYOUTS = ("contiguous", "channels_last", "flat", "transposed", "flat4000")
DTYPES = ("float32", "bfloat16", "float16")

LIBDEVICE_NUMPY: dict[str, Callable] = {
    "exp": np.exp,
    "exp2": np.exp2,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "sqrt": np.sqrt,
    "rsqrt": lambda v: 1 / np.sqrt(v),
    "tanh": np.tanh,
    "erf": scipy.special.erf,
    "erfc": scipy.special.erfc,
    "pow": np.power,
    "abs": np.abs,
    "isinf": np.isinf,
    "isnan": np.isnan,
}


def _numpy_stand_in(name: str, fn: Callable | None) -> Callable:
    """libdevice's ``name`` for the interpreter: ``fn`` on the arguments' numpy data (an error if none)."""
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    def call(*args):
        if fn is None:
            raise NotImplementedError(f"libdevice.{name} has no numpy stand-in in {__file__}: add it")
        first = next(a for a in args if isinstance(a, tl.tensor))
        data = [a.handle.data if isinstance(a, tl.tensor) else getattr(a, "value", a) for a in args]
        with np.errstate(all="ignore"):  # inf and nan are results here, as on the GPU
            out = np.asarray(fn(*data))
        if out.dtype != np.bool_:
            out = out.astype(first.handle.data.dtype)
            return tl.tensor(TensorHandle(out, first.handle.dtype.scalar), first.type)
        return tl.tensor(TensorHandle(out, tl.int1), first.type.with_element_ty(tl.int1))

    return call


def fill_interpreter_gaps() -> None:
    """numpy for libdevice's functions, and booleans that stay boolean when splat (see the module's doc)."""
    import triton.language as tl
    from triton.language.extra import libdevice
    from triton.runtime import interpreter

    # numpy's overflow and invalid-value warnings from the interpreter's arithmetic: inf and nan are results
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="triton.runtime.interpreter")
    for name in dir(libdevice):
        if not name.startswith("_") and callable(getattr(libdevice, name)):
            setattr(libdevice, name, _numpy_stand_in(name, LIBDEVICE_NUMPY.get(name)))
    splat = interpreter.InterpreterBuilder.create_splat

    def create_splat(self, ret_ty, arg):
        out = splat(self, ret_ty, arg)
        if arg.data.dtype == np.bool_ and out.data.dtype != np.bool_:
            return interpreter.TensorHandle(out.data.astype(np.bool_), tl.int1)
        return out

    interpreter.InterpreterBuilder.create_splat = create_splat


def count_launches() -> list[int]:
    """A counter of the Triton kernels the interpreter runs (one entry: the count so far)."""
    from triton.runtime import interpreter

    count = [0]
    run = interpreter.GridExecutor.__call__

    def counted(self, *args, **kwargs):
        count[0] += 1
        return run(self, *args, **kwargs)

    interpreter.GridExecutor.__call__ = counted
    return count


def as_on_cuda(formulas: str) -> None:
    """actlab's compiled path with CUDA's choices for every CPU call: no C kernels, no size threshold, sums by
    rows, ``formulas`` (CUDA's default: reference)."""
    from actlab.activations import cpu_kernels, fused

    cpu_kernels.set_cpu_kernels(False)
    fused.set_fused(True, min_numel=0, formulas=formulas)
    fused.ROW_DEVICES = fused.ROW_DEVICES | {"cpu"}


def extreme_input(dtype: torch.dtype, layout: str) -> torch.Tensor:
    """A grid out to ±max of ``dtype``, ±inf, 0 and random values (σ = 4), shaped ``SHAPE`` in ``layout``."""
    info = torch.finfo(dtype)
    mags = [0.0, info.tiny, 1e-30, 1e-10, 1e-3, 0.5, 1.0, 2.0, 5.0, 9.0, 10.0, 15.0, 20.0, 30.0, 88.0, 89.0]
    mags = [m for m in [*mags, 100.0, 1e4, 1e10, 1e30, info.max / 2, info.max] if m <= info.max]
    grid = torch.tensor(mags + [-m for m in mags] + [math.inf, -math.inf], dtype=torch.float64)
    rand = torch.randn(math.prod(SHAPE) - grid.numel(), generator=torch.Generator().manual_seed(0)) * 4
    x = torch.cat([grid, rand.double()]).to(dtype).reshape(SHAPE)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":
        return x.transpose(2, 3)
    if layout == "flat4000":
        return x.flatten()[:4000].clone()
    return x.flatten() if layout == "flat" else x


def _forward_backward(module: torch.nn.Module, x: torch.Tensor, fused_on: bool) -> list[torch.Tensor]:
    from actlab.activations import fused

    with fused.use_fused(fused_on, min_numel=0):
        leaf = x.clone().requires_grad_()
        y = module(leaf)
        g = torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape).to(y.dtype)
        grads = torch.autograd.grad(y, [leaf, *module.parameters()], g)
    return [y.detach(), *grads]


def check(spec: str, dtype: torch.dtype, layout: str, launches: list[int]) -> dict:
    """``spec``'s forward and backward on Triton's interpreter against eager: a report (ok, error, launches).

    ``launches`` counts the interpreter's kernels (``count_launches``)."""
    from actlab.activations import fused, get_act

    module = get_act(spec)()
    x = extreme_input(dtype, layout)
    before = launches[0]
    report = {"spec": spec, "dtype": str(dtype).removeprefix("torch."), "layout": layout, "ok": False}
    try:
        got = _forward_backward(module, x, True)
        report["launches"] = launches[0] - before
        want = _forward_backward(module, x, False)
        names = ["y", "grad_x", *(f"grad_{n}" for n, _ in module.named_parameters())]
        for name, a, b in zip(names, got, want, strict=True):
            rtol = RTOL[dtype] if name in ("y", "grad_x") else PARAM_RTOL
            named = lambda m, n=name: f"{n}: {m}"  # noqa: E731
            torch.testing.assert_close(a, b, rtol=rtol, atol=rtol, equal_nan=True, msg=named)
    except Exception as err:  # a report per spec: one failing activation does not hide the others
        report["error"] = f"{type(err).__name__}: {err}"
        report.setdefault("launches", launches[0] - before)
        return report
    failed = fused.failures()
    if failed:  # compiled, but something fell back to eager: nothing Triton ran was compared
        report["error"] = f"fell back to eager: {failed}"
    elif report["launches"] < 2:
        report["error"] = f"only {report['launches']} Triton kernels ran (a forward and a backward expected)"
    else:
        report["ok"] = True
    return report


def _choices(valid: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list, each item one of ``valid``."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        bad = [item for item in items if item not in valid]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of {', '.join(valid)}")
        return items

    return parse


def _cases(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(spec, dtype, layout) to check: each SPEC in each of --dtypes and --layouts, then --cases' triples."""
    cases = [(s, d, lay) for s in args.specs for d in args.dtypes for lay in args.layouts]
    if args.cases:
        for spec, dtype, layout in json.loads(args.cases.read_text()):
            if dtype not in DTYPES or layout not in LAYOUTS:
                valid = f"dtype in {DTYPES}, layout in {LAYOUTS}"
                raise SystemExit(f"{args.cases}: {[spec, dtype, layout]}: {valid}")
            cases.append((spec, dtype, layout))
    if not cases:
        raise SystemExit("nothing to check: give SPECs or --cases")
    from actlab.activations import get_act

    for spec in dict.fromkeys(spec for spec, _, _ in cases):
        try:
            get_act(spec)
        except (ValueError, TypeError, KeyError) as err:
            raise SystemExit(f"{spec!r} is not an activation spec: {err}") from err
    return cases


def main() -> None:
    """Check each SPEC in Triton's interpreter; print a line (or JSON) per check, exit 1 if any fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--dtypes", type=_choices(DTYPES), default=["float32"], help=", ".join(DTYPES))
    parser.add_argument("--layouts", type=_choices(LAYOUTS), default=["contiguous"], help=", ".join(LAYOUTS))
    parser.add_argument("--formulas", choices=("reference", "fast"), default="reference")
    parser.add_argument("--cases", type=Path, help="a JSON file of [spec, dtype, layout] triples to check")
    parser.add_argument("--json", action="store_true", help="one JSON list of reports on stdout")
    args = parser.parse_args()
    os.environ["TRITON_INTERPRET"] = "1"  # read when inductor's generated modules define their kernels
    try:
        import triton  # noqa: F401
    except ImportError:
        sys.exit("triton is not importable: install the dev extra (Linux x86-64), or pip install triton")
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1  # in this process, where the interpreter is patched
    route_inductor_to_triton()
    fill_interpreter_gaps()
    launches = count_launches()
    as_on_cuda(args.formulas)
    from actlab.activations import fused

    reports = []
    for spec, dtype, layout in _cases(args):
        if fused.failures():  # one check's failure must not turn the next one eager
            fused.reset()
        reports.append(report := check(spec, getattr(torch, dtype), layout, launches))
        if not args.json:
            status = "ok" if report["ok"] else "FAIL " + report["error"][:500]
            print(f"{spec:45s} {dtype:9s} {layout:14s} {report['launches']:3d} kernels  {status}", flush=True)
    if args.json:
        print(json.dumps(reports))
    sys.exit(0 if all(r["ok"] for r in reports) else 1)


if __name__ == "__main__":
    main()
