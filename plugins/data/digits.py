"""Data sets that ship inside installed packages, so nothing is downloaded.

``digits``: the UCI handwritten digits (8×8 images, 10 classes, 1,797 samples) bundled
with scikit-learn, split 70/30 stratified by class (``random_state=0``): 1,257 train and
540 test samples, pixels divided by 16, float32 ``[N, 64]``, labels int64 0..9. This
contract is written in docs/data.md; changing it changes every digits result.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import Any

DATASETS = ("digits",)
SPLITS = ("train", "test")


def _split_digits() -> dict[str, Any]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def _source_file() -> Path | None:
    """scikit-learn's bundled digits file, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


@cache
def _digits() -> dict[str, Any]:
    """The split, cached as .npz next to the models: importing scikit-learn costs each
    run's process seconds, reading the arrays milliseconds."""
    import numpy as np

    from harness.toolkit import cache_dir

    source = _source_file()
    if source is None:
        return _split_digits()
    key = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    path = cache_dir() / "data" / f"digits-{key}.npz"
    if path.exists():
        with np.load(path) as arrays:
            return {split: (arrays[f"x_{split}"], arrays[f"y_{split}"]) for split in SPLITS}
    data = _split_digits()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, **{f"{axis}_{split}": data[split][i] for split in SPLITS for i, axis in enumerate("xy")})
    os.replace(tmp, path)
    return data


def load(name: str, split: str) -> tuple[Any, Any]:
    """(inputs, labels) as torch tensors: float32 [N, 64] and int64 [N]."""
    import torch

    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'")
    x, y = _digits()[split]
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def fingerprint(name: str) -> str:
    """A content hash of the data set, for caches keyed on what was trained on."""
    h = hashlib.sha256()
    for split in SPLITS:
        x, y = _digits()[split]
        h.update(x.tobytes())
        h.update(y.tobytes())
    return h.hexdigest()[:16]
