"""The record of a run: `RunResult` (per-epoch metrics, summary, status) and its `run.json`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actlab.config import RunConfig
from actlab.results import EPOCH_FIELDS, atomic_write_json

RUN_JSON = "run.json"
# per-epoch metrics, exactly as `ResultsStore.record_epoch` takes them
EPOCH_KEYS = ("epoch", *EPOCH_FIELDS)


@dataclass
class RunResult:
    """What a run produced; `summary()` has the keys of `ResultsStore.finish`."""

    run_id: str
    status: str  # running | done | diverged | failed | interrupted
    config: RunConfig
    out_dir: Path
    env: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)  # one dict of EPOCH_KEYS per epoch
    error: str | None = None

    @property
    def best_epoch(self) -> int | None:
        """First epoch with the highest validation top-1 (the Swish article's "best at epoch N")."""
        scored = [m for m in self.epochs if m["val_acc"] is not None]
        return max(scored, key=lambda m: (m["val_acc"], -m["epoch"]))["epoch"] if scored else None

    @property
    def best_val_acc(self) -> float | None:
        best = self.best_epoch
        return None if best is None else next(m["val_acc"] for m in self.epochs if m["epoch"] == best)

    @property
    def final_val_acc(self) -> float | None:
        return self.epochs[-1]["val_acc"] if self.epochs else None

    @property
    def seconds(self) -> float:
        """Training time summed over epochs (so it adds up across resumes)."""
        return float(sum(m["seconds"] for m in self.epochs))

    def summary(self) -> dict[str, Any]:
        keys = ("best_val_acc", "best_epoch", "final_val_acc", "seconds")
        return {**{k: getattr(self, k) for k in keys}, "env": self.env, "error": self.error}

    def to_json(self) -> dict[str, Any]:
        summary = {k: v for k, v in self.summary().items() if k != "env"}
        return {
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config.to_dict(),
            "env": self.env,
            "summary": {**summary, "epochs_done": len(self.epochs)},
            "epochs": self.epochs,
        }

    def write(self) -> None:
        """Atomically (re)write `out_dir/run.json`."""
        atomic_write_json(self.out_dir / RUN_JSON, self.to_json())


@contextlib.contextmanager
def recording(result: RunResult) -> Iterator[RunResult]:
    """Mark the run failed (an exception) or interrupted (Ctrl-C) in run.json before re-raising."""
    try:
        yield result
    except Exception as err:
        result.status, result.error = "failed", f"{type(err).__name__}: {err}"
        result.write()
        raise
    except BaseException:  # KeyboardInterrupt: the last checkpoint stays resumable
        result.status = "interrupted"
        result.write()
        raise


def finished_run(cfg: RunConfig, out_dir: Path) -> RunResult | None:
    """The result recorded in `out_dir/run.json` if it is this config's run and it has ended."""
    path = out_dir / RUN_JSON
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    if d.get("run_id") != cfg.run_id() or d.get("status") not in ("done", "diverged"):
        return None
    error = d.get("summary", {}).get("error")
    return RunResult(d["run_id"], d["status"], cfg, out_dir, d.get("env", {}), d.get("epochs", []), error)
