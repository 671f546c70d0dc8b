"""The ``hf`` model source: a transformers model and its tokenizer, from a local directory
in Hugging Face format or from a hub id.

The tokenizer travels with the model as the attribute ``harness_tokenizer`` (it survives
``copy.deepcopy``, which quantization methods use), so LM tasks get the very object the
source loaded: :func:`tokenizer_of`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.api import ModelSource

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_ATTR = "harness_tokenizer"


@dataclass(frozen=True)
class HFOptions:
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    trust_remote_code: bool = False
    revision: str | None = None  # hub ids only: branch, tag or commit
    head: Literal["auto", "causal-lm", "sequence-classification", "masked-lm", "none"] = "auto"


def is_local(ref: str) -> bool:
    """A ref names a directory when it looks like a path rather than ``org/name``."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref


def resolve(ref: str, suite_dir: Path) -> Path | None:
    """The local directory ``ref`` names (relative to the suite file), or None for a hub id."""
    path = (suite_dir / Path(ref).expanduser()).resolve()
    return path if is_local(ref) or path.is_dir() else None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def tokenizer_of(model: Any) -> Any:
    """The tokenizer loaded with ``model`` (re-read from its directory if a method dropped it)."""
    tok = getattr(model, TOKENIZER_ATTR, None)
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.name_or_path)
    return tok


def is_causal_lm(model: Any) -> bool:
    """A decoder with a language-model head: ``*ForCausalLM``, and GPT-2's ``*LMHeadModel``."""
    name = type(model).__name__
    return "CausalLM" in name or name.endswith("LMHeadModel")


def _auto_class(head: str, architectures: list[str]) -> Any:
    import transformers

    if head == "auto":
        arch = " ".join(architectures or [])
        head = ("causal-lm" if "CausalLM" in arch or "LMHead" in arch
                else "sequence-classification" if "SequenceClassification" in arch
                else "masked-lm" if "MaskedLM" in arch else "none")
    return {
        "causal-lm": transformers.AutoModelForCausalLM,
        "sequence-classification": transformers.AutoModelForSequenceClassification,
        "masked-lm": transformers.AutoModelForMaskedLM,
        "none": transformers.AutoModel,
    }[head]


def _dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_pretrained(where: str, options: HFOptions, device: str) -> Any:
    """Model (eval mode, on ``device``) with its tokenizer attached; ``where`` is a dir or hub id."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    common = {"trust_remote_code": options.trust_remote_code}
    if options.revision:
        common["revision"] = options.revision
    try:
        config = AutoConfig.from_pretrained(where, **common)
        dtype = options.dtype if options.dtype == "auto" else getattr(torch, options.dtype)
        cls = _auto_class(options.head, getattr(config, "architectures", None) or [])
        model = cls.from_pretrained(where, config=config, **{_dtype_kwarg(): dtype}, **common)
        tokenizer = AutoTokenizer.from_pretrained(where, **common)
    except OSError as exc:
        if offline() and not Path(where).is_dir():
            raise RuntimeError(
                f"hub model '{where}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
                "forbids downloading it: run once with network access or set ref to a local directory"
            ) from exc
        raise RuntimeError(f"cannot load Hugging Face model '{where}': {str(exc).splitlines()[0]}") from exc
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad token
    model = model.to(device).eval()
    setattr(model, TOKENIZER_ATTR, tokenizer)
    return model


class HFSource(ModelSource):
    name = "hf"
    description = "a transformers model + tokenizer from a local HF-format directory or a hub id"
    Options = HFOptions

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        path = resolve(ref, suite_dir)
        if path is not None:
            if not path.is_dir():
                return f"local model directory '{ref}' does not exist (paths are relative to the suite file)"
            if not (path / "config.json").is_file():
                return f"'{ref}' is not a Hugging Face model directory: it has no config.json"
            return None
        if not HUB_ID.match(ref):
            return f"'{ref}' is neither a local directory nor a hub id like 'Qwen/Qwen2.5-0.5B'"
        return None  # hub ids are checked on load: validation never needs the network

    def prepare(self, ref: str, options: Any, suite_dir: Path) -> None:
        """Download a hub model before the runs, so no run's timeout includes it."""
        if resolve(ref, suite_dir) is not None or offline():
            return  # local, or offline: the runs say whether the hub cache has it
        import sys

        from huggingface_hub import snapshot_download

        print(f"prepare: fetching {ref} from the Hugging Face hub (cached afterwards) …",
              file=sys.stderr, flush=True)
        snapshot_download(repo_id=ref, revision=options.revision)

    def load(self, ref: str, options: Any, ctx: Any) -> Any:
        path = resolve(ref, ctx.suite_dir)
        return load_pretrained(str(path) if path is not None else ref, options, ctx.device)
