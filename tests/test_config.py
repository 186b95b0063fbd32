"""RunConfig: defaults, JSON round trip, type-checked overrides, validation, stable run ids."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from actlab.config import OPTIMIZERS, SCHEDULES, RunConfig


def test_defaults_follow_mxnet_flags():
    c = RunConfig()
    assert (c.lr, c.momentum, c.wd, c.lr_factor, c.seed, c.batch_size) == (0.1, 0.9, 1e-4, 0.1, 123, 128)
    assert (c.optimizer, c.schedule, c.model, c.dataset, c.act) == (
        "sgd",
        "step",
        "simple_cnn",
        "digits",
        "relu",
    )


def test_round_trip_through_json():
    c = RunConfig(lr_steps=(10, 20, 30), betas=(0.9, 0.99), model_kwargs={"width": 64, "depth": 3}, eps=1e-6)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["model_kwargs"] == {"depth": 3, "width": 64}
    back = RunConfig.from_dict(d)
    assert back == c and hash(back) == hash(c) and back.run_id() == c.run_id()
    assert back.model_kwargs_dict() == {"depth": 3, "width": 64}


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="bogus, lrr"):
        RunConfig.from_dict({"lr": 0.1, "lrr": 1, "bogus": 2})


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("lr", "0.1", "float"),
        ("epochs", 2.5, "int"),
        ("epochs", True, "int"),
        ("nesterov", 1, "bool"),
        ("lr_steps", (1, "a"), r"tuple\[int, ...\]"),
        ("betas", (0.9,), "tuple"),
        ("data_dir", 3, r"str \| None"),
    ],
)
def test_replace_is_type_checked(field, value, expected):
    with pytest.raises(ValueError, match=rf"RunConfig\.{field}=.*expected {expected}"):
        RunConfig().replace(**{field: value})


def test_replace_converts_only_harmless_types():
    c = RunConfig().replace(lr=1, lr_steps=[3, 5], betas=[0.9, 0.99])
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.lr_steps == (3, 5) and c.betas == (0.9, 0.99)
    with pytest.raises(ValueError, match="unknown RunConfig field"):
        RunConfig().replace(learning_rate=0.1)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"optimizer": "adagrad"}, "valid: " + ", ".join(OPTIMIZERS)),
        ({"schedule": "poly"}, "valid: " + ", ".join(SCHEDULES)),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"wd": -1e-4}, "wd"),
        ({"amp": "fp8"}, "amp"),
        ({"device": "tpu"}, "device"),
        ({"seed": -1}, "seed"),
        ({"warmup_epochs": 10.0}, "warmup_epochs"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"flat_pct": 1.5}, "flat_pct"),
        ({"nesterov": True, "optimizer": "adam"}, "nesterov"),
        ({"model_kwargs": {"w": [1, 2]}}, "model_kwargs"),
    ],
)
def test_bad_values_raise_early(overrides, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**overrides)


def test_frozen_and_hashable():
    c = RunConfig()
    with pytest.raises(AttributeError):
        c.lr = 0.2  # type: ignore[misc]
    assert len({c, RunConfig(), c.replace(seed=1)}) == 2


def test_run_id_ignores_io_fields_but_not_experiment_fields():
    c = RunConfig()
    assert len(c.run_id()) == 12
    assert c.replace(data_dir="/x", download=True, device="cpu", threads=2).run_id() == c.run_id()
    ids = {c.replace(**kw).run_id() for kw in ({"seed": 1}, {"act": "swish"}, {"lr": 0.05}, {})}
    assert len(ids) == 4
    kw_a = c.replace(model_kwargs={"a": 1, "b": 2}).run_id()
    assert kw_a == c.replace(model_kwargs=(("b", 2), ("a", 1))).run_id()


def test_run_id_is_stable_across_processes():
    code = "from actlab.config import RunConfig; print(RunConfig(act='mish', seed=7).run_id())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == RunConfig(act="mish", seed=7).run_id()
