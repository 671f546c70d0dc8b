"""The ``hf`` model source: a transformers model with its tokenizer (text models) or image
processor (vision models), from a local directory in Hugging Face format or from a hub id.

``head = "auto"`` picks the model class from the checkpoint config's ``architectures``
(:func:`choose_head`). A head that transformers would have to initialise randomly (weights
missing from the checkpoint) is an error unless ``allow_new_head = true``; either way what
was loaded is attached as ``harness_load_info`` and lands in the result row
(``metrics.model_load``).

The tokenizer travels with the model as the attribute ``harness_tokenizer``, an image
processor as ``harness_image_processor`` (both survive ``copy.deepcopy``, which
quantization methods use), so tasks get the very object the source loaded:
:func:`tokenizer_of`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.api import UNRESOLVED, ModelSource
from harness.toolkit import OMIT_AT_DEFAULT

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_ATTR = "harness_tokenizer"
IMAGE_PROCESSOR_ATTR = "harness_image_processor"
LOAD_INFO_ATTR = "harness_load_info"  # what the source loaded; the worker puts it in the row

# What a worker that loads a transformers model imports, for the fork server to import once
# (plugins' ``preload``): the auto classes too, which a model's configuration module imports
# and which import transformers.generation and through it sklearn (0.7 s of each forked run)
TRANSFORMERS_PRELOAD = ("transformers.modeling_utils", "transformers.models.auto.modeling_auto",
                        "transformers.models.auto.tokenization_auto",
                        "transformers.models.auto.image_processing_auto")

# head -> the transformers auto class that loads it
AUTO_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "masked-lm": "AutoModelForMaskedLM",
    "image-classification": "AutoModelForImageClassification",
    "none": "AutoModel",
}
# an architecture's class name -> its head, first match wins
HEAD_OF_ARCHITECTURE = (
    (re.compile(r"ForCausalLM$|LMHeadModel$"), "causal-lm"),
    (re.compile(r"ForSequenceClassification$"), "sequence-classification"),
    (re.compile(r"ForMaskedLM$"), "masked-lm"),
    (re.compile(r"ForImageClassification(WithTeacher)?$"), "image-classification"),
)


@dataclass(frozen=True)
class HFOptions:
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    trust_remote_code: bool = False
    revision: str | None = None  # hub ids only: branch, tag or commit
    head: Literal["auto", "causal-lm", "sequence-classification", "masked-lm", "image-classification",
                  "none"] = "auto"
    allow_new_head: bool = field(default=False, metadata=OMIT_AT_DEFAULT)  # accept weights transformers initialises randomly (recorded in the row)


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
    if tok is None and not getattr(model, "name_or_path", None):
        from harness.api import Skip

        raise Skip(f"this task reads text through the model's tokenizer, and this model ({type(model).__name__}) has "
                   "none (transformers models have one): give the task models = [...] to pair it with text models only")
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.name_or_path)
    return tok


def is_causal_lm(model: Any) -> bool:
    """A decoder with a language-model head: what the ``causal-lm`` head loads
    (``*ForCausalLM``, and ``*LMHeadModel`` such as GPT-2's)."""
    head = (getattr(model, LOAD_INFO_ATTR, None) or {}).get("head")
    if head is not None:
        return head == "causal-lm"
    return HEAD_OF_ARCHITECTURE[0][0].search(type(model).__name__) is not None


def choose_head(head: str, config: Any) -> tuple[str, str]:
    """(head, why): the named head, or for ``auto`` the one the config's ``architectures``
    name; without architectures, a decoder-only ``model_type`` is a causal LM, else ``none``."""
    if head != "auto":
        return head, "options.head"
    for arch in getattr(config, "architectures", None) or []:
        for pattern, found in HEAD_OF_ARCHITECTURE:
            if pattern.search(arch):
                return found, f"auto: architectures {arch}"
    if getattr(config, "architectures", None):
        return "none", f"auto: architectures {', '.join(config.architectures)} (no head it knows: the base model)"
    from transformers.models.auto import modeling_auto as auto

    model_type = getattr(config, "model_type", "")
    decoder = auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.keys() - auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES.keys()
    if model_type in decoder:
        return "causal-lm", f"auto: no architectures; model_type {model_type} is a decoder"
    return "none", f"auto: no architectures; model_type {model_type or '?'}"


def _dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _preprocessor(model: Any, where: str, common: dict[str, Any]) -> tuple[str, Any]:
    """(attribute, object): an image processor for models fed pixels, else the tokenizer."""
    if getattr(model, "main_input_name", "input_ids") == "pixel_values":
        # from its module: transformers 5.15-5.17 export the top-level name as needing
        # torchvision, while the class falls back to the PIL processors without it
        from transformers.models.auto.image_processing_auto import AutoImageProcessor

        return IMAGE_PROCESSOR_ATTR, AutoImageProcessor.from_pretrained(where, **common)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(where, **common)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad token
    return TOKENIZER_ATTR, tokenizer


def _load_info(model: Any, head: str, why: str, loading: dict[str, list[Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {"class": type(model).__name__, "head": head, "head_from": why}
    for key, name in (("missing_keys", "new_weights"), ("unexpected_keys", "unused_weights")):
        if loading.get(key):
            info[name] = sorted(str(k) for k in loading[key])
    return info


def _new_head_error(where: str, info: dict[str, Any]) -> str:
    new = info["new_weights"]
    shown = ", ".join(new[:4]) + (f" and {len(new) - 4} more" if len(new) > 4 else "")
    return (f"'{where}' loaded as {info['class']} (head '{info['head']}', {info['head_from']}) has no weights for "
            f"{shown}: transformers would initialise them randomly; set head to one the checkpoint has "
            "(head = 'auto' picks it from config.json) or allow_new_head = true to accept a random head")


def load_pretrained(where: str, options: HFOptions, device: str) -> Any:
    """Model (eval mode, on ``device``) with its tokenizer or image processor and
    ``harness_load_info`` attached; ``where`` is a dir or hub id."""
    import torch
    import transformers

    common: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    if options.revision:
        common["revision"] = options.revision
    try:
        config = transformers.AutoConfig.from_pretrained(where, **common)
        dtype = options.dtype if options.dtype == "auto" else getattr(torch, options.dtype)
        head, why = choose_head(options.head, config)
        cls = getattr(transformers, AUTO_CLASSES[head])
        mapping = getattr(cls, "_model_mapping", None)  # config class -> model class of this head
        if mapping is not None and type(config) not in mapping and not options.trust_remote_code:
            raise ValueError(f"'{where}' is a {config.model_type} model, which has no '{head}' head in "
                             f"transformers ({AUTO_CLASSES[head]}): set head to one it has, or 'auto'")
        model, loading = cls.from_pretrained(where, config=config, output_loading_info=True,
                                             **{_dtype_kwarg(): dtype}, **common)
        info = _load_info(model, head, why, loading)
        if info.get("new_weights") and not options.allow_new_head:
            raise ValueError(_new_head_error(where, info))
        attr, preprocessor = _preprocessor(model, where, common)
    except OSError as exc:
        if offline() and not Path(where).is_dir():
            raise RuntimeError(
                f"hub model '{where}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
                "forbids downloading it: run once with network access or set ref to a local directory"
            ) from exc
        raise RuntimeError(f"cannot load Hugging Face model '{where}': {str(exc).splitlines()[0]}") from exc
    model = model.to(device).eval()
    setattr(model, attr, preprocessor)
    setattr(model, LOAD_INFO_ATTR, info)
    return model


class HFSource(ModelSource):
    name = "hf"
    preload = TRANSFORMERS_PRELOAD
    requires = ("transformers",)
    description = "a transformers model (any common head) with its tokenizer or image processor: local dir or hub id"
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

    def fingerprint(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        """A hub model's identity is the commit its cached snapshot holds (what a run will
        load): an upstream update that is downloaded re-runs its runs. Local folders: None
        (their files are hashed); a hub model not downloaded yet: ``UNRESOLVED``."""
        if resolve(ref, suite_dir) is not None or not HUB_ID.match(ref):
            return None
        try:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(repo_id=ref, revision=options.revision, local_files_only=True)
        except Exception:  # noqa: BLE001 - not in the cache (or no huggingface_hub): known after prepare
            return UNRESOLVED
        return f"hub commit {Path(folder).name}"

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
