"""Figures of a sweep as PNG bytes (optionally saved): training curves, final accuracy, speed, activations.

matplotlib with the Agg backend, so it works headless; one colour per activation across every figure.
Accuracies are stored as fractions and drawn in percent. Activation curves come in as arrays from the caller,
so this module never needs torch.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from actlab.analysis.stats import run_epoch_seconds
from actlab.results import atomic_write_bytes

CURVE_PANELS = (
    ("train_acc", "train accuracy (%)"),
    ("val_acc", "val accuracy (%)"),
    ("train_loss", "train loss"),
    ("val_loss", "val loss"),
)
DPI = 100


def act_colors(acts: Sequence[str]) -> dict[str, Any]:
    """A stable colour per activation (sorted names over the tab10 cycle); every plot takes `colors=` so that
    one mapping can serve a whole report."""
    cmap = plt.get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(sorted(set(acts)))}


def _finish(fig, path: str | os.PathLike | None) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        atomic_write_bytes(path, data)
    return data


def _by_act(runs: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    out: dict[str, list] = defaultdict(list)
    for r in runs:
        out[r["act"]].append(r)
    return dict(sorted(out.items()))


def training_curves(
    runs: Sequence[Mapping],
    epochs: Sequence[Mapping],
    *,
    band: str = "sd",
    statuses: Sequence[str] = ("done",),
    title: str | None = None,
    path: str | os.PathLike | None = None,
    colors: Mapping[str, Any] | None = None,
) -> bytes:
    """Train/val accuracy and loss per epoch: mean over seeds with a band (`sd`: +-1 sd, `minmax`).

    Args:
        runs: run rows (run_id, act, status); only `statuses` are drawn (diverged losses swamp the axes).
        epochs: epoch rows (run_id, epoch, train_acc, val_acc, train_loss, val_loss).
        band: "sd" or "minmax".
    """
    if band not in ("sd", "minmax"):
        raise ValueError(f"band={band!r}; valid: 'sd', 'minmax'")
    per_run: dict[str, list] = defaultdict(list)
    for e in epochs:
        per_run[e["run_id"]].append(e)
    kept = [r for r in runs if r.get("status") in statuses]
    colors = colors or act_colors([r["act"] for r in runs])
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS, strict=True):
        scale = 100.0 if key.endswith("acc") else 1.0
        for act, act_runs in _by_act(kept).items():
            xs, mean, lo, hi = _aggregate([per_run.get(r["run_id"], []) for r in act_runs], key, band)
            if len(xs) == 0:
                continue
            ax.plot(xs, scale * mean, color=colors[act], label=f"{act} (n={len(act_runs)})")
            ax.fill_between(xs, scale * lo, scale * hi, color=colors[act], alpha=0.2, linewidth=0)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    if handles:
        axes[0, 1].legend(handles, labels, fontsize=8)
    band_txt = "±1 sd" if band == "sd" else "min–max"
    fig.suptitle(f"{title + ': ' if title else ''}mean over seeds, band = {band_txt}", fontsize=11)
    return _finish(fig, path)


def _aggregate(run_epochs: list[list[Mapping]], key: str, band: str):
    """Epoch axis and mean/low/high of `key` across runs (runs of different lengths are allowed)."""
    xs = sorted({e["epoch"] for es in run_epochs for e in es if e.get(key) is not None})
    if not xs:
        return np.array([]), None, None, None
    col = {x: i for i, x in enumerate(xs)}
    m = np.full((len(run_epochs), len(xs)), np.nan)
    for i, es in enumerate(run_epochs):
        for e in es:
            if e.get(key) is not None and e["epoch"] in col:
                m[i, col[e["epoch"]]] = e[key]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        mean = np.nanmean(m, axis=0)
        if band == "sd":
            sd = np.nan_to_num(np.nanstd(m, axis=0, ddof=1)) if len(m) > 1 else np.zeros(len(xs))
            return np.array(xs), mean, mean - sd, mean + sd
        return np.array(xs), mean, np.nanmin(m, axis=0), np.nanmax(m, axis=0)


def final_accuracy(
    runs: Sequence[Mapping],
    *,
    metric: str = "best_val_acc",
    title: str | None = None,
    path: str | os.PathLike | None = None,
    colors: Mapping[str, Any] | None = None,
) -> bytes:
    """Box plot of the metric per activation over seeds with every seed drawn as a point; the tick label
    counts diverged/failed runs, which have no accuracy to draw."""
    groups = _by_act(runs)
    colors = colors or act_colors(list(groups))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 2), 4.2))
    labels = []
    for i, (act, rs) in enumerate(groups.items(), start=1):
        vals = [100 * r[metric] for r in rs if r.get("status") == "done" and _finite(r.get(metric))]
        bad = sum(r.get("status") in ("diverged", "failed") for r in rs)
        labels.append(f"{act}\nn={len(vals)}" + (f", {bad} div/fail" if bad else ""))
        if vals:
            ax.boxplot(
                [vals], positions=[i], widths=0.5, showfliers=False, medianprops={"color": colors[act]}
            )
            jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(vals))
            ax.scatter(i + jitter, vals, color=colors[act], s=18, zorder=3, edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(1, len(groups) + 1), labels, fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{title + ': ' if title else ''}{metric} per seed", fontsize=11)
    return _finish(fig, path)


def epoch_seconds(
    runs: Sequence[Mapping],
    *,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    colors: Mapping[str, Any] | None = None,
) -> bytes:
    """Seconds per epoch per activation: bar = median over runs, points = each run's median epoch time."""
    groups = _by_act(runs)
    colors = colors or act_colors(list(groups))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 2), 4.0))
    for i, (act, rs) in enumerate(groups.items()):
        secs = [s for s in map(run_epoch_seconds, rs) if s is not None]
        if not secs:
            continue
        ax.bar(i, float(np.median(secs)), color=colors[act], alpha=0.6, width=0.6)
        ax.scatter(
            i + np.random.default_rng(i).uniform(-0.15, 0.15, len(secs)), secs, color="black", s=12, zorder=3
        )
    ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
    ax.set_ylabel("seconds per epoch")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{title + ': ' if title else ''}time per epoch (median over runs)", fontsize=11)
    return _finish(fig, path)


def activation_curves(
    curves: Mapping[str, tuple[Any, Any, Any]],
    *,
    path: str | os.PathLike | None = None,
    colors: Mapping[str, Any] | None = None,
) -> bytes:
    """Activation functions and their derivatives side by side, from `{name: (x, y, dy)}` arrays."""
    colors = colors or act_colors(list(curves))
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (x, y, dy) in sorted(curves.items()):
        ax_f.plot(np.asarray(x), np.asarray(y), color=colors[name], label=name)
        ax_d.plot(np.asarray(x), np.asarray(dy), color=colors[name], label=name)
    for ax, t in ((ax_f, "f(x)"), (ax_d, "f'(x)")):
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.grid(alpha=0.3)
        ax.set_title(t)
        ax.set_xlabel("x")
    ax_f.legend(fontsize=8)
    return _finish(fig, path)


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))
