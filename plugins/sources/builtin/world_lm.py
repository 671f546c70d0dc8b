"""Builtin language models: small Llama-style LMs trained on the invented world.

Served by the ``builtin`` source (:mod:`harness_plugins.sources.builtin.source` dispatches
refs in :data:`MODELS` here). A model trains deterministically on first use in a child process, is saved with
``save_pretrained`` under ``$HARNESS_CACHE/models/<ref>-<hash>/`` and is then loaded
through the ``hf`` source like any other Hugging Face directory.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class LMRecipe:
    hidden: int
    layers: int
    heads: int
    steps: int
    people: int = 30  # world.PEOPLE: the quickstart tasks ask about 30 people
    vocab: int = 1024
    seq_len: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0


# ref → recipe. "world-lm" is the quickstart's model; "world-lm-mini" trains in seconds for tests.
MODELS = {
    "world-lm": LMRecipe(hidden=128, layers=2, heads=4, steps=400, lr=5e-3),
    "world-lm-mini": LMRecipe(hidden=64, layers=2, heads=2, steps=60, people=12),
}


def recipe_hash(recipe: LMRecipe) -> str:
    import tokenizers
    import torch
    import transformers

    from harness_plugins.data import world

    h = hashlib.sha256(repr(recipe).encode())
    h.update(inspect.getsource(world).encode())
    for fn in (build_tokenizer, build_model, train):  # what decides the weights, not the plumbing
        h.update(inspect.getsource(fn).encode())
    for version in (torch.__version__, transformers.__version__, tokenizers.__version__):
        h.update(".".join(version.split(".")[:2]).encode())
    return h.hexdigest()[:16]


def cached_dir(ref: str) -> Path:
    from harness.toolkit import cache_dir

    return cache_dir() / "models" / f"{ref}-{recipe_hash(MODELS[ref])}"


def build_tokenizer(lines: list[str], vocab: int) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``lines``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                   pad_token=EOS, model_max_length=256)


def build_model(recipe: LMRecipe, vocab_size: int, eos_id: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=recipe.hidden, intermediate_size=recipe.hidden * 3,
        num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads, max_position_embeddings=256,
        tie_word_embeddings=False,  # methods leave lm_head out; a tie would drag embeddings along
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    return LlamaForCausalLM(config)


def train(recipe: LMRecipe) -> tuple[Any, Any]:
    """(model, tokenizer) trained on shuffled documents of the world corpus."""
    import random

    import torch

    from harness_plugins.data import world

    torch.set_num_threads(1)  # deterministic, and faster than 2 threads on a busy 2-core machine
    torch.manual_seed(recipe.seed)
    lines = world.corpus_lines(recipe.people)
    tokenizer = build_tokenizer(lines, recipe.vocab)
    eos = tokenizer.eos_token_id
    docs = [tokenizer(line)["input_ids"] + [eos] for line in lines]
    model = build_model(recipe, len(tokenizer), eos)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps,
                                                pct_start=0.1)
    rng = random.Random(recipe.seed)
    stream: list[int] = []
    model.train()
    for _ in range(recipe.steps):
        need = recipe.batch_size * (recipe.seq_len + 1)
        while len(stream) < need:  # a fresh shuffle of the documents each pass
            order = list(range(len(docs)))
            rng.shuffle(order)
            stream += [eos] + [t for i in order for t in docs[i]]
        batch = torch.tensor(stream[:need]).view(recipe.batch_size, recipe.seq_len + 1)
        stream = stream[need:]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval(), tokenizer


def train_to_cache(ref: str) -> Path:
    """Train ``ref`` and save it; parallel runs wait on a lock instead of training twice."""
    from harness.toolkit import exclusive

    final = cached_dir(ref)
    with exclusive(final):
        if not final.is_dir():
            model, tokenizer = train(MODELS[ref])
            tmp = final.with_name(final.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            os.replace(tmp, final)
    return final


def trained_dir(ref: str) -> Path:
    """The saved model directory for ``ref``, trained first (in a child process) if needed.

    A child process, as for the digits models: a process that has just trained times
    inference differently from a fresh one, and the worker must measure like every run.
    """
    from harness.toolkit import python_command

    path = cached_dir(ref)
    if not path.is_dir():
        subprocess.run(python_command("harness_plugins.sources.builtin.world_lm", ref), check=True)
    return path


def prepare(ref: str) -> None:
    """Train ``ref`` into the cache unless it is there (the builtin source's prepare)."""
    if not cached_dir(ref).is_dir():
        print(f"prepare: training builtin LM {ref} (first use; cached in {cached_dir(ref).parent}) …", file=sys.stderr, flush=True)
        train_to_cache(ref)


def load(ref: str, device: str) -> Any:
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    return load_pretrained(str(trained_dir(ref)), HFOptions(), device)


if __name__ == "__main__":
    print(f"training builtin LM {sys.argv[1]} → {train_to_cache(sys.argv[1])}", file=sys.stderr)
