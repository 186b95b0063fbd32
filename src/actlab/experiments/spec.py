"""The sweep's grid: `SweepSpec` {data set × model × seed × activation × lr}, `expand` into `RunConfig`s,
and `load_spec` for `--config sweep.toml`.

Seeds are paired: every activation runs on the same seed list, and the seed alone fixes the data order,
the augmentation and the initial weights of everything that is not an activation.

`--config sweep.toml` format (stdlib `tomllib`; see `example_sweep.toml` beside this file):

    [sweep]
    acts = ["relu", "swish", "smu(alpha=0.25, mu=1e6)"]  # required; activation specs
    models = ["simple_cnn"]        # default: [train] model
    datasets = ["digits"]          # default: [train] dataset
    seeds = 5                      # a count (seeds 0..4) or a list of seeds, e.g. [0, 3, 7]
    lrs = [0.1, 0.05]              # lr grid for every activation (default: [train] lr)

    [sweep.act_lrs]                # per-activation lr grid; replaces `lrs` for that activation
    swish = [0.05, 0.02]

    [train]                        # base RunConfig fields (actlab.config.RunConfig), e.g.
    epochs = 10
    lr_steps = [5, 8]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actlab.config import IO_FIELDS, RunConfig

LOG_NAME = "sweep.log"  # per-run log of attempts (claim, resume point, end) in DIR/runs/<run_id>/
HEARTBEAT_S = 60.0  # seconds between liveness marks while a trial runs (the store's stale limit is 900 s)
Event = dict[str, Any]


def canonical_act(spec: str) -> str:
    """`"SMU"` → `"smu"`, `"smu(mu=1e6)"` → `"smu(mu=1000000.0)"`: one spelling, one run id."""
    from actlab.activations import get_act

    return get_act(spec).spec


def _seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds={seeds!r}: expected a count or a list of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds={seeds}: the number of seeds must be >= 1")
        return tuple(range(seeds))
    out = tuple(seeds)
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise ValueError(f"seeds={list(out)!r}: expected a non-empty list of integers >= 0")
    return out


def _lr_tuple(name: str, lrs: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(x) if isinstance(x, int | float) and not isinstance(x, bool) else x for x in lrs)
    if not all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in out):
        raise ValueError(f"{name}={list(lrs)!r}: learning rates must be finite numbers > 0")
    return out


def _no_dupes(name: str, values: Sequence[Any]) -> None:
    dupes = sorted({str(v) for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{name}: duplicate value(s) {', '.join(dupes)}")


@dataclass(frozen=True)
class SweepSpec:
    """A grid of trials: every activation × model × data set × seed (× lr), all else from `base`.

    Args:
        acts: activation specs (canonicalised, so `SMU` and `smu` are one activation).
        models: model names; empty = `(base.model,)`.
        datasets: data set names; empty = `(base.dataset,)`.
        seeds: a count n (seeds 0..n-1) or the seeds themselves; every activation runs all of them.
        lrs: lr grid for every activation; empty = `(base.lr,)`.
        act_lrs: per-activation lr grids (a mapping or pairs), replacing `lrs` for those activations.
        base: every other setting.
    """

    acts: tuple[str, ...]
    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    lrs: tuple[float, ...] = ()
    act_lrs: tuple[tuple[str, tuple[float, ...]], ...] = ()
    base: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if isinstance(self.acts, str):
            raise ValueError(f"acts={self.acts!r}: expected a list of activation specs")
        acts = tuple(canonical_act(a) for a in self.acts)
        if not acts:
            raise ValueError("acts: at least one activation is needed")
        _no_dupes("acts", acts)
        put(self, "acts", acts)
        for name in ("models", "datasets"):
            values = getattr(self, name)
            if isinstance(values, str):
                raise ValueError(f"{name}={values!r}: expected a list of names")
            values = tuple(values) or (getattr(self.base, name[:-1]),)
            _no_dupes(name, values)
            put(self, name, values)
        put(self, "seeds", _seed_list(self.seeds))
        _no_dupes("seeds", self.seeds)
        put(self, "lrs", _lr_tuple("lrs", self.lrs))
        _no_dupes("lrs", self.lrs)
        pairs = self.act_lrs.items() if isinstance(self.act_lrs, Mapping) else self.act_lrs
        act_lrs = tuple(sorted((canonical_act(a), _lr_tuple(f"act_lrs[{a!r}]", v)) for a, v in pairs))
        unknown = sorted({a for a, _ in act_lrs} - set(acts))
        if unknown:
            raise ValueError(f"act_lrs: {', '.join(unknown)} not in acts ({', '.join(acts)})")
        put(self, "act_lrs", act_lrs)

    def lrs_for(self, act: str) -> tuple[float, ...]:
        """The learning rates `act` is trained with."""
        return dict(self.act_lrs).get(act) or self.lrs or (self.base.lr,)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; `from_dict` inverts it."""
        return {
            "acts": list(self.acts),
            "models": list(self.models),
            "datasets": list(self.datasets),
            "seeds": list(self.seeds),
            "lrs": list(self.lrs),
            "act_lrs": {a: list(v) for a, v in self.act_lrs},
            "base": self.base.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepSpec:
        """Inverse of `to_dict`; unknown keys raise `ValueError`."""
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown sweep field(s): {', '.join(unknown)}")
        d = dict(d)
        d["base"] = RunConfig.from_dict(d.get("base") or {})
        return cls(**d)

    def replace(self, **overrides: Any) -> SweepSpec:
        return dataclasses.replace(self, **overrides)

    def sweep_id(self) -> str:
        """12 hex chars of sha256 over the spec (without the where-it-runs fields: device, threads...)."""
        d = self.to_dict()
        d["base"] = {k: v for k, v in d["base"].items() if k not in (*IO_FIELDS, "act", "seed")}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep TOML file (format in this module's docstring); `ValueError` on a bad file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"sweep config {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from None
    unknown = sorted(set(doc) - {"sweep", "train"})
    if unknown:
        raise ValueError(f"{path}: unknown table(s) [{'], ['.join(unknown)}]; valid: [sweep], [train]")
    sweep = dict(doc.get("sweep") or {})
    if "acts" not in sweep:
        raise ValueError(f'{path}: [sweep] needs `acts`, e.g. acts = ["relu", "swish"]')
    try:
        return SweepSpec.from_dict({**sweep, "base": doc.get("train") or {}})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def expand(spec: SweepSpec) -> list[RunConfig]:
    """One `RunConfig` per trial, seed-major (every activation gets seed 0 before any gets seed 1)."""
    return [
        spec.base.replace(dataset=dataset, model=model, seed=seed, act=act, lr=lr)
        for dataset in spec.datasets
        for model in spec.models
        for seed in spec.seeds
        for act in spec.acts
        for lr in spec.lrs_for(act)
    ]
