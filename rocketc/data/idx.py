"""MNIST-style IDX files (Fashion-MNIST, MNIST), parsed with numpy alone.

Train and val come from the train-* files (a seeded shuffle; the last `val_size` rows are held
out), test is the t10k-* files as published. A raw row is one image's pixel values as stored
(0-255 for Fashion-MNIST, row by row), the field named after the spec input: a JSON list of
28 x 28 = 784 numbers (or nested rows), or CSV columns image_0 ... image_783. Preprocessing
standardises with one mean and one std over all pixels of the (possibly `limit`ed) train split,
so val/test see exactly the transform serving applies.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from rocketc.compiler.spec import DenseInput, IdxData, Spec
from rocketc.data.base import Dataset, Split, describe, make_target
from rocketc.data.dense import Dense
from rocketc.data.encode import check_size, data_seed, spec_input
from rocketc.data.preprocess import Preprocessor, label_info
from rocketc.errors import DataError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
# Label names in class order (github.com/zalandoresearch/fashion-mnist, "Labels").
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# IDX type byte -> big-endian numpy dtype (yann.lecun.com/exdb/mnist, "THE IDX FILE FORMAT").
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file, gzipped or not (told apart by the gzip magic, not the name)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: broken gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header cut short")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX dims {dims} need {expected:,} data bytes, file has {len(raw) - header:,}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and writable


def load(spec: Spec, data: IdxData) -> Dataset:
    item = spec_input(spec, data.input, DenseInput, data.source)
    if data.path is None and data.source == "idx":
        raise DataError(
            "data source 'idx' needs `path:`, a directory of IDX files "
            f"({', '.join(_FILES.values())}, optionally .gz)"
        )
    directory = Path(data.path or DEBIAN_FASHION_MNIST)
    arrays = {key: read_idx(path) for key, path in _find_files(directory, data).items()}
    for kind in ("train", "test"):
        images, labels = arrays[f"{kind}_images"], arrays[f"{kind}_labels"]
        if labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{directory}: {kind} images {images.shape} do not match "
                f"{kind} labels {labels.shape}"
            )
    images, labels = arrays["train_images"], arrays["train_labels"]
    if data.val_size >= len(images):
        raise DataError(
            f"val_size {data.val_size:,} leaves no train rows out of "
            f"{len(images):,}; lower data.val_size"
        )
    per_row = int(np.prod(images.shape[1:], dtype=np.int64))
    check_size(item, per_row, str(directory), images.shape[1:])
    rows = np.random.default_rng(data_seed(spec)).permutation(len(images))
    train_rows, val_rows = rows[: len(rows) - data.val_size], rows[len(rows) - data.val_size :]
    train_rows = train_rows[: data.limit]
    parts = [
        (images[train_rows], labels[train_rows]),
        (images[val_rows], labels[val_rows]),
        (arrays["test_images"], arrays["test_labels"]),
    ]
    raws = [{item.name: x.reshape(len(x), per_row)} for x, _ in parts]  # pixels as stored, flat
    pixels = Dense(item.name, tuple(item.shape), field=item.name).fit(raws[0], per_column=False)
    classes = FASHION_CLASSES if data.source == "fashion-mnist" and spec.num_classes == 10 else None
    preprocess = Preprocessor(
        data.source,
        f"one image: '{item.name}', its {per_row} pixel values as stored in the IDX file, "
        "row by row",
        [pixels],
        label_info(spec, "the class of the image", classes),
    )
    splits = [
        Split(preprocess.encode_split(raw, data.source), make_target(spec, y), None, raw)
        for raw, (_, y) in zip(raws, parts, strict=True)
    ]
    return Dataset(*splits, describe(data.source, spec, *splits), preprocess)


def _find_files(directory: Path, data: IdxData) -> dict[str, Path]:
    """The four IDX files, each as NAME or NAME.gz; all missing ones named in one error."""
    found, missing = {}, []
    for key, name in _FILES.items():
        options = [directory / name, directory / f"{name}.gz"]
        hit = next((p for p in options if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[key] = hit
    if missing:
        hint = (
            "apt-get install dataset-fashion-mnist, or point data.path at a directory of IDX files"
            if data.source == "fashion-mnist"
            else "point data.path at a directory of MNIST-style IDX files"
        )
        raise DataError(f"{directory}: missing IDX files {missing} (raw or .gz); {hint}")
    return found
