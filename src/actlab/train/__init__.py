"""Training: `train(cfg, out_dir)` runs one seeded, resumable experiment described by a `RunConfig`.

`schedules` (pure lr multipliers), `optim` (optimizer + no-decay groups), `engine` (the loop, evaluation),
`record` (RunResult, run.json), `state` (seeding, RNG, checkpoints), `command` (`actlab train`).
"""

from actlab.train.engine import evaluate, train
from actlab.train.optim import build_optimizer
from actlab.train.record import EPOCH_KEYS, RunResult
from actlab.train.schedules import lr_at

__all__ = ["EPOCH_KEYS", "RunResult", "build_optimizer", "evaluate", "lr_at", "train"]
