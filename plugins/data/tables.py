"""CSV and Parquet tables as classification data, read with pandas (pyarrow for Parquet):
a label column, numeric feature columns, and the rows of each split chosen by a split
column of one file or given as one file per split (``data_files``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

TABLES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(name: str) -> str | None:
    return TABLES.get(Path(name).suffix.lower())


def _files(config: Any, suite_dir: Path, splits: list[str]) -> list[tuple[str, str | None, Path]]:
    """(suite key, split or None for every split, file) of each table to read."""
    if config.data_files is None:
        return [("path", None, (suite_dir / Path(config.path).expanduser()).resolve())]
    return [(f"data_files.{s}", s, (suite_dir / Path(config.data_files[s]).expanduser()).resolve())
            for s in splits if s in config.data_files]


def read_table(path: Path) -> Any:
    import pandas as pd

    if table_format(path.name) == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def columns_of(path: Path) -> list[str]:
    """A table's column names, from its header (CSV) or schema (Parquet) only."""
    if table_format(path.name) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


def read_table_splits(config: Any, suite_dir: Path, splits: list[str]) -> dict[str, tuple[Any, Any, str]]:
    """``{split: (float32 features, labels, where)}`` for the splits the tables hold."""
    out: dict[str, tuple[Any, Any, str]] = {}
    names: list[str] | None = None  # the evaluation split's feature columns, used for every split
    for _, split, path in _files(config, suite_dir, splits):
        frame = read_table(path)
        parts = {split: frame} if split else _by_split_column(frame, config.split_column, splits)
        for name, rows in parts.items():
            where = f"'{path}'" + (f" (rows with {config.split_column} = {name})" if split is None else "")
            names = names or feature_columns(rows, config, where)
            out[name] = (*_columns(rows, names, config.label_column, where), where)
    return out


def _by_split_column(frame: Any, column: str, splits: list[str]) -> dict[str, Any]:
    values = frame[column].astype(str)
    return {s: frame[values == s] for s in splits if (values == s).any()}


def feature_columns(frame: Any, config: Any, where: str) -> list[str]:
    """``feature_columns``, or every numeric column but the label and split columns."""
    from pandas.api.types import is_numeric_dtype

    if config.feature_columns:
        return list(config.feature_columns)
    names = [c for c in frame.columns if c not in (config.label_column, config.split_column)
             and is_numeric_dtype(frame[c])]
    if not names:
        raise ValueError(f"{where} has no numeric column besides the label (its columns: "
                         f"{', '.join(map(str, frame.columns))}): add feature columns or set feature_columns")
    return names


def _columns(frame: Any, names: list[str], label: str, where: str) -> tuple[Any, Any]:
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    missing = [c for c in [*names, label] if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} has no column {', '.join(missing)} (its columns: "
                         f"{', '.join(map(str, frame.columns))}): set label_column / feature_columns to match")
    for column in names:
        if not is_numeric_dtype(frame[column]):
            raise ValueError(f"feature column '{column}' of {where} holds {frame[column].dtype} values; "
                             "features must be numbers: list only numeric columns in feature_columns")
        if frame[column].isna().any():
            raise ValueError(f"feature column '{column}' of {where} is empty in data row "
                             f"{_first(frame[column].isna())}: fill or drop such rows")
    if frame[label].isna().any():
        raise ValueError(f"label_column '{label}' of {where} is empty in data row {_first(frame[label].isna())}: "
                         "fill or drop such rows")
    return frame[names].to_numpy(dtype=np.float32), frame[label].to_numpy()


def _first(mask: Any) -> int:
    """The 1-based data row (after the header) of the first True."""
    return int(mask.index[mask.to_numpy().argmax()]) + 1


def table_problems(config: Any, suite_dir: Path, splits: list[str]) -> list[str]:
    """Missing files and columns, and a split column without the evaluation split's rows."""
    problems = []
    for key, split, path in _files(config, suite_dir, splits):
        if not path.is_file():
            problems.append(f"{key}: data file '{path}' does not exist")
            continue
        columns = columns_of(path)
        wanted = [("label_column", config.label_column)] + [("feature_columns", c) for c in config.feature_columns or ()]
        wanted += [("split_column", config.split_column)] if split is None else []
        for what, column in wanted:
            if column not in columns:
                problems.append(f"{key}: '{path}' has no column '{column}' (its columns: {', '.join(columns)}): "
                                f"set {what} to one of them")
        if split is None and config.split_column in columns:
            values = sorted(read_table_column(path, config.split_column))
            if config.split not in values:
                problems.append(f"{key}: split_column '{config.split_column}' of '{path}' has no row '{config.split}' "
                                f"(its values: {', '.join(values[:10])}): set split to one of them")
    return problems


def read_table_column(path: Path, column: str) -> set[str]:
    """The distinct values of one column, as strings."""
    import pandas as pd

    frame = pd.read_parquet(path, columns=[column]) if table_format(path.name) == "parquet" else \
        pd.read_csv(path, usecols=[column])
    return set(frame[column].astype(str))
