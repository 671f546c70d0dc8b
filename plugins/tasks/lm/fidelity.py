"""The ``fidelity`` task: how closely the compressed model follows the original, unlabelled.

Before any method runs, the original model's outputs on fixed inputs are kept; after
compression the same inputs are compared (:mod:`.fidelity_modes` says what each mode
compares and reports). Inputs: a causal LM reads the ``text`` file as ``seq_len``-token
windows; any other text model reads its non-empty lines, one input each (tokenized with
the model's tokenizer, truncated to ``seq_len``); a classifier may instead read a bundled
``dataset``. The mode is chosen from the model's outputs unless ``mode`` names one, and is
reported as ``fidelity_mode``; an encoder's vectors are pooled as the model is used
(:mod:`.pooling`), reported as ``fidelity_pooling``. The primary metric is
``top1_agreement`` (per-position 0/1 outcomes) for distributions and ``cosine_mean``
(per-vector cosines) for hidden states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import harness_plugins.tasks.lm.fidelity_modes as modes
import harness_plugins.tasks.lm.pooling as pooling
from harness.api import TaskKind
from harness.toolkit import OMIT_AT_DEFAULT
from harness_plugins.sources.hf import TRANSFORMERS_PRELOAD
from harness_plugins.tasks.lm.text_task import TextKeys, TextTask, missing_file


@dataclass(frozen=True, kw_only=True)
class FidelityConfig(TextKeys):
    text: str | None = None  # text models: a text file (relative to the suite)
    dataset: str | None = None  # classifiers: a bundled data set, e.g. "digits"
    split: str = "test"
    mode: Literal["auto", "causal-lm", "masked-lm", "classifier", "encoder"] = field(default="auto", metadata=OMIT_AT_DEFAULT)
    states: Literal["pooled", "tokens"] = field(default="pooled", metadata=OMIT_AT_DEFAULT)  # encoder mode: one pooled vector per input, or every token
    # encoder mode, pooled states: auto = sentence-transformers' pooling config, else the mean. A plain
    # field (not OMIT_AT_DEFAULT): its default no longer compares pooler_output, so old results' ids change.
    pooling: Literal["auto", "cls", "mean", "max", "pooler"] = "auto"
    max_tokens: int = 512  # per-token modes: positions compared (the original's outputs are kept in memory)
    max_samples: int = 2000  # per-input modes: inputs (lines of text, or data set samples) compared
    batch_size: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.text is None) == (self.dataset is None):
            raise ValueError("set exactly one of text (for text models) or dataset (for classifiers)")
        if self.states == "tokens" and self.pooling != "auto":
            raise ValueError("pooling applies to states = 'pooled': with states = 'tokens' every token is compared")
        if min(self.max_tokens, self.max_samples, self.batch_size) < 1:
            raise ValueError("max_tokens, max_samples and batch_size must be >= 1")
        if self.dataset is not None:
            from harness_plugins.tasks.classification import ClassificationConfig

            ClassificationConfig(self.dataset, self.split)  # raises for an unknown data set/split
            if self.mode not in ("auto", "classifier"):
                raise ValueError(f"mode '{self.mode}' needs text: a dataset is compared in mode 'classifier'")


class FidelityData(TextTask):
    def __init__(self, config: FidelityConfig, ctx: Any):
        super().__init__(config, ctx, text_file=config.text)
        self.config = config
        self.classification: Any = None
        if config.dataset is not None:
            from harness_plugins.tasks.classification import (
                ClassificationConfig,
                ClassificationData,
            )

            self.classification = ClassificationData(
                ClassificationConfig(config.dataset, config.split, config.batch_size), ctx.device)
        self.mode = config.mode
        self.pooled: tuple[str, ...] | None = None  # encoder mode: the pooling modes (None: every token)
        self.reference: Any = None
        self.figures: dict[str, Any] = {}
        self._batches: list[Any] | None = None

    def batches(self) -> list[Any]:
        """The compared inputs, batched: tensors, or dicts of tokenizer outputs."""
        if self._batches is None:
            self._batches = self._make_batches()
        return self._batches

    def _make_batches(self) -> list[Any]:
        step = self.config.batch_size
        if self.classification is not None:
            x = self.classification.x[:self.config.max_samples]
            return [x[i:i + step] for i in range(0, len(x), step)]
        if self.causal:
            rows = self.windows()[:max(1, self.config.max_tokens // self.keys.seq_len)]
            return [{"input_ids": rows[i:i + step]} for i in range(0, len(rows), step)]
        lines = [s for s in self.text_path.read_text(encoding="utf-8").splitlines() if s.strip()]
        if not lines:
            raise ValueError(f"{self.text_path} has no non-empty line to compare")
        lines = lines[:self.config.max_samples]
        return [dict(self.tokenizer(lines[i:i + step], padding=True, truncation=True, max_length=self.keys.seq_len,
                                    return_tensors="pt")) for i in range(0, len(lines), step)]

    def outputs(self, model: Any) -> Any:
        """The rows compared (log-probabilities or hidden states), the same inputs every time."""
        import torch

        per_token = self.mode == "masked-lm" or (self.mode == "encoder" and self.config.states == "tokens")
        limit = self.config.max_tokens if per_token else None
        out, n = [], 0
        with torch.inference_mode():
            for batch in self.batches():
                moved = self.to_device(batch)
                mask = moved.get("attention_mask", torch.ones_like(moved["input_ids"])) \
                    if isinstance(moved, dict) else None
                out.append(modes.rows(modes.run_model(model, moved, self.mode), self.mode, mask, self.pooled))
                n += len(out[-1])
                if limit is not None and n >= limit:
                    break
        rows = torch.cat(out)
        return rows[:limit] if limit is not None else rows

    def to_device(self, batch: Any) -> Any:
        if isinstance(batch, dict):
            return {k: v.to(self.device) for k, v in batch.items()}
        return batch.to(self.device)

    def choose_mode(self, model: Any) -> None:
        """The configured mode, or the one the model's outputs allow; checked on one batch."""
        import torch

        if self.classification is None and self.config.mode == "auto" and self.causal:
            self.mode = "causal-lm"
        probe = "encoder" if self.mode in ("auto", "encoder") else self.mode  # hidden states, if any
        with torch.inference_mode():
            out = modes.run_model(model, self.to_device(self.batches()[0]), probe)
        if self.mode == "auto":
            self.mode = modes.detect_mode(out)
        problem = modes.check_mode(self.mode, out, self.causal, type(model).__name__)
        if problem:
            raise ValueError(f"fidelity: {problem}; set mode to one of {', '.join(modes.MODES[1:])} that fits")
        self.figures = {"fidelity_mode": self.mode}
        if self.mode == "encoder" and self.config.states == "tokens":
            self.figures["fidelity_states"] = "last hidden state at every non-padding token"
        elif self.mode == "encoder":
            self.pooled, source = pooling.choose(model, self.config.pooling, modes.has_pooler(out))
            self.figures["fidelity_pooling"] = "+".join(self.pooled)
            self.figures["fidelity_states"] = pooling.describe(self.pooled, source)

    def before_compression(self, model: Any) -> None:
        if self.classification is None:
            super().before_compression(model)
        self.choose_mode(model)
        self.reference = self.outputs(model)

    def evaluate(self, model: Any) -> dict[str, Any]:
        compressed = self.outputs(model)
        compare = modes.state_figures if self.mode == "encoder" else modes.distribution_figures
        return compare(self.reference, compressed) | self.figures

    # Classifiers: inputs, calibration and training come from the data set instead of text.
    def example_input(self, batch_size: int) -> Any:
        if self.classification is not None:
            return self.classification.example_input(batch_size)
        return super().example_input(batch_size)

    def calibration_batches(self, n_samples: int, batch_size: int = 8) -> list[Any]:
        if self.classification is not None:
            return self.classification.calibration_batches(n_samples, batch_size)
        return super().calibration_batches(n_samples, batch_size)

    def train_batches(self, batch_size: int, seed: int):
        if self.classification is not None:
            return self.classification.train_batches(batch_size, seed)
        return super().train_batches(batch_size, seed)

    def loss(self, output: Any, target: Any) -> Any:
        if self.classification is not None:
            return self.classification.loss(output, target)
        return super().loss(output, target)


class Fidelity(TaskKind):
    name = "fidelity"
    preload = TRANSFORMERS_PRELOAD
    description = "agreement of the compressed model's outputs with the original's (distributions or hidden states)"
    Config = FidelityConfig

    def check_config(self, config: FidelityConfig, suite_dir: Path) -> list[str]:
        return missing_file("text", config.text, suite_dir) + \
            missing_file("calibration_text", config.calibration_text, suite_dir)

    def prepare(self, config: FidelityConfig, ctx: Any) -> FidelityData:
        return FidelityData(config, ctx)
