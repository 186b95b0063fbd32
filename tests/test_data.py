"""actlab.data: every loader on tiny files in the official formats, safety, download, DeviceLoader."""

from __future__ import annotations

import gzip
import os
import pickle
import random
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import actlab.data as data
from actlab.data import (
    DataError,
    DataSpec,
    DeviceLoader,
    ImageData,
    _base,
    cifar,
    imagefolder,
    list_datasets,
    load_dataset,
    mnist,
)
from actlab.data.augment import AugPolicy, apply_policy, parse_augment

RNG = np.random.default_rng(0)

# ------------------------------------------------------------------------------ writers (official formats)


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)  # < 3 pickles bytes via _codecs.encode; py2 files never need it


def cifar_batch(n: int, label_key: str, num_classes: int) -> dict:
    return {
        "batch_label": "testing batch",
        label_key: [int(v) for v in RNG.integers(0, num_classes, n)],
        "data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def py2_pickle(batch: dict) -> bytes:
    """A batch as Python 2 cPickle (protocol 2) writes it, like the real CIFAR-10 files: py2 `str`
    opcodes for keys and array bytes, and the old `numpy.core.multiarray._reconstruct` path."""

    def s(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    data, labels = batch["data"], batch["labels"]
    out = b"\x80\x02}(" + s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", data.shape[0]) + b"M\x00\x0c\x86"  # (1, (n, 3072),
    out += b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R(K\x03" + s(b"|")  # dtype('u1'),
    out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + s(data.tobytes()) + b"tb"  # False, data)
    out += s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return out + s(b"batch_label") + s(batch["batch_label"].encode()) + b"u."


def write_cifar10(root: Path, rows: int = 3) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for file in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / file).write_bytes(py2_pickle(cifar_batch(rows, "labels", 10)))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_pickle(
        folder / "batches.meta", {"label_names": names, "num_cases_per_batch": rows, "num_vis": 3072}
    )
    return folder


def write_cifar100(root: Path, rows: int = 4) -> Path:
    folder = root / "cifar-100-python"
    for split in ("train", "test"):
        batch = cifar_batch(rows, "fine_labels", 100)
        batch["coarse_labels"] = [0] * rows
        write_pickle(folder / split, batch)
    names = [f"class_{i}" for i in range(100)]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": names[:20]})
    return folder


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    dims = np.asarray(array.shape, dtype=">i4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, sub: str = "mnist", n_train: int = 12, n_test: int = 6) -> Path:
    folder = root / sub
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [
        (RNG.integers(0, 256, (n_train, 28, 28)), 2051),
        (RNG.integers(0, 10, n_train), 2049),
        (RNG.integers(0, 256, (n_test, 28, 28)), 2051),
        (RNG.integers(0, 10, n_test), 2049),
    ]
    for file, (array, magic) in zip(mnist.FILES, arrays, strict=True):
        (folder / file).write_bytes(gzip.compress(idx_bytes(array, magic)))
    return folder


WNIDS = ("n02086240", "n02087394")


def write_jpeg_tree(root: Path, variant: str = "imagewoof2-160", per_class: int = 3) -> Path:
    folder = root / variant
    for split in ("train", "val"):
        for wnid in WNIDS:
            (folder / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                w, h = int(RNG.integers(20, 60)), int(RNG.integers(20, 60))
                pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / split / wnid / f"{wnid}_{i}.JPEG", quality=90)
    return folder


def make_tarball(folder: Path, tarball: Path) -> str:
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(folder)
    return _base.md5sum(tarball)


class Evil:
    """A pickle payload that would create `marker` if it ever ran."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "os.system":
            return (os.system, (f"touch {self.marker}",))
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits")


# ------------------------------------------------------------------------------------- names and dirs


def test_list_datasets():
    names = list_datasets()
    assert names == sorted(names)
    expected = {
        "cifar10",
        "cifar100",
        "mnist",
        "fashion_mnist",
        "imagenette",
        "imagewoof",
        "digits",
        "mnist1d",
    }
    assert set(names) == expected
    assert set(data.__all__) >= {"DataSpec", "ImageData", "DeviceLoader", "DataError", "load_dataset"}


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar11'.*cifar10, cifar100"):
        load_dataset("cifar11")


def test_data_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    assert data.resolve_data_dir(None) == Path("~/.cache/actlab/data").expanduser()
    monkeypatch.setenv("ACTLAB_DATA", str(tmp_path))
    assert data.resolve_data_dir(None) == tmp_path
    assert data.resolve_data_dir(tmp_path / "x") == tmp_path / "x"


def test_image_size_only_for_resizable_sets():
    with pytest.raises(ValueError, match="image_size=64"):
        load_dataset("digits", image_size=64)
    assert load_dataset("digits", image_size=8).spec.image_size == (8, 8)


# ------------------------------------------------------------------------------------------------ CIFAR


def test_cifar10_folder(tmp_path):
    folder = write_cifar10(tmp_path)
    d = load_dataset("cifar10", tmp_path)
    assert d.spec == DataSpec("cifar10", 10, 3, (32, 32), d.spec.classes)
    assert d.spec.classes[0] == "airplane" and len(d.spec.classes) == 10
    assert d.train_x.shape == (15, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.val_x.shape == (3, 3, 32, 32) and d.val_y.dtype == torch.int64
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="latin1")  # py2 format
    # row layout: 1024 R, then G, then B, each 32×32 row-major
    assert np.array_equal(d.train_x[0, 1].numpy(), first["data"][0, 1024:2048].reshape(32, 32))
    assert d.train_y[:3].tolist() == first["labels"]
    assert len(d.mean) == len(d.std) == 3 and all(0 < m < 1 for m in d.mean)


def test_cifar100_fine_labels(tmp_path):
    folder = write_cifar100(tmp_path)
    d = load_dataset("cifar100", tmp_path)
    assert d.spec.num_classes == 100 and d.spec.classes[5] == "class_5"
    assert d.train_x.shape == (4, 3, 32, 32)
    assert d.train_y.tolist() == pickle.loads((folder / "train").read_bytes())["fine_labels"]


def test_cifar_tarball_is_md5_checked_then_extracted(tmp_path, monkeypatch):
    md5 = make_tarball(write_cifar10(tmp_path), tmp_path / "cifar-10-python.tar.gz")
    monkeypatch.setitem(cifar.TARBALL_MD5, "cifar-10-python.tar.gz", "0" * 32)
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: md5 mismatch"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "cifar-10-batches-py").exists()
    monkeypatch.setitem(cifar.TARBALL_MD5, "cifar-10-python.tar.gz", md5)
    assert load_dataset("cifar10", tmp_path).train_x.shape == (15, 3, 32, 32)
    assert (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()


@pytest.mark.parametrize("how", ["os.system", "exec"])
def test_malicious_pickle_is_refused_without_running(tmp_path, how):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    write_pickle(folder / "data_batch_3", {"data": Evil(marker, how), "labels": [0]})
    with pytest.raises(DataError, match=r"data_batch_3: refused to load.*(posix|os|builtins)\.(system|exec)"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_allows_only_numpy_arrays(tmp_path):
    path = tmp_path / "ok"
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    write_pickle(path, {b"data": x, "labels": [1, 2]})
    loaded = cifar.load_pickle(path)
    assert set(loaded) == {"data", "labels"} and loaded["data"].shape == (2, 3)
    with open(path, "rb") as f:
        unpickler = cifar.RestrictedUnpickler(f)
        assert unpickler.find_class("numpy.core.multiarray", "_reconstruct") is np.ndarray.__reduce__(x)[0]
        for module, name in [
            ("builtins", "eval"),
            ("numpy", "load"),
            ("subprocess", "Popen"),
            ("os", "system"),
        ]:
            with pytest.raises(cifar._UnsafePickle):
                unpickler.find_class(module, name)


def batch(shape: tuple[int, ...], dtype: type, labels: list[int]) -> dict:
    return {"data": np.zeros(shape, dtype), "labels": labels}


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "data_batch_2: not a readable CIFAR pickle"),
        (lambda p: write_pickle(p, batch((2, 3000), np.uint8, [0, 1])), r"data_batch_2.*\(n, 3072\)"),
        (lambda p: write_pickle(p, batch((2, 3072), np.float32, [0, 1])), "uint8"),
        (lambda p: write_pickle(p, batch((3072,), np.uint8, [0])), "uint8 array"),
        (lambda p: write_pickle(p, batch((2, 3072), np.uint8, [0, 10])), r"0\.\.9, got 0\.\.10"),
        (lambda p: write_pickle(p, batch((2, 3072), np.uint8, [0])), "must hold 2"),
        (lambda p: write_pickle(p, {"data": np.zeros((2, 3072), np.uint8)}), "missing key 'labels'"),
        (lambda p: write_pickle(p, [1, 2]), "expected a pickled dict"),
        (lambda p: p.unlink(), "missing 'data_batch_2'"),
    ],
)
def test_corrupt_cifar_names_the_file(tmp_path, corrupt, message):
    folder = write_cifar10(tmp_path)
    corrupt(folder / "data_batch_2")
    with pytest.raises(DataError, match=message) as err:
        load_dataset("cifar10", tmp_path)
    assert str(folder) in str(err.value)


# ------------------------------------------------------------------------------------------------ MNIST


@pytest.mark.parametrize(
    "name, sub", [("mnist", "mnist"), ("fashion_mnist", "fashion_mnist"), ("mnist", "MNIST/raw")]
)
def test_mnist_idx(tmp_path, name, sub):
    folder = write_mnist(tmp_path, sub)
    d = load_dataset(name, tmp_path)
    assert d.train_x.shape == (12, 1, 28, 28) and d.train_x.dtype == torch.uint8
    assert d.val_x.shape == (6, 1, 28, 28) and d.val_y.shape == (6,) and d.val_y.dtype == torch.int64
    raw = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    assert np.array_equal(d.train_x[0, 0].numpy(), np.frombuffer(raw, np.uint8, 784, 16).reshape(28, 28))
    assert d.spec.num_classes == 10 and d.spec.in_channels == 1
    assert d.spec.classes[0] == ("T-shirt/top" if name == "fashion_mnist" else "0")
    assert d.source == str(folder)


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("train-images-idx3-ubyte.gz", b"truncated", "not a readable gzip"),
        ("train-images-idx3-ubyte.gz", "cut", "not a readable gzip"),
        ("train-images-idx3-ubyte.gz", idx_bytes(np.zeros((2, 28, 28)), 2049), "bad IDX magic number 2049"),
        ("t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(5), 2051), "bad IDX magic"),
        ("train-images-idx3-ubyte.gz", idx_bytes(np.zeros((2, 28, 28)), 2051)[:-10], "need 1568 bytes"),
        ("train-images-idx3-ubyte.gz", idx_bytes(np.zeros((12, 27, 27)), 2051), "must be 28×28"),
        ("train-labels-idx1-ubyte.gz", idx_bytes(np.full(12, 10), 2049), "0..9"),
        ("train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(11), 2049), "11 labels for 12 images"),
    ],
)
def test_corrupt_mnist_names_the_file(tmp_path, file, content, message):
    folder = write_mnist(tmp_path)
    path = folder / file
    if content == "cut":  # a real gzip stream cut in the middle
        path.write_bytes(path.read_bytes()[:-30])
    elif content == b"truncated":
        path.write_bytes(content)
    else:
        path.write_bytes(gzip.compress(content))
    with pytest.raises(DataError, match=message) as err:
        load_dataset("mnist", tmp_path)
    assert file in str(err.value)


# -------------------------------------------------------------------------------------- missing, download


@pytest.mark.parametrize(
    "name, expected, url",
    [
        ("cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
        ("mnist", "train-images-idx3-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        ("fashion_mnist", "fashion_mnist", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        ("imagenette", "imagenette2-320", "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz"),
        ("imagewoof", "imagewoof2", "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-320.tgz"),
    ],
)
def test_missing_data_message(tmp_path, name, expected, url):
    with pytest.raises(DataError) as err:
        load_dataset(name, tmp_path)
    message = str(err.value)
    for part in (str(tmp_path), expected, url, "--download", f"not found under {tmp_path}"):
        assert part in message


def fake_fetch(files: dict[str, bytes], calls: list[str]):
    """A `fetch_url` stand-in that serves `files` by URL basename; no network."""

    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        if Path(url).name not in files:
            raise OSError(f"404 {url}")
        dest.write_bytes(files[Path(url).name])

    return fetch


def test_download_mnist_with_md5(tmp_path, monkeypatch):
    source = write_mnist(tmp_path / "src")
    files = {f: (source / f).read_bytes() for f in mnist.FILES}
    md5s = tuple(_base.md5sum(source / f) for f in mnist.FILES)
    folders, url, _ = mnist.SOURCES["mnist"]
    monkeypatch.setitem(mnist.SOURCES, "mnist", (folders, url, md5s))
    calls: list[str] = []
    monkeypatch.setattr(_base, "fetch_url", fake_fetch(files, calls))
    root = tmp_path / "root"
    d = load_dataset("mnist", root, download=True)
    assert d.train_x.shape == (12, 1, 28, 28)
    assert calls == [url + f for f in mnist.FILES]
    assert not list(root.rglob("*.part"))
    load_dataset("mnist", root, download=True)  # present now: no second download
    assert len(calls) == 4


def test_download_md5_mismatch_leaves_nothing(tmp_path, monkeypatch):
    source = write_mnist(tmp_path / "src")
    files = {f: (source / f).read_bytes() for f in mnist.FILES}
    monkeypatch.setattr(_base, "fetch_url", fake_fetch(files, []))  # real md5 table: these files differ
    root = tmp_path / "root"
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: md5 mismatch after downloading https://ossci"
    ):
        load_dataset("mnist", root, download=True)
    assert not list((root / "mnist").iterdir())


def test_download_cifar_tarball(tmp_path, monkeypatch):
    tarball = tmp_path / "cifar-100-python.tar.gz"
    md5 = make_tarball(write_cifar100(tmp_path / "src"), tarball)
    monkeypatch.setitem(cifar.TARBALL_MD5, tarball.name, md5)
    calls: list[str] = []
    monkeypatch.setattr(_base, "fetch_url", fake_fetch({tarball.name: tarball.read_bytes()}, calls))
    d = load_dataset("cifar100", tmp_path / "root", download=True)
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"]
    assert d.train_x.shape == (4, 3, 32, 32)


def test_download_network_error_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_base, "fetch_url", fake_fetch({}, []))
    with pytest.raises(
        DataError, match=r"could not download https://s3\.amazonaws\.com/.*imagewoof2-320\.tgz"
    ):
        load_dataset("imagewoof", tmp_path, download=True)


def test_tarball_with_unsafe_path_is_refused(tmp_path):
    evil = tmp_path / "evil.tgz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escaped")
    with pytest.raises(DataError, match=r"evil\.tgz: cannot extract"):
        _base.extract_tarball(evil, tmp_path / "into", None)
    assert not (tmp_path / "escaped").exists()


def test_truncated_tarball_leaves_no_partial_folder(tmp_path):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    make_tarball(write_cifar10(tmp_path, rows=50), tarball)
    tarball.write_bytes(tarball.read_bytes()[:-2000])
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: cannot extract"):
        _base.extract_tarball(tarball, tmp_path, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tarball.name]


def test_channel_stats_uint8_matches_float():
    x = torch.randint(0, 256, (50, 3, 4, 5), dtype=torch.uint8)
    mean, std = _base.channel_stats(x)
    xf = x.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), xf.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), xf.std(dim=(0, 2, 3), correction=0))
    fmean, fstd = _base.channel_stats(xf.float())
    torch.testing.assert_close(torch.tensor(fmean), torch.tensor(mean, dtype=torch.float32))
    torch.testing.assert_close(torch.tensor(fstd), torch.tensor(std, dtype=torch.float32))


# ------------------------------------------------------------------------------------ Imagenette / woof


def test_imagewoof_tree_decodes_and_caches(tmp_path, monkeypatch):
    write_jpeg_tree(tmp_path)
    d = load_dataset("imagewoof", tmp_path, image_size=16)
    assert d.spec == DataSpec("imagewoof", 2, 3, (16, 16), WNIDS)
    assert d.train_x.shape == (6, 3, 16, 16) and d.train_x.dtype == torch.uint8
    assert d.val_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert (tmp_path / "imagewoof2-160_16px.npz").is_file()
    assert d.source.endswith("imagewoof2-160")

    def no_decode(*args):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(imagefolder, "decode_image", no_decode)
    again = load_dataset("imagewoof", tmp_path, image_size=16)
    assert torch.equal(again.train_x, d.train_x) and again.spec == d.spec


def test_imagenette_default_size_and_tarball(tmp_path, monkeypatch):
    md5 = make_tarball(
        write_jpeg_tree(tmp_path, "imagenette2-320", per_class=1), tmp_path / "imagenette2-320.tgz"
    )
    monkeypatch.setitem(imagefolder.TARBALL_MD5, "imagenette2-320.tgz", md5)
    d = load_dataset("imagenette", tmp_path)
    assert d.train_x.shape == (2, 3, 128, 128) and d.spec.image_size == (128, 128)


@pytest.mark.parametrize("size, variant", [(24, "imagewoof2-320"), (400, "imagewoof2")])
def test_imagewoof_download_picks_the_320px_archive_when_enough(tmp_path, monkeypatch, size, variant):
    tarball = tmp_path / f"{variant}.tgz"
    make_tarball(write_jpeg_tree(tmp_path / "src", variant, per_class=1), tarball)
    calls: list[str] = []
    monkeypatch.setattr(_base, "fetch_url", fake_fetch({tarball.name: tarball.read_bytes()}, calls))
    d = load_dataset("imagewoof", tmp_path / "root", download=True, image_size=size)
    assert calls == [f"https://s3.amazonaws.com/fast-ai-imageclas/{variant}.tgz"]
    assert d.train_x.shape == (2, 3, size, size) and d.source.endswith(variant)


def test_corrupt_jpeg_names_the_file(tmp_path):
    folder = write_jpeg_tree(tmp_path, "imagenette2")
    bad = folder / "val" / WNIDS[1] / f"{WNIDS[1]}_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match=f"{bad.name}: cannot decode image"):
        load_dataset("imagenette", tmp_path, image_size=16)


def test_decode_image_resizes_shorter_side_then_centre_crops(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 10:30] = 255  # a white band that is exactly the centre square; black elsewhere
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = imagefolder.decode_image(tmp_path / "a.png", 10)
    assert out.shape == (3, 10, 10) and out[:, :, 1:-1].min() == 255 and out.min() > 200  # edges: antialias


# ----------------------------------------------------------------------------------- digits and mnist1d


def test_digits(digits):
    assert digits.train_x.shape[0] + digits.val_x.shape[0] == 1797
    assert digits.val_x.shape == (360, 1, 8, 8) and digits.train_x.dtype == torch.uint8
    assert int(digits.train_x.max()) == 255 and int(digits.train_x.min()) == 0
    all_counts = torch.bincount(torch.cat([digits.train_y, digits.val_y]))
    assert (torch.bincount(digits.val_y) - all_counts * 0.2).abs().max() < 1  # stratified
    assert torch.equal(load_dataset("digits").val_y, digits.val_y)  # the same split every time


def test_mnist1d_generates_without_touching_global_rngs():
    np.random.seed(123)
    random.seed(123)
    d = load_dataset("mnist1d")
    assert (np.random.rand(), random.random()) == (
        np.random.RandomState(123).rand(),
        random.Random(123).random(),
    )
    assert d.train_x.shape == (4000, 1, 1, 40) and d.train_x.dtype == torch.float32
    assert d.val_x.shape == (1000, 1, 1, 40) and d.spec.image_size == (1, 40)
    assert set(d.train_y.tolist()) == set(range(10))
    assert abs(d.mean[0]) < 0.05 and 0.9 < d.std[0] < 1.1


# -------------------------------------------------------------------------------------------- DeviceLoader


def batches(loader: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader)


def test_loader_shapes_and_len(digits):
    loader = DeviceLoader(digits, "train", 100, train=True, seed=0)
    assert len(loader) == 15 and loader.num_samples == 1437
    out = batches(loader)
    assert len(out) == 15 and out[-1][0].shape == (37, 1, 8, 8)
    x, y = out[0]
    assert x.shape == (100, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sorted(torch.cat([y for _, y in out]).tolist()) == sorted(digits.train_y.tolist())
    assert len(DeviceLoader(digits, "train", 100, train=True, seed=0, drop_last=True)) == 14
    assert len(DeviceLoader(digits, "val", 100, train=False, seed=0)) == 4


def test_loader_is_a_pure_function_of_seed_and_epoch(digits):
    a = DeviceLoader(digits, "train", 256, train=True, seed=3)
    b = DeviceLoader(digits, "train", 256, train=True, seed=3)
    a0, b0 = batches(a), batches(b)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a0, b0, strict=True))
    a1 = batches(a)  # iterating advances the epoch
    assert not torch.equal(a0[0][0], a1[0][0])
    b.set_epoch(1)  # resume at epoch 1
    assert torch.equal(batches(b)[0][0], a1[0][0])
    c = DeviceLoader(digits, "train", 256, train=True, seed=4)
    assert not torch.equal(batches(c)[0][0], a0[0][0])


def test_val_loader_is_ordered_unaugmented_and_normalised(digits):
    loader = DeviceLoader(digits, "val", 1000, train=False, seed=0, augment="crop+flip")
    (x, y), (x2, _) = batches(loader)[0], batches(loader)[0]
    assert torch.equal(y, digits.val_y) and torch.equal(x, x2)
    mean, std = torch.tensor(digits.mean), torch.tensor(digits.std)
    expected = (digits.val_x.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    torch.testing.assert_close(x, expected)
    train_all = batches(DeviceLoader(digits, "train", 2000, train=False, seed=0, augment=None))[0][0]
    assert abs(train_all.mean().item()) < 1e-4 and abs(train_all.std().item() - 1) < 1e-3


def test_channels_last(digits):
    x, _ = next(iter(DeviceLoader(digits, "train", 64, train=True, seed=0, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_loader_rejects_bad_arguments(digits):
    with pytest.raises(ValueError, match="augment 'rotate'"):
        DeviceLoader(digits, "train", 8, train=True, seed=0, augment="rotate")
    with pytest.raises(ValueError, match="split"):
        DeviceLoader(digits, "test", 8, train=True, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(digits, "train", 0, train=True, seed=0)
    with pytest.raises(ValueError, match="no batches"):
        DeviceLoader(digits, "val", 1000, train=True, seed=0, drop_last=True)


def spec_of(name: str, size: tuple[int, int]) -> DataSpec:
    return DataSpec(name, 10, 3, size, tuple("abcdefghij"))


def test_auto_policies():
    assert parse_augment("auto", spec_of("cifar10", (32, 32))) == AugPolicy("translate", pad=4, flip=True)
    assert parse_augment("auto", spec_of("mnist", (28, 28))) == AugPolicy("translate", pad=2)
    assert parse_augment("auto", spec_of("digits", (8, 8))) == AugPolicy("translate", pad=1)
    assert parse_augment("auto", spec_of("imagewoof", (128, 128))).crop == "resized"
    assert not parse_augment("auto", spec_of("mnist1d", (1, 40))).active
    assert parse_augment("crop", spec_of("cifar10", (32, 32))) == AugPolicy("translate", pad=4)
    assert parse_augment("flip", spec_of("mnist", (28, 28))) == AugPolicy(flip=True)
    assert not parse_augment(None, spec_of("cifar10", (32, 32))).active
    with pytest.raises(ValueError, match="no crop"):
        parse_augment("crop", spec_of("mnist1d", (1, 40)))


def test_translate_and_flip_are_exact():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    policy = AugPolicy("translate", pad=2, flip=True)
    centre = {"shift": torch.tensor([[2, 2], [2, 2]]), "flip": torch.tensor([False, True])}
    out = apply_policy(x, policy, centre)
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], x[1].flip(-1))
    moved = apply_policy(x, AugPolicy("translate", pad=2), {"shift": torch.tensor([[0, 4], [2, 2]])})
    assert torch.equal(moved[0, :, 2:, :4], x[0, :, :4, 2:])  # dy=0, dx=4: content moves down 2, left 2


def test_resized_crop_identity_and_flip():
    x = torch.rand(2, 3, 8, 8)
    box = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    out = apply_policy(x, AugPolicy("resized", flip=True), {"box": box, "flip": torch.tensor([False, True])})
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[1], x[1].flip(-1))


@pytest.mark.parametrize(
    "name, augment", [("cifar10", "auto"), ("imagewoof", "auto"), ("mnist", "crop+flip")]
)
def test_augmented_batches_keep_shape_and_vary(name, augment):
    size = (20, 20) if name == "imagewoof" else (32, 32)
    fake = ImageData(
        spec_of(name, size),
        torch.randint(0, 256, (64, 3, *size), dtype=torch.uint8),
        torch.randint(0, 10, (64,)),
        torch.zeros(0, 3, *size, dtype=torch.uint8),
        torch.zeros(0, dtype=torch.int64),
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
    )
    loader = DeviceLoader(fake, "train", 64, train=True, seed=1, augment=augment)
    plain = DeviceLoader(fake, "train", 64, train=True, seed=1, augment=None)
    (x, y), (px, py) = next(iter(loader)), next(iter(plain))
    assert x.shape == (64, 3, *size) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(y, py) and not torch.equal(x, px)  # same order, different pixels
    loader.set_epoch(0)
    assert torch.equal(next(iter(loader))[0], x)
