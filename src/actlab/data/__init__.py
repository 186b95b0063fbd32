"""Data sets as whole tensors, and a device-resident loader with whole-batch augmentation.

`load_dataset(name)` returns an `ImageData` (uint8 images on the CPU, float32 for mnist1d);
`DeviceLoader` moves one split to the device and yields normalised float32 batches.
"""

from ._base import DataError, DataSpec, ImageData, resolve_data_dir
from .loader import DeviceLoader
from .registry import list_datasets, load_dataset

__all__ = [
    "DataError",
    "DataSpec",
    "DeviceLoader",
    "ImageData",
    "list_datasets",
    "load_dataset",
    "resolve_data_dir",
]
