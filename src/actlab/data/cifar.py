"""CIFAR-10 and CIFAR-100 from the official python pickles, read with a restricted unpickler.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): each batch is a pickled dict with `data`, an
(n, 3072) uint8 array (1024 R, 1024 G, 1024 B, each 32×32 row-major), and `labels` (CIFAR-10) or
`fine_labels` (CIFAR-100). Rows per batch are not checked (real batches hold 10000), so small test files load.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ._base import DataError, DataSpec, ImageData, download, extract_tarball, make_image_data, missing_message

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
# md5 of the official tarballs (torchvision cifar.py); tests may patch this table.
TARBALL_MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
}
# name -> (folder, tarball, train files, test file, meta file, label key, names key, num classes)
LAYOUTS = {
    "cifar10": (
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        "labels",
        "label_names",
        10,
    ),
    "cifar100": (
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ("train",),
        "test",
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
    ),
}

# ------------------------------------------------------------------------------------ safe unpickling

# Everything a genuine CIFAR pickle references: numpy's array reconstructor (old and new module path),
# ndarray and dtype. Everything else (os.system, builtins.eval, ...) is refused before it can run.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _UnsafePickle(Exception):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals an array needs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _UnsafePickle(f"{module}.{name}")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0, np.uint8))[0]  # numpy's own, whatever its path
        return getattr(np, name)


def load_pickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle safely; keys are returned as str. Raises DataError naming the file."""
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(f, encoding="latin1").load()
    except _UnsafePickle as err:
        raise DataError(
            f"{path}: refused to load, the pickle references {err}, which a genuine CIFAR file never does "
            f"(it may be malicious). Delete it and download the data set again."
        ) from None
    except Exception as err:  # truncated or garbled pickles raise many kinds of errors
        raise DataError(f"{path}: not a readable CIFAR pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


# ---------------------------------------------------------------------------------------- validation


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (n, 3, 32, 32) uint8 images and (n,) int64 labels, structure-checked."""
    batch = load_pickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise DataError(f"{path}: missing key {key!r} (keys: {sorted(batch)})")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be an (n, 3072) uint8 array, got {type(data).__name__} {shape}")
    labels = np.asarray(batch[label_key])
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: {label_key!r} must hold {data.shape[0]} integers, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        got = f"{labels.min()}..{labels.max()}"
        raise DataError(f"{path}: labels must lie in 0..{num_classes - 1}, got {got}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_classes(path: Path, names_key: str, num_classes: int) -> tuple[str, ...]:
    meta = load_pickle(path)
    names = meta.get(names_key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise DataError(f"{path}: {names_key!r} must list {num_classes} class names")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


# ------------------------------------------------------------------------------------------- loading


def load_cifar(name: str, root: Path, download_missing: bool = False) -> ImageData:
    """Load `cifar10` or `cifar100` from `root`, extracting or downloading the tarball if needed."""
    folder, tarball, train_files, test_file, meta_file, label_key, names_key, num_classes = LAYOUTS[name]
    folder_path, tar_path = root / folder, root / tarball
    if not folder_path.is_dir():
        if not tar_path.is_file():
            if not download_missing:
                expected = [f"{folder}/ ({', '.join((*train_files, test_file, meta_file))})", tarball]
                get = f"{CIFAR_URL}{tarball} into {root} (actlab md5-checks and extracts it)"
                raise DataError(missing_message(name, root, expected, get))
            download(CIFAR_URL + tarball, tar_path, TARBALL_MD5[tarball])
        extract_tarball(tar_path, root, TARBALL_MD5[tarball])
        if not folder_path.is_dir():
            raise DataError(f"{tar_path}: extracted, but it held no {folder}/ folder")
    for file in (*train_files, test_file, meta_file):
        if not (folder_path / file).is_file():
            raise DataError(f"{folder_path}: missing {file!r}; delete the folder and extract {tarball} again")
    train = [_read_batch(folder_path / f, label_key, num_classes) for f in train_files]
    test = _read_batch(folder_path / test_file, label_key, num_classes)
    classes = _read_classes(folder_path / meta_file, names_key, num_classes)
    spec = DataSpec(name, num_classes, 3, (32, 32), classes)
    train_xy = (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]))
    return make_image_data(spec, train_xy, test, source=str(folder_path))
