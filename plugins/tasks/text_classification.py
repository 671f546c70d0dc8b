"""The ``text-classification`` task: accuracy (± standard error) and macro-F1 of a sequence
classifier on the user's own data, read with Hugging Face ``datasets``.

Data: a hub id, a ``save_to_disk`` directory or local CSV/JSON/Parquet files
(:mod:`harness_plugins.data.hf_data`); labels are matched to the model's outputs by
name (:mod:`harness_plugins.tasks.class_labels`). The model must carry its tokenizer
(the ``hf`` source attaches it). Inputs for timing, calibration and training are
``input_ids`` tensors that ``model(x)`` takes; see ``docs/text-classification.md``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import PreparedTask, Skip, TaskKind
from harness_plugins.sources.hf import TRANSFORMERS_PRELOAD
from harness_plugins.tasks.class_labels import scores


@dataclass(frozen=True)
class TextClassificationConfig:
    dataset: str | None = None  # a hub id, or a save_to_disk directory (relative to the suite)
    subset: str | None = None  # the hub data set's configuration, e.g. "sst2" of "glue"
    data_files: dict[str, str] | None = None  # split -> CSV/JSON/Parquet file, relative to the suite
    split: str = "test"
    train_split: str | None = "train"  # calibration and training data; None or absent: methods that need it skip
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    max_length: int = 128  # tokens; longer inputs are truncated
    batch_size: int = 32
    max_samples: int | None = None  # evaluate the first N rows of the split only

    def __post_init__(self) -> None:
        from harness_plugins.data.hf_data import FORMATS, file_format

        if (self.dataset is None) == (self.data_files is None):
            raise ValueError("set exactly one of dataset (a hub id or save_to_disk directory) and data_files "
                             "(e.g. data_files = { train = \"train.csv\", test = \"test.csv\" })")
        if self.data_files is not None:
            if self.split not in self.data_files:
                raise ValueError(f"split '{self.split}' has no file in data_files (it lists "
                                 f"{', '.join(self.data_files) or 'nothing'}): add it or set split")
            formats = {file_format(str(f)) for f in self.data_files.values()}
            if None in formats or len(formats) > 1:
                raise ValueError(f"data_files must all be of one format, named by suffix: {', '.join(FORMATS)}")
        if self.max_length < 2 or self.batch_size < 1 or (self.max_samples is not None and self.max_samples < 1):
            raise ValueError("max_length must be >= 2, batch_size and max_samples >= 1")

    def columns(self) -> dict[str, str]:
        keys = {"text_column": self.text_column, "label_column": self.label_column}
        return keys | ({"text_pair_column": self.text_pair_column} if self.text_pair_column else {})


def length_groups(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches of equal token length (first-seen order), so that inputs
    need no padding and ``model(input_ids)`` sees exactly the tokens of its rows."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    return [rows[i:i + batch_size] for rows in by_length.values() for i in range(0, len(rows), batch_size)]


class TextClassificationData(PreparedTask):
    def __init__(self, config: TextClassificationConfig, ctx: Any):
        from harness_plugins.data.hf_data import eval_and_train, load_splits

        self.config, self.device = config, ctx.device
        wanted = [config.split] + ([config.train_split] if config.train_split else [])
        found = load_splits(config, ctx.suite_dir, wanted)
        self.eval_data, self.train_data = eval_and_train(found, config.columns(), config.split,
                                                         config.train_split, config.max_samples)
        self.tokenizer: Any = None
        self.label2id: dict[str, int] | None = None
        self.num_labels = 0
        self.batches: list[Any] = []  # tokenized evaluation batches
        self.eval_labels: list[int] = []
        self.label_mapping = ""
        self._train: tuple[list[list[int]], list[int]] | None = None

    def before_compression(self, model: Any) -> None:
        """Tokenize the evaluation split once (padded to the longest row of each batch) and
        match its labels to the original model's outputs."""
        from harness_plugins.sources.hf import TOKENIZER_ATTR

        self.tokenizer = getattr(model, TOKENIZER_ATTR, None)
        if self.tokenizer is None:
            raise ValueError("text-classification needs a model that carries its tokenizer: load it with "
                             "source = \"hf\"")
        config = getattr(model, "config", None)
        self.label2id = getattr(config, "label2id", None)
        self.num_labels = int(getattr(config, "num_labels", 0) or len(self.label2id or {}))
        self.eval_labels, self.label_mapping = self.labels(self.eval_data, self.config.split)
        size = self.config.batch_size
        self.batches = [self.encode(self.eval_data[i:i + size], padding="longest", return_tensors="pt")
                        for i in range(0, len(self.eval_data), size)]

    def labels(self, data: Any, split: str) -> tuple[list[int], str]:
        from harness_plugins.tasks.class_labels import column_labels, to_model_ids

        values, names = column_labels(data, self.config.label_column)
        return to_model_ids(values, names, self.label2id, self.num_labels,
                            f"label_column '{self.config.label_column}' of split '{split}'")

    def encode(self, rows: dict[str, list[Any]], **kwargs: Any) -> Any:
        c = self.config
        pairs = rows[c.text_pair_column] if c.text_pair_column else None
        return self.tokenizer(rows[c.text_column], pairs, truncation=True, max_length=c.max_length, **kwargs)

    def evaluate(self, model: Any) -> dict[str, Any]:
        import torch

        predictions: list[int] = []
        with torch.inference_mode():
            for encoded in self.batches:
                logits = model(**{k: v.to(self.device) for k, v in encoded.items()}).logits
                predictions += logits.argmax(dim=-1).tolist()
        return {**scores(self.eval_labels, predictions), "label_mapping": self.label_mapping}

    def example_input(self, batch_size: int) -> Any:
        """``input_ids`` of the evaluation rows of the most common token length, in split
        order (repeated to fill the batch): real rows, no padding, the same for every method."""
        import torch

        rows = [ids[mask.bool()].tolist() for encoded in self.batches
                for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])]
        common = Counter(len(r) for r in rows).most_common(1)[0][0]
        chosen = [r for r in rows if len(r) == common]
        return torch.tensor([chosen[i % len(chosen)] for i in range(batch_size)], device=self.device)

    def training_rows(self) -> tuple[list[list[int]], list[int]]:
        """Token ids (unpadded) and label ids of the training split, made on first use."""
        if self.train_data is None:
            raise Skip(f"the text-classification data has no training split '{self.config.train_split}': "
                       "add one (e.g. data_files.train) or set train_split, for calibrated and trained methods")
        if self._train is None:
            labels, _ = self.labels(self.train_data, str(self.config.train_split))
            self._train = self.encode(self.train_data[:])["input_ids"], labels
        return self._train

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[Any]:
        import torch

        ids = self.training_rows()[0][:n_samples]
        return [torch.tensor([ids[i] for i in group], device=self.device)
                for group in length_groups([len(r) for r in ids], batch_size)]

    def train_batches(self, batch_size: int, seed: int):
        import torch

        ids, labels = self.training_rows()
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(ids), generator=generator).tolist()
        groups = length_groups([len(ids[i]) for i in order], batch_size)
        for g in torch.randperm(len(groups), generator=generator).tolist():
            rows = [order[i] for i in groups[g]]
            yield (torch.tensor([ids[i] for i in rows], device=self.device),
                   torch.tensor([labels[i] for i in rows], device=self.device))

    def loss(self, output: Any, target: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(getattr(output, "logits", output).float(), target)


class TextClassification(TaskKind):
    name = "text-classification"
    preload = ("datasets", *TRANSFORMERS_PRELOAD)
    requires = ("datasets",)  # harness validate and harness plugins say when it is missing
    description = "accuracy (± standard error) and macro-F1 of a sequence classifier on a datasets data set"
    Config = TextClassificationConfig

    def check_config(self, config: TextClassificationConfig, suite_dir: Path) -> list[str]:
        from harness_plugins.data.hf_data import check_source

        return check_source(config, suite_dir, config.columns())

    def prepare(self, config: TextClassificationConfig, ctx: Any) -> TextClassificationData:
        return TextClassificationData(config, ctx)


@hookimpl
def harness_register_tasks(register):
    register(TextClassification)
