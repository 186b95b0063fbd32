"""DeviceLoader: the whole split lives on the device; shuffling and augmentation are whole-batch ops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from ._base import ImageData
from .augment import AugPolicy, apply_policy, draw_params, epoch_generator, parse_augment


class DeviceLoader:
    """Batches of normalised float32 images and int64 labels from one split, on `device`.

    Each epoch's order and augmentation are a pure function of (seed, epoch), drawn on the CPU, so runs
    are resume-exact and agree across devices. Iterating uses the current epoch and then advances it by
    one; call `set_epoch(e)` before iterating to pick the epoch explicitly (e.g. on resume).

    Args:
        data: from `load_dataset`.
        split: "train" or "val".
        batch_size: samples per batch; the last batch is smaller unless `drop_last`.
        device: where the split and the batches live.
        train: shuffle and augment; False gives the split in order, unaugmented (`augment` is ignored).
        seed: non-negative int; with the epoch it fixes order and augmentation.
        drop_last: drop the last incomplete batch.
        augment: "auto" (per data set, see `augment.AUTO_POLICIES`), None/"none", "flip", "crop", "crop+flip".
        channels_last: return batches in channels_last memory format.
    """

    def __init__(
        self,
        data: ImageData,
        split: Literal["train", "val"],
        batch_size: int,
        *,
        device: str | torch.device = "cpu",
        train: bool,
        seed: int,
        drop_last: bool = False,
        augment: str | None = "auto",
        channels_last: bool = False,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        policy = parse_augment(augment, data.spec)  # validate the name even when train=False
        self.spec = data.spec
        self.device = torch.device(device)
        x, y = (data.train_x, data.train_y) if split == "train" else (data.val_x, data.val_y)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.num_samples = int(y.shape[0])
        self.batch_size, self.train, self.seed, self.drop_last = batch_size, train, seed, drop_last
        self.policy = policy if train else AugPolicy()
        self.channels_last = channels_last
        self.epoch = 0
        if drop_last and len(self) == 0:
            raise ValueError(f"drop_last, batch_size {batch_size} > {self.num_samples} samples: no batches")
        # (x * 1/255 - mean) / std  ==  x * a - b, per channel
        scale = 1 / 255 if x.dtype == torch.uint8 else 1.0
        mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
        self._mul, self._sub = (scale / std).to(self.device), (mean / std).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration produce epoch `epoch`."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1  # claimed now, not at the first next()
        if not self.train:
            return self._batches(None, {})
        gen = epoch_generator(self.seed, epoch)
        order = torch.randperm(self.num_samples, generator=gen).to(self.device)
        params = {k: v.to(self.device) for k, v in draw_params(self.policy, self.num_samples, gen).items()}
        return self._batches(order, params)

    def _batches(
        self, order: torch.Tensor | None, params: dict[str, torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(len(self)):
            part = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[part] if order is not None else part
            x = self.x[idx].float().mul_(self._mul).sub_(self._sub)  # (B, C, H, W) float32
            if self.policy.active:
                x = apply_policy(x, self.policy, {k: v[part] for k, v in params.items()})
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.y[idx]
