"""The ``classification`` task: top-1 accuracy with its standard error, on the bundled
digits or on the user's own data (``.npz``, a folder of ``.npy``, CSV or Parquet; see
docs/data.md). Every kind offers its training split to methods."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import Outcomes, PreparedTask, Skip, TaskKind
from harness.toolkit import OMIT_AT_DEFAULT

TABLE_KEYS = ("label_column", "feature_columns", "split_column")
ARRAY_KEYS = ("x_key", "y_key")


@dataclass(frozen=True)
class ClassificationConfig:
    dataset: str | None = None  # a bundled data set: "digits"
    split: str = "test"
    batch_size: int = 256
    path: str | None = field(default=None, metadata=OMIT_AT_DEFAULT)  # .npz, a folder of .npy, or a CSV/Parquet file
    data_files: dict[str, str] | None = field(default=None, metadata=OMIT_AT_DEFAULT)  # split -> CSV/Parquet file
    train_split: str = field(default="train", metadata=OMIT_AT_DEFAULT)
    label_column: str = field(default="label", metadata=OMIT_AT_DEFAULT)
    feature_columns: tuple[str, ...] | None = field(default=None, metadata=OMIT_AT_DEFAULT)  # default: other numeric columns
    split_column: str | None = field(default=None, metadata=OMIT_AT_DEFAULT)  # one file holding every split
    classes: tuple[str, ...] | None = field(default=None, metadata=OMIT_AT_DEFAULT)  # class names in model-output order
    x_key: str = field(default="x", metadata=OMIT_AT_DEFAULT)  # arrays <x_key>_<split> and <y_key>_<split>
    y_key: str = field(default="y", metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.dataset, self.path, self.data_files)) != 1:
            raise ValueError("set one of dataset (bundled: digits), path (an .npz, a folder of .npy files, or a "
                             "CSV/Parquet file with split_column) or data_files (one CSV/Parquet file per split)")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.classes is not None and (not self.classes or len(set(self.classes)) != len(self.classes)):
            raise ValueError("classes must list each class name once, in the order of the model's outputs")
        if self.dataset is not None:
            self._check_bundled()
        else:
            self._check_user_data()

    def _changed(self, names: tuple[str, ...]) -> list[str]:
        defaults = {f.name: f.default for f in fields(self)}
        return [n for n in names if getattr(self, n) != defaults[n]]

    def _check_bundled(self) -> None:
        from harness_plugins.data.digits import DATASETS, SPLITS

        if self.dataset not in DATASETS:
            from harness.toolkit import nearest

            raise ValueError(f"dataset '{self.dataset}' is not bundled{nearest(self.dataset, DATASETS)}; "
                             "for your own data set path or data_files")
        for key in ("split", "train_split"):
            if getattr(self, key) not in SPLITS:
                raise ValueError(f"{key} '{getattr(self, key)}' must be one of {', '.join(SPLITS)}")
        extra = self._changed(TABLE_KEYS + ARRAY_KEYS + ("classes",))
        if extra:
            raise ValueError(f"{', '.join(extra)}: only for your own data (path or data_files), not for a "
                             "bundled data set: remove")

    def _check_user_data(self) -> None:
        from harness_plugins.data.arrays import layout
        from harness_plugins.data.tables import TABLES, table_format

        if self.data_files is not None:
            if self.split not in self.data_files:
                raise ValueError(f"split '{self.split}' has no file in data_files (it lists "
                                 f"{', '.join(self.data_files) or 'nothing'}): add it or set split")
            if any(table_format(f) is None for f in self.data_files.values()):
                raise ValueError(f"data_files must be CSV or Parquet files, named by suffix: {', '.join(TABLES)}")
        kind = "table" if self.data_files is not None else layout(str(self.path))
        table = kind in ("table", *TABLES.values())
        extra = self._changed(ARRAY_KEYS if table else TABLE_KEYS)
        if extra:
            raise ValueError(f"{', '.join(extra)}: only for {'arrays (.npz, .npy)' if table else 'CSV/Parquet tables'}, "
                             f"and this task reads {'tables' if table else 'arrays'}: remove")
        if self.data_files is not None and self.split_column is not None:
            raise ValueError("split_column picks each split's rows from one file (path); with data_files each "
                             "file is one split: remove split_column")
        if table and self.data_files is None and self.split_column is None:
            raise ValueError(f"path '{self.path}' is one table: set split_column (the column naming each row's "
                             "split), or give one file per split in data_files instead")


class ClassificationData(PreparedTask):
    """The evaluation split (``x`` float32, ``y`` int64) and the training split
    (``x_train``, ``y_train``; None where the data has none) as torch tensors."""

    def __init__(self, config: ClassificationConfig, device: str, suite_dir: Path | None = None):
        self.config, self.device = config, device
        self.info: dict[str, Any] = {}  # what was read, for the run's output (user data only)
        if config.dataset is not None:
            from harness_plugins.data import digits as datasets

            self.x, self.y = datasets.load(config.dataset, config.split)
            self.x_train, self.y_train = datasets.load(config.dataset, config.train_split)
            self.classes = int(max(self.y.max(), self.y_train.max())) + 1
        else:
            self._read(suite_dir or Path("."))

    def _read(self, suite_dir: Path) -> None:
        import torch

        from harness_plugins.data.arrays import class_ids, read_splits

        c = self.config
        splits = read_splits(c, suite_dir)
        if c.split not in splits or not len(splits[c.split].x):
            raise ValueError(f"the data has no samples in split '{c.split}': check split and the data's split names")
        ids, self.classes, how = class_ids(splits, c.classes)
        tensors = {name: (torch.from_numpy(s.x.copy()), torch.from_numpy(ids[name])) for name, s in splits.items()}
        self.x, self.y = tensors[c.split]
        self.x_train, self.y_train = tensors.get(c.train_split, (None, None))
        self.info = {"classes": self.classes, "features": int(self.x[0].numel()),
                     "train_samples": 0 if self.y_train is None else len(self.y_train), "label_mapping": how}

    def before_compression(self, model: Any) -> None:
        """One forward pass on two samples: inputs the model cannot take, or fewer outputs
        than classes, fail here with the data's shape rather than inside a method."""
        from harness_plugins.tasks.class_labels import trial_outputs

        out = trial_outputs(model, self.x, self.device, "the features must be those the model was trained on "
                            "(see feature_columns, or the arrays' shape)")
        outputs = getattr(out, "shape", None)
        if outputs is not None and outputs[-1] < self.classes:
            raise ValueError(f"the model has {outputs[-1]} outputs but the data has {self.classes} classes "
                             f"({self.info.get('label_mapping', self.config.dataset)})")

    def evaluate(self, model: Any) -> dict[str, Any]:
        import torch

        correct: list[int] = []
        with torch.inference_mode():
            for i in range(0, len(self.y), self.config.batch_size):
                x = self.x[i:i + self.config.batch_size].to(self.device)
                y = self.y[i:i + self.config.batch_size].to(self.device)
                correct += (model(x).argmax(dim=1) == y).int().tolist()
        n = len(self.y)
        p = sum(correct) / n
        return {"accuracy": p, "accuracy_stderr": math.sqrt(p * (1 - p) / n), "eval_samples": n,
                "outcomes": Outcomes("accuracy", correct), **self.info}

    def example_input(self, batch_size: int) -> Any:
        import torch

        reps = -(-batch_size // len(self.x))
        return torch.cat([self.x] * reps)[:batch_size].to(self.device).contiguous()

    def training_split(self) -> tuple[Any, Any]:
        if self.x_train is None or not len(self.x_train):
            raise Skip(f"the classification data has no training split '{self.config.train_split}': add it "
                       "(see docs/data.md) or set train_split, for calibrated and trained methods")
        return self.x_train, self.y_train

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[Any]:
        x = self.training_split()[0][:n_samples].to(self.device)
        return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]

    def train_batches(self, batch_size: int, seed: int):
        import torch

        x_train, y_train = self.training_split()
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield x_train[idx].to(self.device), y_train[idx].to(self.device)

    def loss(self, output: Any, target: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(output, target)


class Classification(TaskKind):
    name = "classification"
    description = ("top-1 accuracy (± standard error) on the bundled digits or your own arrays/tables "
                   "(.npz, .npy, CSV, Parquet)")
    Config = ClassificationConfig

    def check_config(self, config: ClassificationConfig, suite_dir: Path) -> list[str]:
        if config.dataset is not None:
            return []
        from harness_plugins.data.arrays import data_problems

        return data_problems(config, suite_dir)

    def prepare(self, config: ClassificationConfig, ctx: Any) -> ClassificationData:
        return ClassificationData(config, ctx.device, ctx.suite_dir)


@hookimpl
def harness_register_tasks(register):
    register(Classification)
