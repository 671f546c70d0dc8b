"""A user's data set, read with Hugging Face ``datasets``: a hub id, a ``save_to_disk``
directory, or local CSV / JSON / Parquet files (one per split).

:func:`load_splits` reads the splits a task asks for; :func:`check_source` finds missing
files, directories, splits and columns before anything runs, reading only file headers
and the JSON metadata ``save_to_disk`` writes (no ``datasets`` import). Paths are
relative to the suite file.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def suite_path(name: str, suite_dir: Path) -> Path:
    return (suite_dir / Path(name).expanduser()).resolve()


def is_directory_ref(ref: str, suite_dir: Path) -> bool:
    """``dataset`` names a ``save_to_disk`` directory (a path) rather than a hub id."""
    return ref.startswith((".", "/", "~")) or "\\" in ref or ref.count("/") > 1 or suite_path(ref, suite_dir).is_dir()


def file_format(name: str) -> str | None:
    return FORMATS.get(Path(name).suffix.lower())


def datasets_offline() -> bool:
    return os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load_splits(config: Any, suite_dir: Path, wanted: list[str]) -> dict[str, Any]:
    """``{split: datasets.Dataset}`` for each name in ``wanted`` that the data has; the
    first, the evaluation split, must be there.

    ``config`` has ``dataset`` (hub id or directory), ``subset`` and ``data_files``.
    """
    import datasets

    datasets.disable_progress_bars()
    if config.data_files:
        files = {s: str(suite_path(f, suite_dir)) for s, f in config.data_files.items() if s in wanted}
        found = datasets.load_dataset(file_format(next(iter(files.values()))), data_files=files)
    elif is_directory_ref(config.dataset, suite_dir):
        found = datasets.load_from_disk(str(suite_path(config.dataset, suite_dir)))
        if isinstance(found, datasets.Dataset):  # a single split: it is the evaluation data
            found = {wanted[0]: found}
    else:
        found = _load_hub(config.dataset, config.subset, suite_dir)
    if wanted[0] not in found:
        raise ValueError(f"split '{wanted[0]}' is not in the data set (its splits: {', '.join(found)}): set split")
    return {name: found[name] for name in wanted if name in found}


def _load_hub(name: str, subset: str | None, suite_dir: Path) -> Any:
    import datasets

    folder = name.split("/", 1)[0]  # 'data/sst2' with a folder 'data' beside the suite: a mistyped path?
    hint = (f" ('{folder}' is a folder beside the suite: for a save_to_disk directory write './{name}')"
            if (suite_dir / folder).is_dir() else "")
    try:
        return datasets.load_dataset(name, subset)
    except (ConnectionError, OSError) as exc:
        if datasets_offline():
            raise RuntimeError(
                f"hub data set '{name}' is not in the local Hugging Face cache and HF_DATASETS_OFFLINE=1 forbids "
                "downloading it: run once with network access, or point dataset at a save_to_disk directory "
                f"or data_files at local files{hint}") from exc
        raise RuntimeError(f"cannot load hub data set '{name}': {str(exc).splitlines()[0]}{hint}") from exc


def file_columns(path: Path) -> list[str] | None:
    """Column names from a file's header (CSV), first record (JSON Lines) or schema
    (Parquet); None where that cannot be read cheaply (a JSON document)."""
    fmt = file_format(path.name)
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    try:
        record = json.loads(first)
    except ValueError:
        return None
    return list(record) if isinstance(record, dict) and first.startswith("{") else None


def disk_splits(path: Path) -> dict[str, Path] | None:
    """The split directories of a ``save_to_disk`` directory, or None if it is not one."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        return {name: path / name for name in splits}
    if (path / "state.json").is_file():
        return {"": path}  # a single Dataset
    return None


def disk_columns(split_dir: Path) -> list[str] | None:
    info = split_dir / "dataset_info.json"
    if not info.is_file():
        return None
    return list(json.loads(info.read_text()).get("features") or {}) or None


def check_source(config: Any, suite_dir: Path, columns: dict[str, str]) -> list[str]:
    """Problems with where the data is and which columns it has; ``columns`` maps each
    config key (``text_column`` …) to the column it names."""
    used = {config.split, config.train_split}
    if config.data_files:
        found: dict[str, tuple[str, list[str] | None]] = {}
        problems = []
        for split, name in config.data_files.items():
            if split not in used:
                continue
            path = suite_path(name, suite_dir)
            if not path.is_file():
                problems.append(f"data_files.{split}: file '{name}' does not exist (paths are relative to the suite file)")
            else:
                found[split] = (f"data_files.{split} '{name}'", file_columns(path))
        return problems + _column_problems(found, columns)
    if not is_directory_ref(config.dataset, suite_dir):
        return []  # a hub id: checked when loaded, so that validation never needs the network
    path = suite_path(config.dataset, suite_dir)
    if not path.is_dir():
        return [f"dataset: directory '{config.dataset}' does not exist (paths are relative to the suite file)"]
    splits = disk_splits(path)
    if splits is None:
        return [f"dataset: '{config.dataset}' is not a datasets save_to_disk directory (no dataset_dict.json or "
                "state.json): save it with Dataset.save_to_disk, or list its files under data_files"]
    if "" in splits:
        return _column_problems({config.split: (f"dataset '{config.dataset}'", disk_columns(path))}, columns)
    if config.split not in splits:
        return [f"split: '{config.split}' is not a split of '{config.dataset}' (its splits: {', '.join(splits)})"]
    return _column_problems({s: (f"dataset '{config.dataset}' split '{s}'", disk_columns(d))
                             for s, d in splits.items() if s in used}, columns)


def _column_problems(found: dict[str, tuple[str, list[str] | None]], columns: dict[str, str]) -> list[str]:
    problems = []
    for where, names in found.values():
        if names is None:
            continue
        for key, column in columns.items():
            if column not in names:
                problems.append(f"{key}: column '{column}' is not in {where} (its columns: {', '.join(names)}): "
                                f"set {key} to one of them")
    return problems


def eval_and_train(found: dict[str, Any], columns: dict[str, str], split: str, train_split: str | None,
                   max_samples: int | None, what: str = "rows") -> tuple[Any, Any]:
    """The evaluation split (its first ``max_samples`` rows) and the training split (or
    None) of ``found``, after checking that every split has ``columns`` (key → column)."""
    for name, data in found.items():
        missing = [f"{key} '{col}'" for key, col in columns.items() if col not in data.column_names]
        if missing:
            raise ValueError(f"split '{name}' has no column {', '.join(missing)} (its columns: "
                             f"{', '.join(data.column_names)}): set the key to one of them")
    evaluated = found[split]
    if len(evaluated) == 0:
        raise ValueError(f"split '{split}' has no {what}")
    if max_samples is not None:
        evaluated = evaluated.select(range(min(max_samples, len(evaluated))))
    return evaluated, (found.get(train_split) if train_split else None)
