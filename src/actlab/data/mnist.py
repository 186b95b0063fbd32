"""MNIST and Fashion-MNIST from the four official gzipped IDX files, parsed with numpy.

IDX: big-endian; magic = 0x00 0x00 type ndim (type 0x08 = uint8), so images are 2051 (dims n, 28, 28) and
labels 2049 (dim n); then one int32 per dim, then the data.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ._base import DataError, DataSpec, ImageData, download, make_image_data, missing_message

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# name -> (folders searched in order (ours, then torchvision's), base URL, md5 per file in FILES order)
SOURCES = {
    "mnist": (
        ("mnist", "MNIST/raw"),
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion_mnist": (
        ("fashion_mnist", "FashionMNIST/raw"),
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
}
CLASSES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}  # fmt: skip
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one gzipped IDX file of uint8 data; check its magic and that its length matches its dims."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err}); it is corrupt or truncated") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise DataError(f"{path}: bad IDX magic number {got} (expected {magic}); not the expected MNIST file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(dims)):
        need, have = int(np.prod(dims)), len(raw) - header
        raise DataError(f"{path}: IDX dims {dims} need {need} bytes of data, the file holds {have}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_split(folder: Path, images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / images_file, IMAGES_MAGIC)
    labels = read_idx(folder / labels_file, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{folder / images_file}: images must be 28×28, got {images.shape[1:]}")
    if labels.shape != images.shape[:1]:
        raise DataError(f"{folder / labels_file}: {labels.shape[0]} labels for {images.shape[0]} images")
    if labels.size and labels.max() > 9:
        raise DataError(f"{folder / labels_file}: labels must lie in 0..9, got max {labels.max()}")
    return images[:, None].copy(), labels.astype(np.int64)


def find_folder(name: str, root: Path) -> Path | None:
    """The first searched folder that holds all four files, else None."""
    for sub in SOURCES[name][0]:
        if all((root / sub / f).is_file() for f in FILES):
            return root / sub
    return None


def load_mnist(name: str, root: Path, download_missing: bool = False) -> ImageData:
    """Load `mnist` or `fashion_mnist` as (N, 1, 28, 28) uint8; val is the official 10k test split."""
    folders, base_url, md5s = SOURCES[name]
    folder = find_folder(name, root)
    if folder is None:
        if not download_missing:
            expected = [f"{sub}/ ({', '.join(FILES)})" for sub in folders]
            get = f"{base_url}<file> for each of the four files into {root / folders[0]}"
            raise DataError(missing_message(name, root, expected, get))
        folder = root / folders[0]
        for file, md5 in zip(FILES, md5s, strict=True):
            if not (folder / file).is_file():
                download(base_url + file, folder / file, md5)
    train = _read_split(folder, FILES[0], FILES[1])
    test = _read_split(folder, FILES[2], FILES[3])
    spec = DataSpec(name, 10, 1, (28, 28), CLASSES[name])
    return make_image_data(spec, train, test, source=str(folder))
