"""Whole-batch augmentation on the device (airbench style): per-sample random parameters are drawn for a
whole epoch at once from a CPU `torch.Generator`, then applied batch by batch with gather / grid_sample.

Policies: `translate` = random crop after *reflect* padding (airbench pads with reflect too), `resized` =
random-resized crop (area scale 0.35–1, aspect 3/4–4/3) back to the stored size, plus horizontal flip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ._base import DataSpec

AUGMENT_NAMES = ("auto", "none", "flip", "crop", "crop+flip")


@dataclass(frozen=True)
class AugPolicy:
    """What to do to a training batch."""

    crop: Literal["none", "translate", "resized"] = "none"
    pad: int = 0  # translate: pixels of reflect padding on each side
    flip: bool = False  # horizontal flip with p = 0.5
    scale: tuple[float, float] = (0.35, 1.0)  # resized: fraction of the image area kept
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # resized: aspect ratio range (log-uniform)

    @property
    def active(self) -> bool:
        return self.crop != "none" or self.flip


# "auto" per data set; unknown names get no augmentation
AUTO_POLICIES = {
    "cifar10": AugPolicy("translate", pad=4, flip=True),
    "cifar100": AugPolicy("translate", pad=4, flip=True),
    "mnist": AugPolicy("translate", pad=2),
    "fashion_mnist": AugPolicy("translate", pad=2),
    "digits": AugPolicy("translate", pad=1),
    "imagenette": AugPolicy("resized", flip=True),
    "imagewoof": AugPolicy("resized", flip=True),
    "mnist1d": AugPolicy(),
}


def parse_augment(augment: str | None, spec: DataSpec) -> AugPolicy:
    """Turn an `augment` name into the policy for this data set; ValueError names a bad value."""
    if augment is None or augment == "none":
        return AugPolicy()
    if augment not in AUGMENT_NAMES:
        raise ValueError(f"unknown augment {augment!r}; valid: None, {', '.join(AUGMENT_NAMES)}")
    auto = AUTO_POLICIES.get(spec.name, AugPolicy())
    if augment == "auto":
        return auto
    if augment == "flip":
        return AugPolicy(flip=True)
    crop = auto
    if crop.crop == "none":  # no crop defined for this data set: translate by ~1/8 of the side
        side = min(spec.image_size)
        if side < 8:
            raise ValueError(f"augment {augment!r}: no crop for {spec.name!r} of size {spec.image_size}")
        crop = AugPolicy("translate", pad=max(1, side // 8))
    return AugPolicy(crop.crop, crop.pad, augment == "crop+flip", crop.scale, crop.ratio)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, epoch), well mixed by numpy's SeedSequence."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    gen = torch.Generator()
    gen.manual_seed(int(state) & (2**63 - 1))
    return gen


def draw_params(policy: AugPolicy, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random parameters for n samples: `flip` (n,) bool, `shift` (n, 2) int64 or `box` (n, 4) float32."""
    params = {}
    if policy.flip:
        params["flip"] = torch.rand(n, generator=gen) < 0.5
    if policy.crop == "translate":
        params["shift"] = torch.randint(0, 2 * policy.pad + 1, (n, 2), generator=gen)
    elif policy.crop == "resized":
        area = torch.empty(n).uniform_(*policy.scale, generator=gen)
        lo, hi = math.log(policy.ratio[0]), math.log(policy.ratio[1])
        log_ratio = torch.empty(n).uniform_(lo, hi, generator=gen)
        w = (area * log_ratio.exp()).sqrt().clamp(max=1.0)  # box width / image width
        h = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        centre = torch.rand(n, 2, generator=gen) * 2 - 1  # where the box sits, in -1..1 of the free room
        params["box"] = torch.stack([w, h, centre[:, 0] * (1 - w), centre[:, 1] * (1 - h)], dim=1)
    return params


def apply_policy(x: torch.Tensor, policy: AugPolicy, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Augment a float batch (B, C, H, W) with this batch's slice of `draw_params`."""
    if policy.crop == "translate":
        x = translate(x, params["shift"], policy.pad)
    elif policy.crop == "resized":
        return resized_crop(x, params["box"], params.get("flip"))
    if policy.flip:
        x = torch.where(params["flip"].view(-1, 1, 1, 1), x.flip(3), x)
    return x


def translate(x: torch.Tensor, shift: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-sample random crop of the reflect-padded batch: shift (B, 2) = (dy, dx) in 0..2*pad."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (B, C, H+2p, W+2p)
    rows = shift[:, 0:1] + torch.arange(h, device=x.device)  # (B, H)
    cols = shift[:, 1:2] + torch.arange(w, device=x.device)  # (B, W)
    padded = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))  # (B, C, H, W+2p)
    return padded.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # (B, C, H, W)


def resized_crop(x: torch.Tensor, box: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """Random-resized crop via one affine grid_sample; box (B, 4) = (w, h, cx, cy) in normalised units."""
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device, dtype=x.dtype)
    sign = 1.0 if flip is None else 1.0 - 2.0 * flip.to(x.dtype)  # a flip is a negative x scale
    theta[:, 0, 0] = box[:, 0] * sign
    theta[:, 1, 1] = box[:, 1]
    theta[:, 0, 2] = box[:, 2]
    theta[:, 1, 2] = box[:, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
