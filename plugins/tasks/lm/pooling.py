"""Which vector ``fidelity`` compares per input of an encoder: the one the model is used by.

A sentence-transformers model says how it pools token states in the ``Pooling`` module of
its ``modules.json`` (``1_Pooling/config.json``); all-MiniLM-L6-v2, for one, averages them
over the attention mask and never uses BERT's ``pooler_output``. ``pooling = "auto"``
follows that file where the model's directory (or its hub cache) has one, and takes the
mean of the last hidden states over the attention mask otherwise; ``"cls"``, ``"mean"``,
``"max"`` and ``"pooler"`` (the model's ``pooler_output``) choose. Several modes in one
sentence-transformers config are concatenated in its order, as it does. A Dense or
Normalize module after the pooling is not applied (normalizing leaves cosines as they are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHOICES = ("auto", "cls", "mean", "max", "pooler")
# sentence-transformers' modes, in the order it concatenates them, and its legacy keys.
ST_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
ST_LEGACY = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
             "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
             "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}
DESCRIBED = {"cls": "first token's last hidden state",
             "max": "maximum of the last hidden states over the attention mask",
             "mean": "mean of the last hidden states over the attention mask",
             "mean_sqrt_len_tokens": "sum of the last hidden states over the attention mask / sqrt(length)",
             "weightedmean": "position-weighted mean of the last hidden states over the attention mask",
             "lasttoken": "last non-padding token's last hidden state",
             "pooler": "pooler_output"}


def _model_file(model: Any, name: str) -> Path | None:
    """A file beside the model's weights: in its directory, or in the hub cache (never fetched)."""
    where = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)
    if not where:
        return None
    if Path(where).is_dir():
        path = Path(where) / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(where, name)
    except Exception:
        return None
    return Path(found) if isinstance(found, str) else None


def sentence_transformers_modes(model: Any) -> tuple[tuple[str, ...], str] | None:
    """(pooling modes, the file they come from) of a sentence-transformers model; None
    when the model has no pooling config."""
    folder = "1_Pooling"
    modules = _model_file(model, "modules.json")
    if modules is not None:
        try:
            entries = json.loads(modules.read_text())
            folder = next(e["path"] for e in entries if str(e.get("type", "")).endswith("Pooling"))
        except (ValueError, StopIteration, KeyError, TypeError, AttributeError):
            pass
    config_file = _model_file(model, f"{folder}/config.json")
    if config_file is None:
        return None
    config = json.loads(config_file.read_text())
    mode = config.get("pooling_mode")
    if mode is not None:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(m for m in ST_MODES if config.get(ST_LEGACY[m]))
    unknown = [m for m in modes if m not in ST_MODES]
    if not modes or unknown:
        raise ValueError(f"fidelity: {config_file} names pooling {', '.join(unknown) or 'none'}, which fidelity "
                         f"does not know; set pooling to one of {', '.join(CHOICES[1:])}")
    return modes, f"{folder}/config.json"


def choose(model: Any, pooling: str, has_pooler: bool) -> tuple[tuple[str, ...], str]:
    """(modes, where the choice comes from) for the ``pooling`` key; ValueError when
    ``pooler`` is asked of a model without ``pooler_output``."""
    if pooling == "pooler" and not has_pooler:
        raise ValueError(f"fidelity: pooling = 'pooler' needs a pooler_output, and {type(model).__name__} has "
                         "none; set pooling to 'auto', 'mean' or 'cls'")
    if pooling != "auto":
        return (pooling,), "pooling"
    found = sentence_transformers_modes(model)
    if found is not None:
        return found[0], f"auto: sentence-transformers {found[1]}"
    return ("mean",), "auto: no sentence-transformers pooling config"


def describe(modes: tuple[str, ...], source: str) -> str:
    return f"{' + '.join(DESCRIBED[m] for m in modes)} ({source})"


def pool(out: Any, hidden: Any, mask: Any, modes: tuple[str, ...]) -> Any:
    """One vector per input: the ``modes`` of ``hidden`` (batch, tokens, width) over
    ``mask``, concatenated."""
    import torch

    weights = mask.to(hidden.dtype).unsqueeze(-1)
    length = weights.sum(dim=1).clamp_min(1)
    vectors = []
    for mode in modes:
        if mode == "pooler":
            vectors.append(out.pooler_output.float())
        elif mode == "cls":  # the first non-padding token (left padding too), as sentence-transformers
            vectors.append(hidden[torch.arange(len(hidden)), mask.int().argmax(dim=1)])
        elif mode == "max":
            vectors.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            total = (hidden * weights).sum(dim=1)
            vectors.append(total / length if mode == "mean" else total / length.sqrt())
        elif mode == "weightedmean":
            position = weights * torch.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype)[None, :, None]
            vectors.append((hidden * position).sum(dim=1) / position.sum(dim=1).clamp_min(1e-9))
        else:  # lasttoken: the last non-padding position
            last = mask.shape[1] - 1 - mask.flip(1).int().argmax(dim=1)
            vectors.append(hidden[torch.arange(len(hidden)), last])
    return torch.cat(vectors, dim=-1)
