"""What ``fidelity`` compares, by mode, and the figures of each comparison.

- ``causal-lm``: next-token distributions at every position of the text windows;
- ``masked-lm``: the token distributions at every non-padding position (any model whose
  ``logits`` are per token: masked LMs, token classifiers);
- ``classifier``: one class distribution per input (sequence and image classifiers, plain
  classifiers returning a tensor);
- ``encoder``: hidden states (no distribution): the pooled vector per input, pooled as the
  model is used (:mod:`.pooling`: sentence-transformers' pooling config, else the mean
  over the attention mask) or, with ``states = "tokens"``, the last hidden state at every
  non-padding position.

Distributions give ``top1_agreement`` and ``kl_div_mean``/``kl_div_max`` (KL(original ||
compressed), nats); hidden states give ``cosine_mean``/``cosine_min`` (per vector) and
``max_abs_diff`` (over all elements). Each comparison also returns the per-row outcomes of
its primary figure (0/1 agreement per position, cosine per vector) under ``"outcomes"``.
"""

from __future__ import annotations

from typing import Any

import harness_plugins.tasks.lm.pooling as pooling
from harness.api import Outcomes

MODES = ("auto", "causal-lm", "masked-lm", "classifier", "encoder")
DISTRIBUTION_MODES = ("causal-lm", "masked-lm", "classifier")


def run_model(model: Any, batch: Any, mode: str) -> Any:
    """The model's output on ``batch`` (a tensor, or a dict of tokenizer outputs)."""
    if not isinstance(batch, dict):
        return model(batch)
    if mode == "encoder":
        return model(**batch, output_hidden_states=True)
    return model(**batch)


def _logits(out: Any) -> Any:
    import torch

    logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else None


def _last_hidden(out: Any) -> Any:
    hidden = getattr(out, "last_hidden_state", None)
    if hidden is None and getattr(out, "hidden_states", None):
        hidden = out.hidden_states[-1]
    return hidden


def detect_mode(out: Any) -> str:
    """The mode an output allows: per-token logits, per-input logits, or hidden states."""
    logits = _logits(out)
    if logits is not None:
        return "masked-lm" if logits.dim() == 3 else "classifier"
    if _last_hidden(out) is not None:
        return "encoder"
    raise ValueError(f"fidelity compares logits or hidden states, and the model returns {type(out).__name__} "
                     "with neither")


def check_mode(mode: str, out: Any, causal: bool, model_name: str) -> str | None:
    """Why ``mode`` cannot compare this output (None when it can)."""
    logits = _logits(out)
    if mode == "causal-lm" and not causal:
        return f"mode 'causal-lm' needs a causal LM, and {model_name} is not one"
    if mode == "masked-lm" and (logits is None or logits.dim() != 3):
        return f"mode 'masked-lm' needs per-token logits, and {model_name} has none"
    if mode == "classifier" and (logits is None or logits.dim() != 2):
        return f"mode 'classifier' needs one row of logits per input, and {model_name} has none"
    if mode == "encoder" and _last_hidden(out) is None:
        return f"mode 'encoder' needs hidden states, and {model_name} returns none"
    return None


def rows(out: Any, mode: str, mask: Any, pooled: tuple[str, ...] | None) -> Any:
    """One row per compared position or input (float32, on the CPU): log-probabilities for
    the distribution modes, hidden-state vectors for ``encoder`` (pooled by the
    :mod:`.pooling` modes ``pooled``; None: every non-padding token)."""
    import torch.nn.functional as F

    if mode in DISTRIBUTION_MODES:
        logits = _logits(out).float()
        if mode == "masked-lm":
            logits = logits[mask.bool()]
        return F.log_softmax(logits, dim=-1).reshape(-1, logits.shape[-1]).cpu()
    hidden = _last_hidden(out).float()
    if pooled is None:
        return hidden[mask.bool()].cpu()
    return pooling.pool(out, hidden, mask, pooled).cpu()


def has_pooler(out: Any) -> bool:
    return getattr(out, "pooler_output", None) is not None


def distribution_figures(ref: Any, new: Any) -> dict[str, Any]:
    agree = (new.argmax(dim=-1) == ref.argmax(dim=-1)).double()
    kl = (ref.exp() * (ref - new)).sum(dim=-1).clamp_min(0)
    return {"top1_agreement": float(agree.mean()), "kl_div_mean": float(kl.mean()),
            "kl_div_max": float(kl.max()), "fidelity_positions": int(len(ref)),
            "outcomes": Outcomes("top1_agreement", agree.tolist())}


def state_figures(ref: Any, new: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    ref, new = ref.double(), new.double()  # an unchanged model reads exactly 1.0
    cosine = F.cosine_similarity(ref, new, dim=-1, eps=1e-12).clamp(-1.0, 1.0)
    return {"cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
            "max_abs_diff": float((ref - new).abs().max()), "fidelity_positions": int(len(ref)),
            "outcomes": Outcomes("cosine_mean", cosine.tolist())}
