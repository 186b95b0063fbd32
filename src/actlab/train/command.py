"""`actlab train`: flags named as in MXNet's `image_classification.py` → `RunConfig` → `train`.

Every flag defaults to None ("not given") so `RunConfig` stays the one source of defaults; `--help` shows
them. `add_train_arguments` and `config_from_args` are shared with `actlab compare`.
Exit codes: 0 done, 1 diverged, 2 user error (message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path
from typing import Any

from actlab.config import AMP_MODES, OPTIMIZERS, SCHEDULES, RunConfig

_D = RunConfig()
# flag → RunConfig field, for the flags that map one to one
_FIELDS = (
    "model", "act", "dataset", "data_dir", "download", "image_size", "augment", "batch_size", "epochs",
    "optimizer", "lr", "momentum", "nesterov", "betas", "eps", "wd", "wd_all", "label_smoothing", "schedule",
    "lr_steps", "lr_factor", "flat_pct", "final_lr_frac", "warmup_epochs", "seed", "device", "amp",
    "channels_last", "val_every", "threads", "model_kwargs",
)  # fmt: skip


def _ints(text: str) -> tuple[int, ...]:
    """`"10,20,30"` → (10, 20, 30); `""` → ()."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_kwargs(text: str) -> dict[str, Any]:
    """`"depth=4,width=64,sa=True,norm=bn"` → {"depth": 4, "width": 64, "sa": True, "norm": "bn"}."""
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()  # a bare word is a string
    return out


def _d(name: str) -> str:
    return f"(default: {getattr(_D, name)!r})"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that describe one run (everything but --out/--resume), all defaulting to None."""
    a = p.add_argument
    a("--model", help=f"model name (actlab list) {_d('model')}")
    a("--act", help=f"activation, e.g. swish or 'smu(alpha=0.25, mu=1e6)' {_d('act')}")
    a(
        "--model-kwargs",
        type=parse_kwargs,
        metavar="K=V,...",
        help="extra model keywords, e.g. depth=4,width=64",
    )
    a("--dataset", help=f"data set name {_d('dataset')}")
    a("--data-dir", help="data root (default: env ACTLAB_DATA, else ~/.cache/actlab/data)")
    a("--download", action="store_true", default=None, help="fetch missing data from the official URL")
    a("--image-size", type=int, help="image side in pixels (imagenette/imagewoof)")
    a("--augment", help=f"auto, none, flip, crop, crop+flip {_d('augment')}")
    a("--batch-size", type=int, help=f"images per step {_d('batch_size')}")
    a("--epochs", type=int, help=f"training epochs (MXNet: 120) {_d('epochs')}")
    a("--optimizer", choices=OPTIMIZERS, help=f"{_d('optimizer')}")
    a("--lr", type=float, help=f"peak learning rate {_d('lr')}")
    a("--momentum", type=float, help=f"SGD momentum {_d('momentum')}")
    a("--nesterov", action="store_true", default=None, help="SGD Nesterov momentum")
    a("--betas", type=_floats, metavar="B1,B2", help="adam-like betas (default: the optimizer's)")
    a("--eps", type=float, help="adam-like epsilon (default: the optimizer's)")
    a("--wd", type=float, help=f"weight decay {_d('wd')}")
    a("--wd-all", action="store_true", default=None, help="decay norms, biases and act params too (MXNet)")
    a("--label-smoothing", type=float, help=f"{_d('label_smoothing')}")
    a("--schedule", choices=SCHEDULES, help=f"lr schedule {_d('schedule')}")
    a(
        "--lr-steps",
        type=_ints,
        metavar="E1,E2,...",
        help="step: decay after these 0-based epochs, e.g. 10,20,30",
    )
    a("--lr-factor", type=float, help=f"step: decay factor {_d('lr_factor')}")
    a("--flat-pct", type=float, help=f"flat_cos: flat fraction {_d('flat_pct')}")
    a("--final-lr-frac", type=float, help=f"cosine/flat_cos: final lr / lr {_d('final_lr_frac')}")
    a("--warmup-epochs", type=float, help=f"linear warm-up epochs {_d('warmup_epochs')}")
    a("--seed", type=int, help=f"{_d('seed')}")
    a("--device", help=f"auto, cpu, cuda or cuda:N {_d('device')}")
    a("--amp", choices=AMP_MODES, help=f"autocast dtype: bf16 or fp16 on CUDA, bf16 on the CPU {_d('amp')}")
    a("--channels-last", action="store_true", default=None, help="NHWC memory format on CUDA")
    a("--val-every", type=int, help=f"evaluate every N epochs {_d('val_every')}")
    a("--threads", type=int, help="torch CPU threads (default: torch's)")


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """`base` (default `RunConfig()`) with every given flag applied; ValueError on a bad value."""
    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    if "data_dir" not in given and os.environ.get("ACTLAB_DATA"):
        given["data_dir"] = os.environ["ACTLAB_DATA"]
    return (base or RunConfig()).replace(**given)


def default_out_dir(cfg: RunConfig) -> Path:
    """`runs/<model>-<act>-<dataset>-s<seed>`, with characters unsafe in file names replaced by `_`."""
    parts = [cfg.model, cfg.act, cfg.dataset, f"s{cfg.seed}"]
    return Path("runs") / "-".join(re.sub(r"[^A-Za-z0-9._=+]+", "_", p).strip("_") for p in parts)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `actlab train` on an `add_subparsers()` object."""
    p = subparsers.add_parser("train", help="train one model with one activation", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_train_arguments(p)
    p.add_argument("--out", help="run folder (default: runs/<model>-<act>-<dataset>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run `actlab train`; 0 done, 1 diverged, 2 user error."""
    from actlab.data import DataError
    from actlab.train.engine import train

    try:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else default_out_dir(cfg)
        result = train(cfg, out, resume=args.resume, progress=not args.quiet)
    except (ValueError, DataError) as err:
        print(f"actlab: error: {err}", file=sys.stderr)
        return 2
    best = "n/a" if result.best_val_acc is None else f"{result.best_val_acc:.4f} at epoch {result.best_epoch}"
    where = out / "run.json"
    print(f"{result.status}: run {result.run_id}, best val acc {best}, {result.seconds:.1f}s → {where}")
    return 0 if result.status == "done" else 1
