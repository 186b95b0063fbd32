"""Schedules: pure multipliers at known points, endpoints, the MXNet strict-< step rule, warm-up."""

from __future__ import annotations

import itertools
import math

import pytest

from actlab.config import RunConfig
from actlab.train import schedules as S


def test_mxnet_step_rule_is_strict():
    steps = (10, 20, 30)
    assert S.step_decay(0, steps, 0.1) == 1.0
    assert S.step_decay(10, steps, 0.1) == 1.0  # epoch 10 still at full lr (strict <)
    assert S.step_decay(11, steps, 0.1) == pytest.approx(0.1)
    assert S.step_decay(20, steps, 0.1) == pytest.approx(0.1)
    assert S.step_decay(21, steps, 0.1) == pytest.approx(0.01)
    assert S.step_decay(31, steps, 0.1) == pytest.approx(1e-3)


def test_lr_at_step_schedule_per_iteration():
    cfg = RunConfig(epochs=40, lr=0.1, lr_steps=(10, 20, 30), schedule="step")
    spe = 7
    assert S.lr_at(cfg, 10 * spe, spe) == pytest.approx(0.1)  # first iteration of epoch 10
    assert S.lr_at(cfg, 11 * spe - 1, spe) == pytest.approx(0.1)  # last iteration of epoch 10
    assert S.lr_at(cfg, 11 * spe, spe) == pytest.approx(0.01)  # first iteration of epoch 11
    assert S.lr_at(cfg, 40 * spe - 1, spe) == pytest.approx(1e-4)


def test_cosine_endpoints_and_midpoint():
    assert S.cosine(0.0) == 1.0
    assert S.cosine(0.5) == pytest.approx(0.5)
    assert S.cosine(1.0) == pytest.approx(0.0)
    assert S.cosine(1.0, final=0.1) == pytest.approx(0.1)


def test_flat_cos_is_flat_then_decreasing_to_final():
    pts = [i / 100 for i in range(101)]
    vals = [S.flat_cos(p, 0.72, 0.01) for p in pts]
    assert all(v == 1.0 for p, v in zip(pts, vals, strict=True) if p < 0.72)
    tail = [v for p, v in zip(pts, vals, strict=True) if p >= 0.72]
    assert all(a >= b for a, b in itertools.pairwise(tail)) and tail[0] == 1.0
    assert vals[-1] == pytest.approx(0.01)
    assert S.flat_cos(0.86, 0.72, 0.0) == pytest.approx(0.5)  # half-way through the anneal


def test_onecycle_shape():
    assert S.onecycle(0.0) == pytest.approx(1 / 25)
    assert S.onecycle(0.25) == pytest.approx(1.0)
    assert S.onecycle(1.0) == pytest.approx(1e-5)
    assert S.onecycle(0.1) < S.onecycle(0.2) < 1 and S.onecycle(0.5) > S.onecycle(0.9)


def test_warmup_then_schedule():
    cfg = RunConfig(epochs=10, lr=1.0, schedule="cosine", warmup_epochs=1.0)
    spe = 10
    ramp = [S.lr_at(cfg, i, spe) for i in range(10)]
    assert ramp == pytest.approx([(i + 1) / 11 for i in range(10)])
    assert S.lr_at(cfg, 10, spe) == pytest.approx(1.0)  # the cosine starts at the end of warm-up
    assert S.lr_at(cfg, 55, spe) == pytest.approx(0.5)  # half-way through the 90 remaining steps
    assert 0 < S.lr_at(cfg, 99, spe) < 1e-3


@pytest.mark.parametrize("schedule", ["step", "cosine", "flat_cos", "onecycle", "constant"])
def test_every_schedule_is_finite_and_positive(schedule):
    cfg = RunConfig(epochs=3, schedule=schedule, lr_steps=(0, 1), warmup_epochs=0.5)
    lrs = [S.lr_at(cfg, i, 5) for i in range(15)]
    assert all(math.isfinite(v) and v > 0 for v in lrs)
    assert max(lrs) <= cfg.lr + 1e-12


def test_constant_and_bad_arguments():
    assert S.lr_at(RunConfig(schedule="constant", lr=0.3), 123, 10) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        S.lr_at(RunConfig(), -1, 10)
