"""Learning-rate schedules as pure functions of progress `pos ∈ [0, 1]` returning a multiplier on `cfg.lr`.

The training loop calls `lr_at(cfg, step, steps_per_epoch)` before every optimizer step and writes the
result into each parameter group (nanoGPT `get_lr`); nothing here holds state. Pieces compose like fastai's
`combine_scheds`: an optional linear warm-up runs first, then the chosen schedule over the remaining steps.
Progress is `step / total` (fastai), so the last step sits just before the schedule's end value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from actlab.config import RunConfig

# fastai fit_one_cycle defaults: lr/25 → lr over the first 25 % (cosine), then cosine down to lr/1e5
ONECYCLE_PCT_START = 0.25
ONECYCLE_DIV = 25.0
ONECYCLE_DIV_FINAL = 1e5


def constant(pos: float) -> float:
    """1 everywhere."""
    return 1.0


def cos_anneal(pos: float, start: float, end: float) -> float:
    """Half-cosine from `start` at pos 0 to `end` at pos 1 (fastai `SchedCos`)."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(pos, 0.0), 1.0))) / 2


def cosine(pos: float, final: float = 0.0) -> float:
    """Cosine from 1 to `final` over the whole run."""
    return cos_anneal(pos, 1.0, final)


def flat_cos(pos: float, flat_pct: float = 0.72, final: float = 0.0) -> float:
    """1 for the first `flat_pct` of the run, then cosine to `final` (fastai `fit_flat_cos`)."""
    if pos < flat_pct or flat_pct >= 1:
        return 1.0
    return cos_anneal((pos - flat_pct) / (1 - flat_pct), 1.0, final)


def onecycle(
    pos: float,
    pct_start: float = ONECYCLE_PCT_START,
    div: float = ONECYCLE_DIV,
    div_final: float = ONECYCLE_DIV_FINAL,
) -> float:
    """fastai one-cycle: cosine up from 1/div to 1 over `pct_start`, then cosine down to 1/div_final."""
    if pos < pct_start:
        return cos_anneal(pos / pct_start, 1 / div, 1.0)
    return cos_anneal((pos - pct_start) / (1 - pct_start), 1.0, 1 / div_final)


def step_decay(epoch: int, steps: Sequence[int], factor: float) -> float:
    """MXNet rule at the start of 0-based `epoch`: `factor ** count(s < epoch)` (strict <, so with step 10 the
    decay first applies at epoch 11; PyTorch MultiStepLR milestones would be s + 1)."""
    return factor ** sum(1 for s in steps if s < epoch)


def warmup(step: int, warmup_steps: int) -> float:
    """Linear ramp (step + 1) / (warmup_steps + 1), so the first step already moves (nanoGPT)."""
    return (step + 1) / (warmup_steps + 1)


def multiplier(cfg: RunConfig, step: int, steps_per_epoch: int) -> float:
    """The lr multiplier at 0-based iteration `step` of a run of `cfg.epochs * steps_per_epoch` iterations."""
    total = cfg.epochs * steps_per_epoch
    warm = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return warmup(step, warm)
    pos = (step - warm) / max(total - warm, 1)
    if cfg.schedule == "step":
        return step_decay(step // steps_per_epoch, cfg.lr_steps, cfg.lr_factor)
    if cfg.schedule == "cosine":
        return cosine(pos, cfg.final_lr_frac)
    if cfg.schedule == "flat_cos":
        return flat_cos(pos, cfg.flat_pct, cfg.final_lr_frac)
    if cfg.schedule == "onecycle":
        return onecycle(pos)
    if cfg.schedule == "constant":
        return constant(pos)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def lr_at(cfg: RunConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for 0-based iteration `step` (counted over the whole run, not per epoch)."""
    if steps_per_epoch < 1 or step < 0:
        raise ValueError(f"lr_at: need step >= 0 and steps_per_epoch >= 1, got {step}, {steps_per_epoch}")
    return cfg.lr * multiplier(cfg, step, steps_per_epoch)
