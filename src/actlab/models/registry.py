"""Find models by name: ``get_model("vgg16_bn", num_classes=10, act="mish")``.

A dict, a ``register_model`` decorator, ``get_model`` and ``list_models`` (torchvision's registry, timm's
names). Registration happens when ``actlab.models`` imports each architecture module.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .layers import ActSpec

Builder = Callable[..., nn.Module]

_MODELS: dict[str, Builder] = {}
_REQUIRED = ("num_classes", "in_channels", "act")  # every builder's common signature


def register_model(fn: Builder | None = None, *, name: str | None = None):
    """Register a builder under its function name (or ``name``); usable as ``@register_model``."""

    def add(builder: Builder) -> Builder:
        key = name or builder.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        missing = [p for p in _REQUIRED if p not in inspect.signature(builder).parameters]
        if missing:
            raise ValueError(
                f"builder {key!r} must take {', '.join(_REQUIRED)}; missing {', '.join(missing)}"
            )
        _MODELS[key] = builder
        return builder

    return add if fn is None else add(fn)


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def _builder(name: str) -> Builder:
    builder = _MODELS.get(name)
    if builder is None:
        names = list_models()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Known: {', '.join(names)}")
    return builder


def _arch_keywords(builder: Builder) -> list[str]:
    params = inspect.signature(builder).parameters
    return [n for n, p in params.items() if n not in _REQUIRED and p.kind is not p.VAR_KEYWORD]


def get_model(
    name: str, num_classes: int, in_channels: int = 3, act: ActSpec = "relu", **kwargs: Any
) -> nn.Module:
    """Build the registered model ``name``; unknown names and keywords raise ``ValueError``.

    Args:
        name: a name from ``list_models()``.
        num_classes: size of the output layer.
        in_channels: channels of the input images (1 for MNIST, 3 for CIFAR).
        act: activation name, ``"name(key=value)"``, module class, instance or factory; resolved once
            and built fresh at every place the architecture has an activation.
        **kwargs: architecture keywords of that builder (e.g. ``width``, ``sa``).
    """
    builder = _builder(name)
    valid = _arch_keywords(builder)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} has no keyword {', '.join(map(repr, unknown))}; "
            f"valid keywords: {', '.join(valid) or '(none)'}"
        )
    return builder(num_classes=num_classes, in_channels=in_channels, act=act, **kwargs)
