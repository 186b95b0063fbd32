"""`build_optimizer(cfg, model)`: the optimizer named in the config, with weight decay on the right tensors.

Decay goes on conv/linear weights only; norms, biases and activation parameters (SMU's mu, PReLU's slope)
get none (fastai `bn_wd=False`; timm `param_groups_weight_decay`). `cfg.wd_all=True` decays everything,
as MXNet's Gluon trainer did in the Swish article. Optimizers come from torch or `pytorch_optimizer`.
"""

from __future__ import annotations

from typing import Any

import pytorch_optimizer
import torch
from torch import nn

from actlab.config import RunConfig

_DECAYED_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Bilinear)
# Ranger as in lessw2020/Ranger-Mish-ImageWoof-5: train.py passes betas (0.95, 0.99), eps 1e-6; ranger.py
# v9.3.19 predates gradient centralisation, so it is off. Lookahead alpha 0.5 every k=6 steps.
RANGER_DEFAULTS = {"betas": (0.95, 0.99), "eps": 1e-6, "alpha": 0.5, "k": 6, "use_gc": False}


def decay_split(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed): weights of conv/linear layers vs everything else, each parameter once."""
    decay: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, _DECAYED_MODULES):
            # recurse=True reaches parametrized weights (spectral norm's `parametrizations.weight.original`)
            for name, p in module.named_parameters():
                if name.split(".")[-1] != "bias":
                    decay[id(p)] = p
    no_decay = [p for p in model.parameters() if id(p) not in decay and p.requires_grad]
    return [p for p in decay.values() if p.requires_grad], no_decay


def param_groups(cfg: RunConfig, model: nn.Module) -> list[dict[str, Any]]:
    """Parameter groups with per-group `weight_decay`; empty groups are left out."""
    if cfg.wd_all:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": cfg.wd}]
    decay, no_decay = decay_split(model)
    groups = [{"params": decay, "weight_decay": cfg.wd}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _adam_kwargs(cfg: RunConfig, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """betas/eps from the config where set, else `defaults`, else the optimizer's own defaults."""
    kw = dict(defaults or {})
    if cfg.betas is not None:
        kw["betas"] = cfg.betas
    if cfg.eps is not None:
        kw["eps"] = cfg.eps
    return kw


def build_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer `cfg.optimizer` over `model`'s trainable parameters, at lr `cfg.lr`."""
    groups, lr = param_groups(cfg, model), cfg.lr
    name = cfg.optimizer
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if name == "adam":  # L2 added to the gradient
        return torch.optim.Adam(groups, lr=lr, **_adam_kwargs(cfg))
    if name == "adamw":  # decoupled decay
        return torch.optim.AdamW(groups, lr=lr, **_adam_kwargs(cfg))
    if name == "radam":
        return torch.optim.RAdam(groups, lr=lr, **_adam_kwargs(cfg))
    if name == "ranger":  # RAdam + Lookahead, decoupled decay (fastai true_wd)
        return pytorch_optimizer.Ranger(
            groups, lr=lr, weight_decouple=True, **_adam_kwargs(cfg, RANGER_DEFAULTS)
        )
    if name == "novograd":
        return pytorch_optimizer.NovoGrad(groups, lr=lr, **_adam_kwargs(cfg))
    if name == "lamb":
        return pytorch_optimizer.Lamb(groups, lr=lr, **_adam_kwargs(cfg))
    raise ValueError(f"unknown optimizer {name!r}")
