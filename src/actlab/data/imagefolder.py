"""Imagenette and Imagewoof (fastai): `train|val/<wnid>/*.JPEG` trees, decoded once and cached as uint8.

Each image is resized so its shorter side is `image_size`, then centre-cropped to a square, and the
result is cached in `<root>/<variant>_<size>px.npz`; later loads read only the cache.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ._base import DataError, DataSpec, ImageData, download, extract_tarball, make_image_data, missing_message

BASE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/"
DEFAULT_SIZE = 128
# Folder names searched in order: v2 (current 70/30 split) full, 320 px, 160 px, then v1 (the old split).
VARIANTS = {
    name: (f"{name}2", f"{name}2-320", f"{name}2-160", name, f"{name}-320", f"{name}-160")
    for name in ("imagenette", "imagewoof")
}
# Tarball md5s known from torchvision's imagenette.py; the others are not checked (None).
TARBALL_MD5: dict[str, str | None] = {
    "imagenette2.tgz": "fe2fc210e6bb7c5664d602c3cd71e612",
    "imagenette2-320.tgz": "3df6f0d01a2c9592104656642f5e78a3",
    "imagenette2-160.tgz": "e793b78cc4c9e9a4ccc0c1155377a412",
}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def _has_tree(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "val").is_dir()


def _locate(name: str, root: Path, image_size: int, download_missing: bool) -> Path:
    """The folder of the first variant present (extracting its tarball if only that is there)."""
    variants = VARIANTS[name]
    for variant in variants:
        if _has_tree(root / variant):
            return root / variant
    for variant in variants:
        if (root / f"{variant}.tgz").is_file():
            return _extract(root, variant)
    if not download_missing:
        expected = [f"{v}/ (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) or {v}.tgz" for v in variants]
        get = f"{BASE_URL}{variants[1]}.tgz (or {variants[0]}.tgz) into {root} (actlab extracts it)"
        raise DataError(missing_message(name, root, expected, get))
    # 320 px is enough for any size up to 320 and a quarter of the full archive
    variant = variants[1] if image_size <= 320 else variants[0]
    download(BASE_URL + f"{variant}.tgz", root / f"{variant}.tgz", TARBALL_MD5.get(f"{variant}.tgz"))
    return _extract(root, variant)


def _extract(root: Path, variant: str) -> Path:
    tarball = root / f"{variant}.tgz"
    extract_tarball(tarball, root, TARBALL_MD5.get(tarball.name))
    if not _has_tree(root / variant):
        raise DataError(f"{tarball}: extracted, but it held no {variant}/train and {variant}/val folders")
    return root / variant


def _list_split(folder: Path, split: str, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for index, wnid in enumerate(classes):
        found = sorted(p for p in (folder / split / wnid).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"{folder / split}: no images found (expected <wnid>/*.JPEG)")
    return files, np.asarray(labels, dtype=np.int64)


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image -> (3, size, size) uint8: shorter side resized to `size`, then centre-cropped."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale that still covers `size`
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            img = img.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot decode image ({err}); the file is corrupt or truncated") from None


def _decode_all(files: list[Path], size: int) -> np.ndarray:
    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:  # Pillow frees the GIL
        for i, arr in enumerate(pool.map(lambda p: decode_image(p, size), files)):
            out[i] = arr
    return out


def _build_cache(folder: Path, cache: Path, size: int, n_files: int) -> None:
    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    val_classes = sorted(p.name for p in (folder / "val").iterdir() if p.is_dir())
    if not classes or val_classes != classes:
        raise DataError(f"{folder}: train/ and val/ must hold the same non-empty set of <wnid> folders")
    train_files, train_y = _list_split(folder, "train", classes)
    val_files, val_y = _list_split(folder, "val", classes)
    n_images = len(train_files) + len(val_files)
    print(f"actlab: decoding {n_images} images of {folder} at {size} px (once, then cached)", flush=True)
    arrays = {
        "train_x": _decode_all(train_files, size),
        "train_y": train_y,
        "val_x": _decode_all(val_files, size),
        "val_y": val_y,
        "classes": np.asarray(classes),
        "n_files": np.asarray(n_files),
    }
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.glob("*/*/*") if p.suffix.lower() in IMAGE_SUFFIXES)


def load_imagefolder(
    name: str, root: Path, image_size: int | None = None, download_missing: bool = False
) -> ImageData:
    """Load `imagenette` or `imagewoof` as (N, 3, S, S) uint8, S = image_size (default 128)."""
    size = DEFAULT_SIZE if image_size is None else image_size
    folder = _locate(name, root, size, download_missing)
    if folder.name.endswith("-160") and size > 160:
        warnings.warn(f"{folder} holds 160 px images; image_size {size} upsamples them", stacklevel=3)
    cache = root / f"{folder.name}_{size}px.npz"
    n_files = _count_files(folder)
    if not _cache_ok(cache, n_files):
        _build_cache(folder, cache, size, n_files)
    try:
        with np.load(cache, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise DataError(f"{cache}: unreadable cache ({err}); delete it to rebuild") from None
    classes = tuple(str(c) for c in arrays["classes"])
    spec = DataSpec(name, len(classes), 3, (size, size), classes)
    train, val = (arrays["train_x"], arrays["train_y"]), (arrays["val_x"], arrays["val_y"])
    return make_image_data(spec, train, val, source=str(folder))


def _cache_ok(cache: Path, n_files: int) -> bool:
    """A cache is reused only if it was built from as many image files as the folder now holds."""
    if not cache.is_file():
        return False
    try:
        with np.load(cache, allow_pickle=False) as npz:
            return int(npz["n_files"]) == n_files
    except (OSError, ValueError, KeyError, EOFError):
        return False
