"""Generation speed of a causal LM: time to first token (prefill) and decode tokens/s.

Greedy decoding with the KV cache, written out step by step so prefill and decode are
timed apart; every batch size decodes exactly ``new_tokens`` tokens (no early stop at
EOS), from the same seeded random prompts for every method.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def prompts(vocab_size: int, batch_size: int, length: int, seed: int) -> Any:
    """Seeded random token ids: the same prompts for every method of a suite."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch_size, length), generator=generator)


def cache_bytes(cache: Any) -> int | None:
    """Bytes held by a transformers KV cache (any of its layouts), or None if unknown."""
    import torch

    tensors: list[Any] = []
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56
        for layer in layers:
            tensors += [getattr(layer, "keys", None), getattr(layer, "values", None)]
    elif hasattr(cache, "key_cache"):
        tensors = list(cache.key_cache) + list(cache.value_cache)
    elif isinstance(cache, (tuple, list)):  # legacy tuples of (key, value)
        tensors = [t for pair in cache for t in pair]
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) if tensors else None


def _clock(device: str) -> Callable[[], float]:
    import torch

    if device.startswith("cuda"):
        def now() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()
        return now
    return time.perf_counter


def generate_once(model: Any, prompt: Any, new_tokens: int, now: Callable[[], float]) -> tuple[float, float, Any]:
    """(prefill seconds, decode seconds, final KV cache) of one greedy generation."""
    t0 = now()
    out = model(input_ids=prompt, use_cache=True)
    token = out.logits[:, -1:].argmax(dim=-1)
    t1 = now()
    cache = out.past_key_values
    for _ in range(new_tokens - 1):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1:].argmax(dim=-1)
    return t1 - t0, now() - t1, cache


def measure_generation(model: Any, *, prompt_tokens: int, new_tokens: int, batch_sizes: list[int],
                       repeats: int, seed: int, device: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Figures per batch size; headline ``ttft_ms``, ``kv_cache_mb`` and ``gen_peak_mem_mb`` at
    the smallest batch size (latency), ``decode_tokens_per_s`` at the largest (throughput)."""
    import torch

    from harness.toolkit import peak_rss_bytes, reset_peak_rss

    now = _clock(device)
    per_batch: dict[str, dict[str, Any]] = {}
    vocab = model.config.vocab_size
    for batch_size in batch_sizes:
        prompt = prompts(vocab, batch_size, prompt_tokens, seed).to(device)
        rss_reset = reset_peak_rss()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        prefill, decode = [], []
        with torch.inference_mode():
            generate_once(model, prompt, min(new_tokens, 2), now)  # warm-up
            for _ in range(repeats):
                p, d, cache = generate_once(model, prompt, new_tokens, now)
                prefill.append(p)
                decode.append(d)
        stats: dict[str, Any] = {"ttft_ms": statistics.median(prefill) * 1e3, "repeats": repeats}
        if new_tokens > 1:
            stats["decode_tokens_per_s"] = batch_size * (new_tokens - 1) / statistics.median(decode)
        kv = cache_bytes(cache)
        if kv is not None:
            stats["kv_cache_mb"] = kv / 1e6
        if device.startswith("cuda"):
            stats["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 1e6
        elif rss_reset:
            stats["peak_mem_mb"] = peak_rss_bytes() / 1e6
        per_batch[str(batch_size)] = stats
    first, last = per_batch[str(min(batch_sizes))], per_batch[str(max(batch_sizes))]
    metrics: dict[str, Any] = {"generation": {
        "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "greedy": True, "seed": seed,
        "per_batch_size": per_batch}}
    for key in ("ttft_ms", "kv_cache_mb"):
        if key in first:
            metrics[key] = first[key]
    if "decode_tokens_per_s" in last:
        metrics["decode_tokens_per_s"] = last["decode_tokens_per_s"]
    if "peak_mem_mb" in first:
        metrics["gen_peak_mem_mb"] = first["peak_mem_mb"]
    where = "CUDA max_memory_allocated" if device.startswith("cuda") else "process peak RSS"
    provenance = {k: "measured" for k in metrics}
    provenance["gen_peak_mem_mb"] = f"measured ({where} during generation)"
    if "gen_peak_mem_mb" not in metrics:
        del provenance["gen_peak_mem_mb"]
    return metrics, provenance
