"""What every LM task shares: config keys for text and generation timing, and a
:class:`~harness.api.PreparedTask` base that serves inputs, calibration and training
batches from a text file and measures generation speed of causal LMs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import PreparedTask, Skip


@dataclass(frozen=True, kw_only=True)
class TextKeys:
    """Keys every LM task accepts besides its own."""

    calibration_text: str | None = None  # a text file (relative to the suite) for calibration/training
    seq_len: int = 128  # tokens per input row: forward timing, calibration and training windows
    gen_batch_sizes: tuple[int, ...] = (1,)  # generation timing; [] turns it off
    gen_prompt_tokens: int = 64
    gen_new_tokens: int = 32
    gen_repeats: int = 3

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.gen_prompt_tokens < 1 or self.gen_new_tokens < 1:
            raise ValueError("seq_len must be >= 2, gen_prompt_tokens and gen_new_tokens >= 1")
        if any(b < 1 for b in self.gen_batch_sizes) or self.gen_repeats < 1:
            raise ValueError("gen_batch_sizes and gen_repeats must be >= 1")


def suite_path(name: str, suite_dir: Path) -> Path:
    return (suite_dir / Path(name).expanduser()).resolve()


def missing_file(key: str, name: str | None, suite_dir: Path) -> list[str]:
    """A problem if ``name`` is set but no such file exists (paths are relative to the suite)."""
    if name is None or suite_path(name, suite_dir).is_file():
        return []
    return [f"{key}: file '{name}' does not exist (paths are relative to the suite file)"]


class TextTask(PreparedTask):
    """Base of the LM tasks' prepared form; sees the original model once for its tokenizer."""

    def __init__(self, keys: TextKeys, ctx: Any, text_file: str | None = None):
        self.keys, self.device, self.seed = keys, ctx.device, ctx.seed
        text = text_file or keys.calibration_text
        self.text_path = suite_path(text, ctx.suite_dir) if text else None
        self.tokenizer: Any = None
        self.vocab_size = 0
        self.causal = False
        self._windows: Any = None

    def before_compression(self, model: Any) -> None:
        from harness_plugins.sources.hf import is_causal_lm, tokenizer_of

        self.tokenizer = tokenizer_of(model)
        self.vocab_size = model.config.vocab_size
        self.causal = is_causal_lm(model)

    def windows(self) -> Any:
        """The text file as token rows of ``seq_len`` (a tensor), for calibration and training."""
        import torch

        if self._windows is None:
            if self.text_path is None:
                raise ValueError("this task has no text for calibration or training: set calibration_text")
            ids = self.tokenizer(self.text_path.read_text(encoding="utf-8"))["input_ids"]
            n = len(ids) // self.keys.seq_len
            if n == 0:
                raise ValueError(f"{self.text_path} is shorter than seq_len={self.keys.seq_len} tokens")
            self._windows = torch.tensor(ids[:n * self.keys.seq_len]).view(n, self.keys.seq_len)
        return self._windows

    def example_input(self, batch_size: int) -> Any:
        from harness_plugins.tasks.lm.generation import prompts

        return prompts(self.vocab_size, batch_size, self.keys.seq_len, self.seed).to(self.device)

    def calibration_batches(self, n_samples: int, batch_size: int = 8) -> list[Any]:
        rows = self.windows()[:n_samples].to(self.device)
        return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]

    def train_batches(self, batch_size: int, seed: int):
        """Windows of the text as (input ids, the same ids) for next-token prediction, which
        only a causal LM does: any other model skips the method that trains."""
        if not self.causal:
            raise Skip("training on an LM task's text is next-token prediction, which needs a causal LM, and this "
                       "model is not one (a classifier trains on the labels of a text-classification task)")
        return self._next_token_batches(batch_size, seed)

    def _next_token_batches(self, batch_size: int, seed: int):
        import torch

        rows = self.windows()
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
        for i in range(0, len(order), batch_size):
            batch = rows[order[i:i + batch_size]].to(self.device)
            yield batch, batch

    def loss(self, output: Any, target: Any) -> Any:
        """Next-token cross-entropy (``target`` is the input ids)."""
        import torch.nn.functional as F

        logits = getattr(output, "logits", output)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target[:, 1:].reshape(-1))

    def extra_measurements(self, model: Any, measure: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if not (self.causal and self.keys.gen_batch_sizes):
            return {}, {}
        from harness_plugins.tasks.lm.generation import measure_generation

        k = self.keys
        context = getattr(model.config, "max_position_embeddings", None)
        if context and k.gen_prompt_tokens + k.gen_new_tokens > context:
            why = (f"absent: gen_prompt_tokens + gen_new_tokens = {k.gen_prompt_tokens + k.gen_new_tokens} exceed "
                   f"the model's context of {context} tokens: lower them in the task")
            return {}, {"ttft_ms": why, "decode_tokens_per_s": why}
        return measure_generation(model, prompt_tokens=k.gen_prompt_tokens, new_tokens=k.gen_new_tokens,
                                  batch_sizes=list(k.gen_batch_sizes), repeats=k.gen_repeats,
                                  seed=self.seed, device=self.device)
