"""`RunConfig`: the one frozen, typed description of a training run; saved with every run and checkpoint.

Defaults follow the MXNet 1.2 `example/gluon/image_classification.py` flags used by the Swish seed article
(lr 0.1, momentum 0.9, wd 1e-4, lr-factor 0.1, batch 128 as in the article, seed 123, SGD with step decay),
except `epochs` (MXNet: 120) which is 10 so that a lab run on the bundled `digits` set takes seconds, and
`wd_all` (MXNet decays every parameter; we spare norms, biases and activation parameters unless asked).

Stdlib only: names of models, activations and data sets are checked by the trainer, not here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw", "radam", "ranger", "novograd", "lamb")
SCHEDULES = ("step", "cosine", "flat_cos", "onecycle", "constant")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("none", "bf16", "fp16")
# Fields that say where/how a run executes, not what experiment it is: left out of `run_id`.
IO_FIELDS = ("data_dir", "download", "device", "threads", "channels_last")
_KWARG_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one training run. Units in comments; epochs are 0-based where they name an epoch."""

    # what is trained
    model: str = "simple_cnn"  # name in actlab.models.list_models()
    act: str = "relu"  # activation spec for actlab.activations.get_act, e.g. "smu(alpha=0.25, mu=1e6)"
    model_kwargs: tuple[tuple[str, Any], ...] = ()  # extra builder kwargs, sorted (key, scalar) pairs
    # data
    dataset: str = "digits"  # name in actlab.data.list_datasets()
    data_dir: str | None = None  # root of the data files; None = env ACTLAB_DATA or ~/.cache/actlab/data
    download: bool = False  # fetch missing files from the official URL
    image_size: int | None = None  # pixels per side (imagenette/imagewoof only); None = native
    augment: str = "auto"  # "auto" (per data set), "none", "flip", "crop", "crop+flip"
    batch_size: int = 128  # images per optimizer step
    # optimisation
    epochs: int = 10  # passes over the train split (MXNet default 120)
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.1  # peak learning rate (per step, not scaled by batch size)
    momentum: float = 0.9  # SGD momentum (adam-likes use betas)
    nesterov: bool = False  # SGD Nesterov momentum
    betas: tuple[float, float] | None = None  # adam-like (beta1, beta2); None = the optimizer's default
    eps: float | None = None  # adam-like denominator epsilon; None = the optimizer's default
    wd: float = 1e-4  # weight decay coefficient (L2 for sgd/adam, decoupled for adamw/ranger/lamb)
    wd_all: bool = False  # decay every parameter, as MXNet does (default: conv/linear weights only)
    label_smoothing: float = 0.0  # cross-entropy label smoothing, fraction of target mass spread
    # learning-rate schedule (multiplier on lr; see actlab.train.schedules)
    schedule: str = "step"  # one of SCHEDULES
    lr_steps: tuple[int, ...] = ()  # step: epochs after which lr *= lr_factor (MXNet strict-< rule)
    lr_factor: float = 0.1  # step: multiplier applied at each lr step
    flat_pct: float = 0.72  # flat_cos: fraction of iterations at full lr before the cosine
    final_lr_frac: float = 0.0  # cosine/flat_cos: final lr as a fraction of lr
    warmup_epochs: float = 0.0  # linear warm-up before the schedule, in epochs (fractions allowed)
    # execution
    seed: int = 123  # drives init, data order, augmentation and dropout
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda" or "cuda:N"
    amp: str = "none"  # autocast dtype: "none", "bf16", "fp16" (on the CPU bf16 only; fp16 warns, ignored)
    channels_last: bool = False  # NHWC memory format on CUDA
    val_every: int = 1  # evaluate every N epochs (the last epoch is always evaluated)
    threads: int | None = None  # torch CPU threads; None = torch's default

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(RunConfig)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        _validate(self)

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists, model_kwargs as a dict)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model_kwargs"] = dict(self.model_kwargs)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Inverse of `to_dict`; unknown keys or wrong types: `ValueError`; missing keys: defaults."""
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown RunConfig field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **overrides: Any) -> RunConfig:
        """A copy with `overrides` applied; unknown fields or wrong types raise `ValueError`."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown RunConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)

    def run_id(self) -> str:
        """12 hex chars of sha256 over the canonical JSON of the experiment-defining fields."""
        d = {k: v for k, v in self.to_dict().items() if k not in IO_FIELDS}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def model_kwargs_dict(self) -> dict[str, Any]:
        """`model_kwargs` as a dict, for `get_model(..., **kwargs)`."""
        return dict(self.model_kwargs)


# ------------------------------------------------------------------------------------------------
# type checking (nanoGPT-style overrides, without exec) and value validation


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """`value` checked against field type `tp`; ValueError naming field, value and expected type."""
    if name == "model_kwargs":
        return _coerce_kwargs(value)
    try:
        return _as_type(value, tp)
    except TypeError:
        expected = str(tp).replace("typing.", "") if typing.get_args(tp) else tp.__name__
        raise ValueError(
            f"RunConfig.{name}={value!r}: expected {expected}, got {type(value).__name__}"
        ) from None


def _as_type(value: Any, tp: Any) -> Any:
    """Only int → float and list → tuple are converted; anything else of the wrong type is a TypeError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if value is None or len(inner) != 1:
            raise TypeError
        return _as_type(value, inner[0])
    if origin is tuple:
        if not isinstance(value, tuple | list):
            raise TypeError
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_as_type(v, args[0]) for v in value)
        if len(value) != len(args):
            raise TypeError
        return tuple(_as_type(v, a) for v, a in zip(value, args, strict=True))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (isinstance(value, bool) and tp is not bool) or not isinstance(value, tp):
        raise TypeError
    return value


def _coerce_kwargs(value: Any) -> tuple[tuple[str, Any], ...]:
    """A mapping or (key, value) pairs → sorted tuple of pairs with scalar values (hashable, JSON-able)."""
    items = value.items() if isinstance(value, Mapping) else value
    if not isinstance(items, tuple | list | type({}.items())):
        raise ValueError(f"RunConfig.model_kwargs={value!r}: expected a mapping or (key, value) pairs")
    pairs = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"RunConfig.model_kwargs: {item!r} is not a (str, value) pair")
        if not isinstance(item[1], _KWARG_TYPES):
            raise ValueError(f"RunConfig.model_kwargs[{item[0]!r}]={item[1]!r}: values must be scalars")
        pairs.append((item[0], item[1]))
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"RunConfig.model_kwargs: duplicate keys in {keys}")
    return tuple(sorted(pairs))


def _check(ok: bool, name: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"RunConfig.{name}={value!r}: {rule}")


def _validate(c: RunConfig) -> None:
    """Value rules that types cannot express; one ValueError naming the field and the rule."""
    _check(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"valid: {', '.join(OPTIMIZERS)}")
    _check(c.schedule in SCHEDULES, "schedule", c.schedule, f"valid: {', '.join(SCHEDULES)}")
    _check(c.amp in AMP_MODES, "amp", c.amp, f"valid: {', '.join(AMP_MODES)}")
    dev_ok = c.device in DEVICES or (c.device.startswith("cuda:") and c.device[5:].isdigit())
    _check(dev_ok, "device", c.device, "valid: auto, cpu, cuda, cuda:N")
    for name in ("model", "act", "dataset", "augment"):
        _check(bool(getattr(c, name).strip()), name, getattr(c, name), "must not be empty")
    for name in ("epochs", "batch_size", "val_every"):
        _check(getattr(c, name) >= 1, name, getattr(c, name), "must be >= 1")
    _check(c.threads is None or c.threads >= 1, "threads", c.threads, "must be >= 1 or None")
    _check(c.image_size is None or c.image_size >= 1, "image_size", c.image_size, "must be >= 1 or None")
    _check(c.seed >= 0, "seed", c.seed, "must be >= 0")
    _check(c.lr > 0, "lr", c.lr, "must be > 0")
    _check(0 <= c.momentum < 1, "momentum", c.momentum, "must be in [0, 1)")
    _check(not c.nesterov or (c.optimizer == "sgd" and c.momentum > 0), "nesterov", c.nesterov,
           "needs optimizer='sgd' and momentum > 0")  # fmt: skip
    _check(c.betas is None or all(0 <= b < 1 for b in c.betas), "betas", c.betas, "each must be in [0, 1)")
    _check(c.eps is None or c.eps > 0, "eps", c.eps, "must be > 0")
    _check(c.wd >= 0, "wd", c.wd, "must be >= 0")
    _check(0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "must be in [0, 1)")
    _check(all(s >= 0 for s in c.lr_steps), "lr_steps", c.lr_steps, "epochs must be >= 0")
    _check(c.lr_factor > 0, "lr_factor", c.lr_factor, "must be > 0")
    _check(0 <= c.flat_pct <= 1, "flat_pct", c.flat_pct, "must be in [0, 1]")
    _check(0 <= c.final_lr_frac <= 1, "final_lr_frac", c.final_lr_frac, "must be in [0, 1]")
    warm_ok = 0 <= c.warmup_epochs < c.epochs
    _check(warm_ok, "warmup_epochs", c.warmup_epochs, f"must be in [0, epochs={c.epochs})")
