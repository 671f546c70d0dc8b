"""The ``perplexity`` task: rolling log-likelihood of a causal LM over a local text file.

Its primary metric is ``perplexity``; the per-sample outcomes are the windows' mean
negative log-likelihood per scored token, weighted by their scored tokens, so that exp of
their weighted mean is the perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import Outcomes, TaskKind
from harness_plugins.sources.hf import TRANSFORMERS_PRELOAD
from harness_plugins.tasks.lm.text_task import TextKeys, TextTask, missing_file


@dataclass(frozen=True, kw_only=True)
class PerplexityConfig(TextKeys):
    text: str  # a UTF-8 text file, relative to the suite file
    max_length: int | None = None  # tokens per window; default: the model's context, at most 1024
    stride: int | None = None  # new tokens scored per window; default max_length - 1 (no overlap)
    batch_size: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length is not None and self.max_length < 2:
            raise ValueError("max_length must be >= 2")
        if self.stride is not None and self.stride < 1:
            raise ValueError("stride must be >= 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


def windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over ``n_tokens`` positions, where
    position 0 is the prefix token: every later position is scored exactly once, each
    window scoring up to ``stride`` new tokens with up to ``max_length - 1`` of context."""
    stride = min(stride, max_length - 1)
    out, scored_to = [], 1
    while scored_to < n_tokens:
        end = min(scored_to + stride, n_tokens)
        out.append((max(0, end - max_length), end, scored_to))
        scored_to = end
    return out


class PerplexityData(TextTask):
    def __init__(self, config: PerplexityConfig, ctx: Any):
        super().__init__(config, ctx, text_file=config.text)
        self.config = config

    def evaluate(self, model: Any) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from harness_plugins.sources.hf import is_causal_lm

        if not is_causal_lm(model):
            raise ValueError("perplexity needs a causal LM (a *ForCausalLM model)")
        text = self.text_path.read_text(encoding="utf-8")
        tok = self.tokenizer
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        ids = torch.tensor([prefix] + tok(text, add_special_tokens=False)["input_ids"])
        context = getattr(model.config, "max_position_embeddings", None) or 1024
        max_length = self.config.max_length or min(context, 1024)
        spans = windows(len(ids), max_length, self.config.stride or max_length)
        window_nll, window_tokens = [], []  # per window, in text order
        with torch.inference_mode():
            for i in range(0, len(spans), self.config.batch_size):
                chunk = spans[i:i + self.config.batch_size]
                width = max(end - begin for begin, end, _ in chunk)
                batch = torch.full((len(chunk), width), prefix, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, (begin, end, _) in enumerate(chunk):
                    batch[row, :end - begin] = ids[begin:end]
                    mask[row, :end - begin] = 1
                logprobs = F.log_softmax(model(input_ids=batch.to(self.device),
                                               attention_mask=mask.to(self.device)).logits.float(), dim=-1)
                for row, (begin, end, first) in enumerate(chunk):
                    positions = torch.arange(first - begin, end - begin)
                    targets = batch[row, positions].to(self.device)
                    window_nll.append(-float(logprobs[row, positions - 1].gather(-1, targets[:, None]).double().sum()))
                    window_tokens.append(len(positions))
        nll = sum(window_nll)
        n_tokens, n_bytes = len(ids) - 1, len(text.encode("utf-8"))
        return {"perplexity": math.exp(nll / n_tokens), "bits_per_byte": nll / math.log(2) / n_bytes,
                "nll_per_token": nll / n_tokens, "eval_tokens": n_tokens, "eval_bytes": n_bytes,
                "outcomes": Outcomes("perplexity", [v / n for v, n in zip(window_nll, window_tokens)],
                                     [float(n) for n in window_tokens])}


class Perplexity(TaskKind):
    name = "perplexity"
    preload = TRANSFORMERS_PRELOAD
    description = "perplexity and bits per byte of a causal LM on a local text file (rolling windows)"
    Config = PerplexityConfig

    def check_config(self, config: PerplexityConfig, suite_dir: Path) -> list[str]:
        return missing_file("text", config.text, suite_dir) + \
            missing_file("calibration_text", config.calibration_text, suite_dir)

    def prepare(self, config: PerplexityConfig, ctx: Any) -> PerplexityData:
        return PerplexityData(config, ctx)
