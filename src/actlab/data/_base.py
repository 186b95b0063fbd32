"""Shared pieces of the data package: containers, errors, the data dir, md5, download and extraction."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ENV_DATA_DIR = "ACTLAB_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/actlab/data")
DOWNLOAD_HINT = "rerun with --download (Python: load_dataset({name!r}, download=True))"


class DataError(Exception):
    """A user-facing data problem (missing, corrupt or unsafe files); the CLI prints the message alone."""


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about a data set."""

    name: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]  # (H, W)
    classes: tuple[str, ...]


@dataclass
class ImageData:
    """A whole data set in memory: uint8 (N, C, H, W) images (float32 for mnist1d), int64 labels, on CPU.

    `val_*` is the official test split where a data set has no separate validation split.
    `mean`/`std` are per channel, computed on train, in the 0..1 scale (raw scale for float data).
    `source` says where the data came from (folder, tarball or generator), for the run record.
    """

    spec: DataSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = field(default="")


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`data_dir`, else env ACTLAB_DATA, else ~/.cache/actlab/data (expanded, not created)."""
    if data_dir is None:
        data_dir = os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser()


def make_image_data(
    spec: DataSpec,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    source: str,
) -> ImageData:
    """Wrap numpy arrays as tensors and compute the per-channel train mean/std."""
    train_x = torch.from_numpy(np.ascontiguousarray(train[0]))
    val_x = torch.from_numpy(np.ascontiguousarray(val[0]))
    train_y = torch.from_numpy(np.asarray(train[1], dtype=np.int64))
    val_y = torch.from_numpy(np.asarray(val[1], dtype=np.int64))
    mean, std = channel_stats(train_x)
    return ImageData(spec, train_x, train_y, val_x, val_y, mean, std, source)


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) images; uint8 is scaled to 0..1. Exact, float64."""
    if x.dtype == torch.uint8:  # a 256-bin histogram per channel: exact and fast
        values = torch.arange(256, dtype=torch.float64) / 255
        hist = torch.stack([torch.bincount(x[:, c].reshape(-1), minlength=256) for c in range(x.shape[1])])
        weights = hist.to(torch.float64) / hist.sum(dim=1, keepdim=True)
        mean = weights @ values
        var = weights @ values.square() - mean.square()
    else:
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        for start in range(0, x.shape[0], chunk):
            part = x[start : start + chunk].to(torch.float64)
            total += part.sum(dim=(0, 2, 3))
            total_sq += part.square().sum(dim=(0, 2, 3))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        var = total_sq / count - mean.square()
    std = var.clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


# ---------------------------------------------------------------------------------------------- files


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path, expected: str | None) -> None:
    """Raise DataError naming `path` when its md5 is not `expected` (None: nothing known, no check)."""
    if expected is None:
        return
    got = md5sum(path)
    if got != expected:
        raise DataError(
            f"{path}: md5 mismatch (expected {expected}, got {got}); the file is corrupt or incomplete. "
            f"Delete it and download it again."
        )


def fetch_url(url: str, dest: Path) -> None:
    """Copy `url` to `dest` (urllib). Tests replace this function; it is the only network access."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def download(url: str, dest: Path, md5: str | None) -> None:
    """Download `url` to `dest` through a `.part` file, md5-check it, then move it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    print(f"actlab: downloading {url} -> {dest}", flush=True)
    try:
        fetch_url(url, part)
    except OSError as err:  # URLError and HTTPError are OSErrors
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {err}") from err
    if md5 is not None and (got := md5sum(part)) != md5:
        part.unlink()
        raise DataError(
            f"{dest}: md5 mismatch after downloading {url} (expected {md5}, got {got}); "
            f"the corrupt download was deleted, try again"
        )
    part.replace(dest)


def extract_tarball(path: Path, into: Path, md5: str | None) -> None:
    """md5-check then extract a (gzipped) tarball, refusing links and paths outside `into`.

    It is unpacked in a hidden staging folder first and its top-level entries moved in after, so an
    interrupted extraction never leaves a half-filled data folder that would later load silently.
    """
    check_md5(path, md5)
    print(f"actlab: extracting {path}", flush=True)
    staging = into / f".{path.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(staging, filter="data")
        for entry in staging.iterdir():
            if not (into / entry.name).exists():
                entry.replace(into / entry.name)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{path}: cannot extract ({err}); the archive is corrupt or incomplete") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def missing_message(name: str, root: Path, expected: Sequence[str], get: str) -> str:
    """The one message for a data set that is not on disk; `get` says what to download and where to."""
    lines = [f"data set {name!r} not found under {root}. Expected one of:"]
    lines += [f"  {root / e}" for e in expected]
    lines.append(f"Fix: {DOWNLOAD_HINT.format(name=name)},")
    lines.append(f"  or download {get}.")
    lines.append(f"The data dir is the data_dir argument, else ${ENV_DATA_DIR}, else {DEFAULT_DATA_DIR}.")
    return "\n".join(lines)
