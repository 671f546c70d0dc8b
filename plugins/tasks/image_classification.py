"""The ``image-classification`` task: accuracy (± standard error) and macro-F1 of an image
classifier on the user's own images, read with Hugging Face ``datasets``.

Data: an ImageFolder directory, a ``save_to_disk`` directory or a hub id; preprocessing:
the model's own (HF image processor, torchvision/timm transforms) or explicit
resize/crop/mean/std (:mod:`harness_plugins.data.images`). Labels are matched to the
model's outputs by name (:mod:`harness_plugins.tasks.class_labels`) or through
``class_ids``. The evaluation split is preprocessed once, in ``before_compression``, and
kept in memory; training images are preprocessed per batch. See ``docs/vision.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness import hookimpl
from harness.api import PreparedTask, Skip, TaskKind
from harness_plugins.sources.vision import CLASS_NAMES_ATTR  # class names in output order
from harness_plugins.tasks.class_labels import scores, trial_outputs


def _size_ok(value: int | tuple[int, ...] | None) -> bool:
    sizes = (value,) if isinstance(value, int) else value or ()
    return value is None or (len(sizes) in (1, 2) and all(s >= 1 for s in sizes))


@dataclass(frozen=True)
class ImageClassificationConfig:
    data_dir: str | None = None  # an ImageFolder tree <split>/<class>/<image>, relative to the suite
    dataset: str | None = None  # a save_to_disk directory or a hub id
    subset: str | None = None  # the hub data set's configuration
    split: str = "test"
    train_split: str | None = "train"  # calibration and training data; "" or absent: methods that need it skip
    image_column: str = "image"
    label_column: str = "label"
    batch_size: int = 32
    max_samples: int | None = None  # evaluate the first N images of the split only
    resize: int | tuple[int, ...] | None = None  # shorter side to N, or [height, width]
    crop: int | tuple[int, ...] | None = None  # centre crop: N (square) or [height, width]
    mean: tuple[float, ...] | None = None  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...] | None = None
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"  # for resize
    class_ids: dict[str, int] | None = None  # data class name -> model output id; wins over names

    def __post_init__(self) -> None:
        if (self.data_dir is None) == (self.dataset is None):
            raise ValueError("set exactly one of data_dir (an ImageFolder directory: <split>/<class>/<image>) and "
                             "dataset (a save_to_disk directory or a hub id)")
        if self.subset is not None and self.dataset is None:
            raise ValueError("subset names a hub data set's configuration: set dataset, or remove subset")
        if self.batch_size < 1 or (self.max_samples is not None and self.max_samples < 1):
            raise ValueError("batch_size and max_samples must be >= 1")
        for key in ("resize", "crop"):
            if not _size_ok(getattr(self, key)):
                raise ValueError(f"{key} must be a positive number of pixels or [height, width]")
        if (self.mean is None) != (self.std is None):
            raise ValueError("set mean and std together (per channel, e.g. mean = [0.485, 0.456, 0.406], "
                             "std = [0.229, 0.224, 0.225]), or neither")
        if self.mean is not None and (len(self.mean) != 3 or len(self.std) != 3 or 0 in self.std):
            raise ValueError("mean and std need 3 values each (R, G, B), and std no zero")
        if self.class_ids is not None and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                  for v in self.class_ids.values()):
            raise ValueError("class_ids maps each class name of the data to the model's output id (an integer "
                             ">= 0), e.g. class_ids = { n01440764 = 0, n02102040 = 217 }")

    def explicit(self) -> bool:
        """Explicit preprocessing keys given: they win over the model's own."""
        return any(v is not None for v in (self.resize, self.crop, self.mean))

    def training(self) -> str | None:
        return self.train_split or None


def by_class_ids(values: list[Any], names: list[str] | None, class_ids: dict[str, int],
                 where: str) -> tuple[list[int], str]:
    """Each label's model id through the suite's ``class_ids`` (data class name -> id)."""
    if names is None and not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where} holds integer ids, but class_ids maps class names: remove class_ids")
    named = [names[v] for v in values] if names is not None else values
    unknown = next((n for n in dict.fromkeys(named) if n not in class_ids), None)
    if unknown is not None:
        raise ValueError(f"{where}: class '{unknown}' is not in class_ids (it lists {', '.join(class_ids)}): add it")
    return [class_ids[n] for n in named], "through the task's class_ids"


class ImageClassificationData(PreparedTask):
    def __init__(self, config: ImageClassificationConfig, ctx: Any):
        from harness_plugins.data.hf_data import eval_and_train
        from harness_plugins.data.images import load_image_splits

        self.config, self.device = config, ctx.device
        train = config.training()
        wanted = [config.split] + ([train] if train and train != config.split else [])
        found = load_image_splits(config, ctx.suite_dir, wanted)
        columns = {"image_column": config.image_column, "label_column": config.label_column}
        self.eval_data, self.train_data = eval_and_train(found, columns, config.split, train,
                                                         config.max_samples, what="images")
        self.pixels: Any = None  # list of PIL images -> [N, 3, H, W]
        self.x: Any = None  # the evaluation split's pixels
        self.y: list[int] = []
        self.label2id: dict[str, int] | None = None
        self.num_labels = 0
        self.info: dict[str, Any] = {}
        self._train_labels: list[int] | None = None

    def preprocess(self, data: Any, rows: range | list[int], split: str) -> Any:
        from harness_plugins.data.images import stacked

        return stacked(data[list(rows)][self.config.image_column], self.pixels, f"split '{split}'")

    def preprocess_all(self, data: Any, split: str) -> Any:
        """Every image of ``data``, batch by batch into one preallocated tensor."""
        import torch

        size, n = self.config.batch_size, len(data)
        first = self.preprocess(data, range(min(size, n)), split)
        x = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
        x[:len(first)] = first
        for i in range(size, n, size):
            batch = self.preprocess(data, range(i, min(i + size, n)), split)
            if batch.shape[1:] != first.shape[1:]:
                raise ValueError(f"split '{split}': the images differ in size after preprocessing "
                                 f"({list(first.shape[1:])}, {list(batch.shape[1:])}): set resize (and crop)")
            x[i:i + size] = batch
        return x

    def before_compression(self, model: Any) -> None:
        """Preprocess the evaluation split once with the original model's preprocessing,
        check the model takes it, and match the labels to its outputs."""
        from harness_plugins.data.images import pixel_function

        self.pixels, how = pixel_function(model, self.config)
        self.x = self.preprocess_all(self.eval_data, self.config.split)
        self.num_labels = int(trial_outputs(model, self.x, self.device, "check the preprocessing keys").shape[-1])
        config = getattr(model, "config", None)
        names = getattr(model, CLASS_NAMES_ATTR, None)
        self.label2id = getattr(config, "label2id", None) or ({n: i for i, n in enumerate(names)} if names else None)
        self.y, mapping = self.labels(self.eval_data, self.config.split)
        self.info = {"label_mapping": mapping, "preprocessing": how, "image_shape": list(self.x.shape[1:])}

    def labels(self, data: Any, split: str) -> tuple[list[int], str]:
        from harness_plugins.tasks.class_labels import column_labels, to_model_ids

        values, names = column_labels(data, self.config.label_column)
        where = f"label_column '{self.config.label_column}' of split '{split}'"
        if self.config.class_ids is not None:
            ids, how = by_class_ids(values, names, self.config.class_ids, where)
            return to_model_ids(ids, None, None, self.num_labels, where)[0], how
        return to_model_ids(values, names, self.label2id, self.num_labels, where)

    def evaluate(self, model: Any) -> dict[str, Any]:
        import torch

        predictions: list[int] = []
        with torch.inference_mode():
            for i in range(0, len(self.x), self.config.batch_size):
                out = model(self.x[i:i + self.config.batch_size].to(self.device))
                predictions += getattr(out, "logits", out).argmax(dim=-1).tolist()
        return {**scores(self.y, predictions), **self.info}

    def example_input(self, batch_size: int) -> Any:
        """The first ``batch_size`` preprocessed evaluation images (repeated to fill it)."""
        import torch

        reps = -(-batch_size // len(self.x))
        return torch.cat([self.x] * reps)[:batch_size].to(self.device).contiguous()

    def training_labels(self) -> list[int]:
        if self.train_data is None:
            raise Skip(f"the image data has no training split '{self.config.train_split}': add one (e.g. a "
                       "train/ folder) or set train_split, for calibrated and trained methods")
        if self._train_labels is None:
            self._train_labels = self.labels(self.train_data, str(self.config.train_split))[0]
        return self._train_labels

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[Any]:
        n = min(n_samples, len(self.training_labels()))
        split = str(self.config.train_split)
        return [self.preprocess(self.train_data, range(i, min(i + batch_size, n)), split).to(self.device)
                for i in range(0, n, batch_size)]

    def train_batches(self, batch_size: int, seed: int):
        import torch

        labels = torch.tensor(self.training_labels())
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            pixels = self.preprocess(self.train_data, rows, str(self.config.train_split))
            yield pixels.to(self.device), labels[rows].to(self.device)

    def loss(self, output: Any, target: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(getattr(output, "logits", output).float(), target)


class ImageClassification(TaskKind):
    name = "image-classification"
    preload = ("datasets", "PIL.Image")
    requires = ("datasets", "PIL")
    description = ("accuracy (± standard error) and macro-F1 of an image classifier on an ImageFolder "
                   "directory or a datasets image data set")
    Config = ImageClassificationConfig

    def check_config(self, config: ImageClassificationConfig, suite_dir: Path) -> list[str]:
        from types import SimpleNamespace

        from harness_plugins.data.hf_data import check_source
        from harness_plugins.data.images import folder_problems

        if config.data_dir is not None:
            return folder_problems(config.data_dir, config.split, suite_dir)
        source = SimpleNamespace(dataset=config.dataset, data_files=None, split=config.split,
                                 train_split=config.training())
        return check_source(source, suite_dir, {"image_column": config.image_column,
                                                "label_column": config.label_column})

    def prepare(self, config: ImageClassificationConfig, ctx: Any) -> ImageClassificationData:
        return ImageClassificationData(config, ctx)


@hookimpl
def harness_register_tasks(register):
    register(ImageClassification)
