"""actlab: exact, fast, memory-lean smooth activations for PyTorch, and a lab that tests if they beat ReLU.

Attributes load lazily (PEP 562) so that ``actlab.results`` and ``actlab.analysis`` never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "list_acts": "actlab.activations",
    "get_act": "actlab.activations",
    "register_act": "actlab.activations",
    "swap_acts": "actlab.activations",
    "act_info": "actlab.activations",
    "list_models": "actlab.models",
    "get_model": "actlab.models",
    "register_model": "actlab.models",
    "list_datasets": "actlab.data",
    "load_dataset": "actlab.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'actlab' has no attribute {name!r}")
