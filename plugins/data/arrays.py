"""A user's classification data, read with numpy and pandas: an ``.npz``, a folder of
``.npy`` files, or CSV / Parquet tables (:mod:`harness_plugins.data.tables`). The
contract, key by key, is docs/data.md.

:func:`read_splits` gives each split's features (float32) and raw labels, :func:`class_ids`
turns labels into class ids through the data's own class names, and :func:`data_problems`
finds missing files, arrays and columns before anything runs.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_plugins.data.tables import TABLES, read_table_splits, table_problems


@dataclass
class Split:
    x: Any  # numpy float32 [N, ...]
    labels: Any  # numpy [N]: integer ids or class names
    source: str  # where it was read, for messages: "x_test/y_test of '/data/d.npz'"


def suite_path(name: str, suite_dir: Path) -> Path:
    return (suite_dir / Path(name).expanduser()).resolve()


def layout(path: str) -> str:
    """``npz``, ``csv``, ``parquet``, or ``npy`` (a folder of ``.npy`` files)."""
    suffix = Path(path).suffix.lower()
    return "npz" if suffix == ".npz" else TABLES.get(suffix, "npy")


def wanted(config: Any) -> list[str]:
    """The evaluation split, then the training split (when it is another one)."""
    return [config.split] + ([config.train_split] if config.train_split != config.split else [])


def read_splits(config: Any, suite_dir: Path) -> dict[str, Split]:
    """``{split: Split}``: the evaluation split, and the training split where the data has it."""
    if config.data_files is not None or layout(config.path) in TABLES.values():
        found = read_table_splits(config, suite_dir, wanted(config))
        return {name: Split(x, labels, source) for name, (x, labels, source) in found.items()}
    path = suite_path(config.path, suite_dir)
    names = array_names(path)
    out = {}
    for split in wanted(config):
        keys = (f"{config.x_key}_{split}", f"{config.y_key}_{split}")
        if keys[0] in names and keys[1] in names:
            x, labels = (_read_array(path, key) for key in keys)
            out[split] = Split(features(x, f"{keys[0]} of '{path}'"), labels, f"{keys[0]}/{keys[1]} of '{path}'")
    return out


def features(x: Any, where: str) -> Any:
    """Numeric features as float32, one row per sample (a 1-D array: one feature)."""
    import numpy as np

    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{where} holds {x.dtype} values; features must be numbers")
    return (x.reshape(-1, 1) if x.ndim == 1 else x).astype(np.float32)


def array_names(path: Path) -> set[str]:
    """The arrays an ``.npz`` (its members) or a folder (its ``.npy`` files) holds."""
    if path.is_dir():
        return {p.stem for p in path.glob("*.npy")}
    with zipfile.ZipFile(path) as archive:
        return {name.removesuffix(".npy") for name in archive.namelist()}


def _read_array(path: Path, key: str) -> Any:
    import numpy as np

    try:
        if path.is_dir():
            return np.load(path / f"{key}.npy", allow_pickle=False)
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[key]
    except ValueError as exc:  # an object array would be unpickled: refused
        raise ValueError(f"array {key} of '{path}' cannot be read without unpickling ({exc}); save labels "
                         "as a numpy string or integer array and features as numbers") from None


def class_ids(splits: dict[str, Split], classes: tuple[str, ...] | None) -> tuple[dict[str, Any], int, str]:
    """Each split's labels as int64 class ids, the number of classes, and how labels were
    read (one line). Class names (strings) become their index in ``classes``, or in the
    sorted names of every split; integer labels are the ids."""
    import numpy as np

    for split in splits.values():
        if len(split.labels) != len(split.x):
            raise ValueError(f"{split.source}: {len(split.x)} samples but {len(split.labels)} labels")
    values = [np.asarray(s.labels) for s in splits.values()]
    if all(v.dtype.kind in "OUS" for v in values):
        names = list(classes) if classes else sorted({str(v) for array in values for v in array})
        index = {n: i for i, n in enumerate(names)}
        for split in splits.values():
            unknown = next((str(v) for v in split.labels if str(v) not in index), None)
            if unknown is not None:
                raise ValueError(f"label '{unknown}' of {split.source} is not one of classes ({', '.join(names)}): "
                                 "add it to classes, in the order of the model's outputs")
        ids = {k: np.array([index[str(v)] for v in s.labels], dtype=np.int64) for k, s in splits.items()}
        return ids, len(names), "class names as ids: " + ", ".join(f"{n}={i}" for n, i in index.items())
    ids = {k: _integer_ids(s) for k, s in splits.items()}
    if classes:
        raise ValueError(f"classes names string labels, but {next(iter(splits.values())).source} holds "
                         "integer labels (the model's output ids already): remove classes")
    n = int(max(int(v.max()) for v in ids.values() if len(v)) + 1) if any(len(v) for v in ids.values()) else 0
    return ids, n, "integer labels as the model's output ids"


def _integer_ids(split: Split) -> Any:
    import numpy as np

    labels = np.asarray(split.labels)
    whole = labels.dtype.kind in "iub" or (labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels)))
                                            and bool(np.all(labels == np.round(labels))))
    if not whole:
        raise ValueError(f"{split.source} holds labels of type {labels.dtype} (missing or fractional values?); "
                         "labels must be integer ids or class names")
    ids = labels.astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError(f"{split.source} holds label {int(ids.min())}; integer labels are class ids from 0")
    return ids


def data_problems(config: Any, suite_dir: Path) -> list[str]:
    """Missing files, arrays and columns, found without reading the data (headers, archive
    listings, a table's split column)."""
    if config.data_files is not None or layout(config.path) in TABLES.values():
        return table_problems(config, suite_dir, wanted(config))
    path = suite_path(config.path, suite_dir)
    if layout(config.path) == "npz" and not path.is_file():
        return [f"path: data file '{path}' does not exist"]
    if layout(config.path) == "npy" and not path.is_dir():
        return [f"path: '{path}' is not a folder of .npy files (or an .npz, .csv or .parquet file)"]
    try:
        names = array_names(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [f"path: '{path}' is not a readable .npz archive ({exc})"]
    problems = []
    for i, split in enumerate(wanted(config)):
        keys = [f"{config.x_key}_{split}", f"{config.y_key}_{split}"]
        missing = [k for k in keys if k not in names]
        if missing and (i == 0 or len(missing) == 1):  # a training split may be absent, not half there
            problems.append(f"path: '{path}' has no array {' or '.join(missing)} (it has: "
                            f"{', '.join(sorted(names)) or 'none'}); save it under that name, or set "
                            f"{'split' if i == 0 else 'train_split'}, x_key or y_key to match")
    return problems
