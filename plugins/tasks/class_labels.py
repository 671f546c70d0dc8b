"""A data set's labels as a classifier's output ids, read through the data's own class names.

The rule (the same for every classification task kind that reads labels by name):

- the data names its classes (a ``datasets.ClassLabel`` feature's names, or string labels)
  and every name is one of the model's ``config.label2id`` names (case-insensitive):
  each label becomes the model's id for that name;
- otherwise integer labels (a ``ClassLabel``'s ids, or an integer column) are used as the
  model's output ids as they are;
- a string label the model does not know is an error that names it.

Every id must then be an output of the model (``0 .. num_labels - 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.api import Outcomes


def column_labels(dataset: Any, column: str) -> tuple[list[Any], list[str] | None]:
    """``(values, class names)`` of a ``datasets.Dataset`` column: a ClassLabel's ids and
    names; strings and None; integers and None."""
    import datasets

    feature = dataset.features[column]
    values = list(dataset[column])
    if isinstance(feature, datasets.ClassLabel):
        return values, list(feature.names)
    if None in values:
        raise ValueError(f"label_column '{column}' is empty in row {values.index(None)}: fill or drop such rows")
    if all(isinstance(v, str) for v in values):
        return values, None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return values, None
    raise ValueError(f"label_column '{column}' holds {feature}: labels must be class names (strings), "
                     "integer ids or a ClassLabel")


def to_model_ids(values: Sequence[Any], names: list[str] | None, label2id: dict[str, int] | None,
                 num_labels: int, where: str) -> tuple[list[int], str]:
    """The model's output id of every label, and how they were matched (one line)."""
    model = {str(k).lower(): int(v) for k, v in (label2id or {}).items()}
    strings = names is None and any(isinstance(v, str) for v in values)
    data_names = sorted(set(values)) if strings else names
    if data_names is not None and model and all(n.lower() in model for n in data_names):
        table = {n: model[n.lower()] for n in data_names}
        ids = [table[v] for v in values] if strings else [table[names[v]] if 0 <= v < len(names) else v
                                                          for v in values]
        how = "by name through the model's config.label2id: " + ", ".join(f"{n}={i}" for n, i in table.items())
    elif strings:
        unknown = next(n for n in data_names if n.lower() not in model)
        known = ", ".join(label2id or {}) or "none: it has no config.label2id"
        raise ValueError(f"{where}: label '{unknown}' is not a class of the model (its classes: {known}): "
                         "rename the labels to the model's, or use integer labels")
    else:
        ids = [int(v) for v in values]
        how = ("the data set's integer labels as the model's output ids" if names is None else
               f"the data set's ClassLabel ids as the model's output ids (its names {', '.join(names)} "
               f"are not all among the model's: {', '.join(label2id or {}) or 'none'})")
    bad = next((i for i in ids if not 0 <= i < num_labels), None)
    if bad is not None:
        raise ValueError(f"{where}: label id {bad} is not an output of the model (ids 0..{num_labels - 1}); "
                         "a split labelled -1 has no labels (e.g. GLUE's test splits): evaluate another split")
    return ids, how


def macro_f1(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the classes in the labels or predictions
    (scikit-learn's ``f1_score(average="macro")``)."""
    scores = []
    for c in sorted(set(labels) | set(predictions)):
        tp = sum(1 for y, p in zip(labels, predictions) if y == c and p == c)
        fp = sum(1 for y, p in zip(labels, predictions) if y != c and p == c)
        fn = sum(1 for y, p in zip(labels, predictions) if y == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def scores(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, Any]:
    """Top-1 accuracy with its (binomial) standard error, macro-F1, the sample count and
    the per-example correctness (the outcomes of accuracy, for paired verdicts)."""
    import math

    n = len(labels)
    correct = [1 if y == q else 0 for y, q in zip(labels, predictions)]
    p = sum(correct) / n
    return {"accuracy": p, "accuracy_stderr": math.sqrt(p * (1 - p) / n),
            "macro_f1": macro_f1(labels, predictions), "eval_samples": n,
            "outcomes": Outcomes("accuracy", correct)}


def trial_outputs(model: Any, x: Any, device: str, fix: str) -> Any:
    """The model's output (``.logits`` where it has them) on the first two samples of
    ``x``: inputs the model cannot take fail here, naming the data's shape and ``fix``,
    rather than inside a method."""
    import torch

    shape = "[N, " + ", ".join(map(str, x.shape[1:])) + "]"
    try:
        with torch.inference_mode():
            out = model(x[:2].to(device))
    except RuntimeError as exc:
        raise ValueError(f"the model does not take this data's inputs, float32 {shape} "
                         f"({str(exc).splitlines()[0]}): {fix}") from None
    return getattr(out, "logits", out)
