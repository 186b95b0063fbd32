"""Swap the activations of any existing model: modules in place, functional calls through torch.fx."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from .modules import KernelActivation
from .registry import get_act

# Functional spellings of each module type that swap_acts can also find in a traced graph.
_FUNCTIONAL: dict[type[nn.Module], tuple[set[Callable], set[str]]] = {
    nn.ReLU: ({F.relu, torch.relu, torch.relu_, F.relu_}, {"relu", "relu_"}),
    nn.GELU: ({F.gelu}, set()),
    nn.SiLU: ({F.silu}, set()),
    nn.ELU: ({F.elu, F.elu_}, set()),
    nn.LeakyReLU: ({F.leaky_relu, F.leaky_relu_}, set()),
    nn.Mish: ({F.mish}, set()),
}


class _ActLeafTracer(fx.Tracer):
    """Keeps activation modules (torch's and actlab's) as single calls instead of tracing into them."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, KernelActivation) or super().is_leaf_module(m, module_qualified_name)


def _swap_modules(model: nn.Module, factory, replace: tuple[type[nn.Module], ...]) -> int:
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, replace):
                setattr(parent, name, factory())  # works for Sequential/ModuleList/ModuleDict keys too
                count += 1
    return count


def _swap_functional(model: nn.Module, factory, replace: tuple[type[nn.Module], ...]) -> int:
    functions: set[Callable] = set()
    methods: set[str] = set()
    for cls in replace:
        f, m = _FUNCTIONAL.get(cls, (set(), set()))
        functions |= f
        methods |= m
    if not functions and not methods:
        return 0
    try:
        graph = _ActLeafTracer().trace(model)
    except Exception:  # not traceable (data-dependent control flow...): modules only
        return 0
    count = 0
    for node in list(graph.nodes):
        hit = (node.op == "call_function" and node.target in functions) or (
            node.op == "call_method" and node.target in methods
        )
        if not hit:
            continue
        name = f"swapped_act_{count}"
        while hasattr(model, name):
            name += "_"
        model.add_module(name, factory())
        with graph.inserting_after(node):
            new = graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        count += 1
    if count:
        graph.lint()
        traced = fx.GraphModule(model, graph)
        model.forward = traced.forward  # the model keeps its identity, parameters and new submodules
    return count


def swap_acts(
    model: nn.Module,
    act,
    replace: tuple[type[nn.Module], ...] = (nn.ReLU,),
) -> int:
    """Replace every activation of the ``replace`` types in ``model`` with a fresh ``act``; return how many.

    Modules (nested, in Sequential, in-place ReLUs) are replaced in place. Functional calls such as
    ``F.relu(x)`` or ``x.relu()`` are found by tracing the model with torch.fx when it is traceable; the
    model's ``forward`` is then the rewritten graph. Raises ``ValueError`` when nothing matched.
    """
    factory = get_act(act)
    replace = tuple(replace)
    count = _swap_modules(model, factory, replace) + _swap_functional(model, factory, replace)
    if count == 0:
        kinds = ", ".join(c.__name__ for c in replace)
        raise ValueError(
            f"swap_acts found no {kinds} (module or traceable functional call) in {type(model).__name__}"
        )
    return count


__all__ = ["swap_acts"]
