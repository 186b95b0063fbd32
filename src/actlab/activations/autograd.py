"""From pure math to a safe, memory-lean autograd op.

``Kernel`` pairs a forward with its analytic backward (both from ``functional``). ``evaluate`` and
``evaluate_backward`` add what the pure math leaves out: reduced precisions are computed in float32,
infinite inputs get the function's true limits, and parameter gradients are reduced to the
parameter's shape. ``Kernel.apply`` runs a custom ``autograd.Function`` that saves only the input and
the parameters (one tensor per activation, as ReLU) and recomputes in backward; when no gradient is
needed, or while tracing or exporting, it runs the plain ops instead. Large tensors take the same
two computations compiled into fused kernels (``fused.py``), and float32 CPU tensors of any size the
hand-written C kernels (``cpu_kernels.py``) where one exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from . import fused as _fused

Forward = Callable[..., Tensor]
Backward = Callable[..., tuple[Tensor, ...]]

REDUCED = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed in float32 inside; float32/float64 as they are."""
    return torch.float32 if dtype in REDUCED else dtype


def _as_compute(x: Tensor, params: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    dtype = compute_dtype(x.dtype)
    return x.to(dtype), tuple(p.to(dtype) for p in params)


def limit_probe(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The four points ``_limits`` probes: -max, -max/2, max/2, max of ``dtype``, as a (4, 1) column.

    A column, because inductor inlines a 1-D constant of up to 8 elements into the generated code
    (``GraphLowering.can_inline_constant``), where its values then feed the value-range analysis that made
    Serf's compile slow (see ``_limits``); a 2-D constant stays a buffer, read like any input. That is what
    a user's own ``torch.compile`` sees, where the probe is built in the graph (404 s -> 59 s for a model
    with Serf, cold)."""
    big = torch.finfo(dtype).max
    return torch.tensor([[-big], [-big / 2], [big / 2], [big]], dtype=dtype, device=device)


def _limits(
    forward: Forward, params: tuple[Tensor, ...], like: Tensor, probe: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """f(-inf) and f(+inf), per parameter broadcast shape.

    The function is probed at ±max and ±max/2 of the compute dtype: where both agree the function has
    saturated and that is the limit; where they differ it keeps growing and the limit is ±inf. A compiled
    caller passes ``probe`` (``limit_probe``) in as an input. Values inductor knows (a 1-D probe built in the
    graph, which it inlines) feed its sympy value ranges, which then grow through the whole formula: Serf's
    limits kernel took ~250 s to compile, ~30 s with the probe an input. Where the probe is built in the graph
    (a user's own ``torch.compile``), ``limit_probe``'s column shape keeps it a buffer.
    """
    if probe is None:
        probe = limit_probe(like.dtype, like.device)
    ndim = max([p.dim() for p in params] + [0])  # a list, not max(generator, default=): dynamo traces it
    y = forward(probe.reshape(4, *([1] * ndim)), *params)
    far, half = y[[0, 3]], y[[1, 2]]
    inf = torch.where(far > half, float("inf"), float("-inf"))
    lim = torch.where(far == half, far, inf)
    return lim[0], lim[1]


def evaluate(forward: Forward, x: Tensor, params: tuple[Tensor, ...]) -> Tensor:
    """The activation's value with the safety net: float32 inside for reduced precisions, true ±inf limits."""
    xc, pc = _as_compute(x, params)
    big = torch.finfo(xc.dtype).max
    y = forward(torch.clamp(xc, -big, big), *pc)  # clamp keeps NaN, maps ±inf to ±max
    lim_neg, lim_pos = _limits(forward, pc, xc)
    y = torch.where(xc == float("inf"), lim_pos, torch.where(xc == float("-inf"), lim_neg, y))
    return y.to(x.dtype)


def evaluate_backward(
    backward: Backward,
    g: Tensor,
    x: Tensor,
    params: tuple[Tensor, ...],
    needs: tuple[bool, ...],
    clamp: bool = True,
    row_sums: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients for (x, *params); at ±inf inputs the derivative's limit is its value at ±max (``clamp=False``
    for a ``backward`` that already gives finite limits at ±inf). ``row_sums``: x is 2-D and scalar parameters
    have shape (), so their gradients are summed per row, then in total (``fused.by_rows``)."""
    xc, pc = _as_compute(x, params)
    if clamp:
        big = torch.finfo(xc.dtype).max
        xc = torch.clamp(xc, -big, big)
    grads = backward(g.to(xc.dtype), xc, *pc)
    totals = _row_totals(grads, params, needs) if row_sums else {}
    out: list[Tensor | None] = [grads[0].to(x.dtype) if needs[0] else None]
    for i, (grad, p, need) in enumerate(zip(grads[1:], params, needs[1:], strict=True), 1):
        if i in totals:
            out.append(totals[i])
        else:
            out.append(grad.sum_to_size(p.shape).to(p.dtype) if need else None)
    return tuple(out)


def _row_totals(
    grads: tuple[Tensor, ...], params: tuple[Tensor, ...], needs: tuple[bool, ...]
) -> dict[int, Tensor]:
    """The gradients of scalar parameters whose terms are 2-D (``fused.by_rows``), by index in ``grads``:
    each row summed in float64 (as the C kernels sum blocks), then the rows of all of them in one reduction
    (on the GPU one kernel launch, not one per parameter)."""
    scalar = [i for i, p in enumerate(params, 1) if needs[i] and p.dim() == 0 and grads[i].dim() == 2]
    if not scalar:
        return {}
    sums = torch.stack([grads[i].double().sum(1) for i in scalar]).sum(1)
    dtypes = {params[i - 1].dtype for i in scalar}
    if len(dtypes) == 1:  # one cast: the slices below are views, no kernel each
        sums = sums.to(dtypes.pop())
    return {i: sums[k].to(params[i - 1].dtype) for k, i in enumerate(scalar)}


@dataclass(frozen=True)
class Kernel:
    """One activation's forward and analytic backward, and the autograd op built from them."""

    name: str
    forward: Forward
    backward: Backward
    # the parameters are coefficient vectors the formulas index (PAU's), not values broadcast against x
    coefficients: bool = False
    function: type[torch.autograd.Function] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "function", _make_function(self))
        _fused.fused_kernel(self)  # built now: dynamo cannot build one inside a user's torch.compile

    def __call__(self, x: Tensor, *params: Tensor) -> Tensor:
        """Apply to ``x``: the memory-lean autograd op when a gradient is needed, plain ops otherwise;
        fused compiled kernels for both where ``fused`` finds them worth it."""
        y = _fused.c_call(self, x, params)  # the common case on the CPU, checked first and once
        if y is not None:
            return y
        plain = _plain_path(x, params)
        y = _fused.fused_call(self, x, params, needs_grad=not plain)
        if y is not None:
            return y
        if plain:
            return evaluate(self.forward, x, params)
        return self.function.apply(x, *params)


def _plain_path(x: Tensor, params: tuple[Tensor, ...]) -> bool:
    if torch.jit.is_tracing() or _fused.in_onnx_export() or torch.compiler.is_exporting():
        return True
    if not torch.is_grad_enabled():
        return True
    return not (x.requires_grad or any(p.requires_grad for p in params))


def _make_function(kernel: Kernel) -> type[torch.autograd.Function]:
    forward, backward = kernel.forward, kernel.backward

    def fn_forward(ctx, x: Tensor, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        return evaluate(forward, x, params)

    def fn_backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        return evaluate_backward(backward, g, x, tuple(params), tuple(ctx.needs_input_grad))

    return _fused.autograd_op(kernel.name, "Function", fn_forward, fn_backward)
