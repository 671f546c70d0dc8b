"""The ``fidelity`` task: how closely the compressed model follows the original, unlabelled.

Before any method runs, the original model's output distributions on fixed inputs are
kept (next-token distributions of an LM over a text file, or class distributions of a
classifier over a bundled data set); after compression the same inputs give
``top1_agreement`` (share of positions/samples with the same argmax) and ``kl_div_mean``
(mean KL(original || compressed), in nats).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import TaskKind
from harness_plugins.tasks.lm.text_task import TextKeys, TextTask, missing_file


@dataclass(frozen=True, kw_only=True)
class FidelityConfig(TextKeys):
    text: str | None = None  # LMs: a text file (relative to the suite) cut into seq_len windows
    dataset: str | None = None  # classifiers: a bundled data set, e.g. "digits"
    split: str = "test"
    max_tokens: int = 512  # LMs: positions compared (the original's log-probs are kept in memory)
    max_samples: int = 2000  # classifiers: samples compared
    batch_size: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.text is None) == (self.dataset is None):
            raise ValueError("set exactly one of text (for LMs) or dataset (for classifiers)")
        if min(self.max_tokens, self.max_samples, self.batch_size) < 1:
            raise ValueError("max_tokens, max_samples and batch_size must be >= 1")
        if self.dataset is not None:
            from harness_plugins.tasks.classification import ClassificationConfig

            ClassificationConfig(self.dataset, self.split)  # raises for an unknown data set/split


def log_probs(model: Any, batch: Any) -> Any:
    """Log-softmax of the model's outputs, one row per position (LM) or sample (classifier)."""
    import torch.nn.functional as F

    out = model(batch)
    logits = getattr(out, "logits", out)
    if not hasattr(logits, "float"):  # e.g. BertModel: hidden states, no distribution to compare
        raise ValueError(f"fidelity compares output distributions, and {type(model).__name__} returns "
                         f"{type(out).__name__} without logits; load it with a head (hf options head = "
                         "'masked-lm' or 'sequence-classification')")
    return F.log_softmax(logits.float(), dim=-1).reshape(-1, logits.shape[-1]).cpu()


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
        self.reference: Any = None

    def inputs(self) -> Any:
        if self.classification is not None:
            return self.classification.x[:self.config.max_samples]
        rows = max(1, self.config.max_tokens // self.keys.seq_len)
        return self.windows()[:rows]

    def outputs(self, model: Any) -> Any:
        import torch

        x = self.inputs()
        step = self.config.batch_size
        with torch.inference_mode():
            return torch.cat([log_probs(model, x[i:i + step].to(self.device)) for i in range(0, len(x), step)])

    def before_compression(self, model: Any) -> None:
        if self.classification is None:
            super().before_compression(model)
        self.reference = self.outputs(model)

    def evaluate(self, model: Any) -> dict[str, float]:
        compressed = self.outputs(model)
        ref = self.reference
        agree = (compressed.argmax(dim=-1) == ref.argmax(dim=-1)).float()
        kl = (ref.exp() * (ref - compressed)).sum(dim=-1).clamp_min(0)
        return {"top1_agreement": float(agree.mean()), "kl_div_mean": float(kl.mean()),
                "kl_div_max": float(kl.max()), "fidelity_positions": int(len(ref))}

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
    description = "top-1 agreement and KL divergence of the compressed model's outputs vs the original"
    Config = FidelityConfig

    def check_config(self, config: FidelityConfig, suite_dir: Path) -> list[str]:
        return missing_file("text", config.text, suite_dir) + \
            missing_file("calibration_text", config.calibration_text, suite_dir)

    def prepare(self, config: FidelityConfig, ctx: Any) -> FidelityData:
        return FidelityData(config, ctx)
