"""Data sets that need no download: scikit-learn's `digits` and the generated `mnist1d`."""

from __future__ import annotations

import random

import numpy as np

from ._base import DataSpec, ImageData, make_image_data

DIGIT_CLASSES = tuple(str(i) for i in range(10))


def load_digits(val_fraction: float = 0.2, split_seed: int = 0) -> ImageData:
    """sklearn's 1797 real 8×8 handwritten digits as (N, 1, 8, 8) uint8 (0..16 scaled to 0..255).

    The split is fixed and stratified (20 % val, seed 0), so every run sees the same one: 1437 train, 360 val.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    tx, vx, ty, vy = train_test_split(x, y, test_size=val_fraction, random_state=split_seed, stratify=y)
    spec = DataSpec("digits", 10, 1, (8, 8), DIGIT_CLASSES)
    return make_image_data(spec, (tx, ty), (vx, vy), source="sklearn.datasets.load_digits")


def load_mnist1d() -> ImageData:
    """MNIST-1D generated offline with the package defaults (5000 samples, 4000 train / 1000 val, seed 42).

    Shape (N, 1, 1, 40) float32: one channel, an image of height 1 and width 40, so 2-D models and the
    loader work unchanged; use `x.squeeze(2)` for a (N, 1, 40) sequence. The values are already centred
    and scaled by the generator; `mean`/`std` are in that raw scale.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:  # make_dataset seeds the global RNGs; put them back so loading has no side effects
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    spec = DataSpec("mnist1d", 10, 1, (1, int(args.final_seq_length)), DIGIT_CLASSES)
    train, val = (_as_image(data["x"]), data["y"]), (_as_image(data["x_test"]), data["y_test"])
    return make_image_data(spec, train, val, source="mnist1d.data.make_dataset(get_dataset_args())")


def _as_image(seq: np.ndarray) -> np.ndarray:
    """(N, L) sequences -> (N, 1, 1, L) float32."""
    return np.asarray(seq, dtype=np.float32)[:, None, None, :]
