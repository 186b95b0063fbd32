"""Name -> loader table, `list_datasets` and `load_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._base import ImageData, resolve_data_dir
from .cifar import load_cifar
from .embedded import load_digits, load_mnist1d
from .imagefolder import load_imagefolder
from .mnist import load_mnist

# loader(root, download, image_size) -> ImageData; image_size is None unless the data set is resizable
_Loader = Callable[[Path, bool, int | None], ImageData]
_LOADERS: dict[str, _Loader] = {
    "digits": lambda root, dl, size: load_digits(),
    "mnist1d": lambda root, dl, size: load_mnist1d(),
    "mnist": lambda root, dl, size: load_mnist("mnist", root, dl),
    "fashion_mnist": lambda root, dl, size: load_mnist("fashion_mnist", root, dl),
    "cifar10": lambda root, dl, size: load_cifar("cifar10", root, dl),
    "cifar100": lambda root, dl, size: load_cifar("cifar100", root, dl),
    "imagenette": lambda root, dl, size: load_imagefolder("imagenette", root, size, dl),
    "imagewoof": lambda root, dl, size: load_imagefolder("imagewoof", root, size, dl),
}
RESIZABLE = ("imagenette", "imagewoof")
NATIVE_SIZE = {"digits": 8, "mnist": 28, "fashion_mnist": 28, "cifar10": 32, "cifar100": 32}


def list_datasets() -> list[str]:
    """Names accepted by `load_dataset`, sorted."""
    return sorted(_LOADERS)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    image_size: int | None = None,
) -> ImageData:
    """Load a whole data set into CPU memory.

    Args:
        name: one of `list_datasets()`.
        data_dir: root holding the official files; default env ACTLAB_DATA, else ~/.cache/actlab/data.
        download: fetch missing files from the official URL (md5-checked) instead of raising DataError.
        image_size: side of the square images for imagenette/imagewoof (default 128); other data sets
            accept only None or their native size (mnist1d: None).

    Raises:
        ValueError: unknown name or unsupported image_size.
        DataError: files missing, corrupt or unsafe; the message says what to do.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(list_datasets())}")
    if image_size is not None and name not in RESIZABLE:
        if image_size != NATIVE_SIZE.get(name):
            raise ValueError(
                f"image_size={image_size!r} is not supported for {name!r}; only {', '.join(RESIZABLE)} "
                f"are resized (leave image_size unset)"
            )
        image_size = None
    if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    return _LOADERS[name](resolve_data_dir(data_dir), download, image_size)
