"""Data sets that ship inside installed packages, so nothing is downloaded.

``digits``: the UCI handwritten digits (8×8 images, 10 classes, 1,797 samples) bundled
with scikit-learn, split 70/30 stratified with a fixed seed.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

DATASETS = ("digits",)
SPLITS = ("train", "test")


@cache
def _digits() -> dict[str, Any]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


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
