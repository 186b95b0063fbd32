"""`train(cfg, out_dir)`: one seeded, resumable training run that leaves `run.json` and `checkpoint.pt`.

Reads top to bottom: set up (device, seed, data, model, optimizer) → resume → per epoch: train, evaluate,
record, checkpoint → summary. Same config and seed give the same metrics on CPU, also across a resume:
data order and augmentation are a pure function of (seed, epoch) and every RNG state is checkpointed.
Epochs are 0-based, as in MXNet's logs and its `--lr-steps` rule.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actlab.config import RunConfig
from actlab.train.optim import build_optimizer
from actlab.train.progress import Progress
from actlab.train.record import EPOCH_KEYS, RunResult, finished_run, recording
from actlab.train.schedules import lr_at
from actlab.train.state import (
    CHECKPOINT_NAME,
    environment,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)

# ------------------------------------------------------------------------------------------------
# set-up


def resolve_device(cfg: RunConfig) -> torch.device:
    """`auto` → cuda when available; asking for cuda without one is a user error."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={cfg.device!r} but CUDA is not available (use --device cpu or auto)")
    return torch.device(cfg.device)


def amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None: bf16 or fp16 on CUDA, bf16 on the CPU (actlab's C kernels take bfloat16
    there); other combinations are ignored with a warning."""
    if cfg.amp == "none":
        return None
    if device.type == "cpu" and cfg.amp == "bf16":
        return torch.bfloat16
    if device.type != "cuda":
        warnings.warn(
            f"amp={cfg.amp!r} is ignored on {device.type} (there: bf16 on the CPU, bf16 or fp16 on CUDA); "
            "training in float32",
            stacklevel=3,
        )
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]


def check_names(cfg: RunConfig) -> None:
    """Fail fast on unknown activation, model or data set names (ValueError listing the valid ones)."""
    from actlab.activations import get_act
    from actlab.data import list_datasets
    from actlab.models import list_models

    get_act(cfg.act)
    if cfg.model not in list_models():
        raise ValueError(f"unknown model {cfg.model!r}; valid names: {', '.join(list_models())}")
    if cfg.dataset not in list_datasets():
        raise ValueError(f"unknown data set {cfg.dataset!r}; valid names: {', '.join(list_datasets())}")


def build_model(cfg: RunConfig, num_classes: int, in_channels: int) -> nn.Module:
    """`get_model` with the config's activation and architecture keywords."""
    from actlab.models import get_model

    return get_model(cfg.model, num_classes, in_channels, act=cfg.act, **cfg.model_kwargs_dict())


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """`torch.use_deterministic_algorithms` for the duration of a run, restoring the caller's setting."""
    before, before_warn = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """`torch.set_num_threads(n)` for the duration of a run (None: leave it). CPU results depend on it."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------
# one epoch of training, and evaluation


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    opt: torch.optim.Optimizer,
    cfg: RunConfig,
    epoch: int,
    *,
    scaler: torch.amp.GradScaler,
    dtype: torch.dtype | None,
    progress: Progress,
) -> dict[str, float]:
    """One pass over `loader` with the lr set per iteration; mean loss/accuracy synced once at the end."""
    device, n = next(model.parameters()).device, len(loader)
    model.train()
    loader.set_epoch(epoch)
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        lr = lr_at(cfg, epoch * n + i, n)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        progress.batch(epoch, i, n, lambda s=loss_sum, k=seen: (s / k).item())
    train_loss, train_acc = (loss_sum / seen).item(), (correct / seen).item()  # syncs the device
    seconds = time.perf_counter() - start
    return {"train_loss": train_loss, "train_acc": train_acc, "lr": lr_at(cfg, epoch * n, n),
            "images_per_s": seen / seconds}  # fmt: skip


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, *, dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean cross-entropy (no label smoothing), top-1 and top-5 accuracy (fractions) over `loader`."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    loss_sum, top1, top5 = (torch.zeros((), device=device, dtype=torch.float64) for _ in range(3))
    seen = 0
    for x, y in loader:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x).float()  # (B, classes)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        topk = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, k)
        top1 += (topk[:, 0] == y).sum()
        top5 += (topk == y[:, None]).any(dim=1).sum()
        seen += y.shape[0]
    model.train(was_training)
    return {
        "val_loss": (loss_sum / seen).item(),
        "val_acc": (top1 / seen).item(),
        "val_top5": (top5 / seen).item(),
    }


# ------------------------------------------------------------------------------------------------
# the run


def train(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> RunResult:
    """Train `cfg`, writing `out_dir/run.json` and `out_dir/checkpoint.pt` after every epoch.

    Args:
        cfg: the run's settings.
        out_dir: folder for run.json and checkpoint.pt (created).
        resume: continue from `out_dir/checkpoint.pt` (metrics identical to an uninterrupted run on CPU);
            a finished run is returned as is; without a checkpoint the run starts fresh.
        on_epoch: called with each epoch's metrics (keys `EPOCH_KEYS`) after they are saved.
        progress: report on stderr (a status line on a TTY, one line per epoch otherwise).

    Returns the `RunResult`; a NaN/inf loss ends the run with status "diverged" instead of raising.
    Raises ValueError for bad names or settings, DataError when the data set is missing or corrupt.
    """
    out_dir = Path(out_dir)
    device = resolve_device(cfg)
    dtype = amp_dtype(cfg, device)
    check_names(cfg)
    if resume and (finished := finished_run(cfg, out_dir)) is not None:
        return finished
    with deterministic(device.type == "cpu"), num_threads(cfg.threads):  # CUDA keeps its fast kernels
        return _run(cfg, out_dir, device, dtype, resume, on_epoch, Progress(progress, cfg.epochs))


def _run(
    cfg: RunConfig,
    out_dir: Path,
    device: torch.device,
    dtype: torch.dtype | None,
    resume: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    progress: Progress,
) -> RunResult:
    model, train_loader, val_loader = _setup(cfg, device)
    opt = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    result = RunResult(cfg.run_id(), "running", cfg, out_dir, environment(device))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = _restore(result, model, opt, scaler) if resume else _fresh(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    what = f"{cfg.model} {cfg.act} {cfg.dataset} seed {cfg.seed}, {n_params:,} params on {device}"
    progress.line(f"run {result.run_id}: {what}, epoch {start}/{cfg.epochs} → {out_dir}")
    with recording(result):
        for epoch in range(start, cfg.epochs):
            metrics, diverged = _epoch(
                model, train_loader, val_loader, opt, cfg, epoch, scaler, dtype, progress
            )
            result.epochs.append(metrics)
            if diverged:
                result.status, result.error = "diverged", f"non-finite loss at epoch {epoch}"
            else:
                result.status = "done" if epoch == cfg.epochs - 1 else "running"
                save_checkpoint(out_dir / CHECKPOINT_NAME, _checkpoint(result, model, opt, scaler))
            result.write()
            progress.epoch(metrics)
            if on_epoch is not None:
                on_epoch(dict(metrics))
            if diverged:
                progress.line(f"diverged: {result.error}")
                break
    return result


def _setup(cfg: RunConfig, device: torch.device) -> tuple[nn.Module, Any, Any]:
    """Seed, load the data set onto the device, build the model: (model, train loader, val loader)."""
    from actlab.data import DeviceLoader, load_dataset

    seed_everything(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.data_dir, download=cfg.download, image_size=cfg.image_size)
    nhwc = cfg.channels_last and device.type == "cuda"
    kw = {"device": device, "seed": cfg.seed, "channels_last": nhwc}
    train_loader = DeviceLoader(data, "train", cfg.batch_size, train=True, augment=cfg.augment, **kw)
    val_loader = DeviceLoader(data, "val", cfg.batch_size, train=False, **kw)
    model = build_model(cfg, data.spec.num_classes, data.spec.in_channels)
    model = model.to(device, memory_format=torch.channels_last if nhwc else torch.preserve_format)
    return model, train_loader, val_loader


def _epoch(model, train_loader, val_loader, opt, cfg, epoch, scaler, dtype, progress) -> tuple[dict, bool]:
    """Train one epoch, evaluate when due; metrics with non-finite values as None, and whether it diverged."""
    start = time.perf_counter()
    m = train_one_epoch(model, train_loader, opt, cfg, epoch, scaler=scaler, dtype=dtype, progress=progress)
    due = (epoch + 1) % cfg.val_every == 0 or epoch == cfg.epochs - 1
    if math.isfinite(m["train_loss"]) and due:
        m.update(evaluate(model, val_loader, dtype=dtype))
    m.update(epoch=epoch, seconds=time.perf_counter() - start)
    diverged = not all(math.isfinite(m[k]) for k in ("train_loss", "val_loss") if k in m)
    return {k: _finite_or_none(m.get(k)) for k in EPOCH_KEYS}, diverged


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _checkpoint(result: RunResult, model: nn.Module, opt: torch.optim.Optimizer, scaler) -> dict[str, Any]:
    """Everything a resume needs, as tensors and plain types (weights_only-loadable)."""
    return {
        "run_id": result.run_id,
        "config": result.config.to_dict(),
        "epoch": len(result.epochs),  # epochs completed = the next epoch to run
        "history": result.epochs,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
    }


def _restore(result: RunResult, model: nn.Module, opt: torch.optim.Optimizer, scaler) -> int:
    """Load `checkpoint.pt` into the run; returns the epoch to continue from (0 without a checkpoint)."""
    path = result.out_dir / CHECKPOINT_NAME
    if not path.exists():
        return 0
    state = load_checkpoint(path)
    if state["run_id"] != result.run_id:
        raise ValueError(
            f"{path} belongs to run {state['run_id']}, not {result.run_id} (the configs differ); "
            "use another output folder or drop --resume"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    result.epochs = [dict(m) for m in state["history"]]
    return int(state["epoch"])


def _fresh(out_dir: Path) -> int:
    """A fresh start: drop a stale checkpoint so a later resume cannot pick it up."""
    (out_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    return 0
