"""Builtin reference models trained on the bundled digits data (served by the
``builtin`` source, :mod:`harness_plugins.sources.builtin.source`).

Models train deterministically in seconds on first use and are cached by a hash of
their code, recipe, data and torch version under ``$HARNESS_CACHE`` (default
``~/.cache/harness``), so a second run loads them.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.toolkit import cache_dir, exclusive, python_command


@dataclass(frozen=True)
class Recipe:
    arch: str
    width: int
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    dataset: str = "digits"
    depth: int = 1  # MLP: hidden → hidden layers


# ref → recipe. "-wN" variants are narrower models, e.g. students for distillation.
MODELS = {
    "digits-mlp": Recipe("mlp", 256),
    "digits-mlp-w64": Recipe("mlp", 64),
    "digits-mlp-w32": Recipe("mlp", 32),
    "digits-cnn": Recipe("cnn", 32),
    "digits-cnn-w8": Recipe("cnn", 8),
    # GPU-sized (suites/gpu.toml): 64 → 4096 → 3 × (4096 → 4096) → 10, 50M parameters
    "digits-mlp-4096": Recipe("mlp", 4096, epochs=3, depth=3),
}


def build(recipe: Recipe) -> Any:
    """An untrained model of ``recipe``'s architecture."""
    from harness_plugins.sources.builtin import digits_models

    if recipe.arch == "mlp":
        return digits_models.DigitsMLP(recipe.width, recipe.depth)
    return digits_models.DigitsCNN(recipe.width)


def recipe_hash(recipe: Recipe) -> str:
    import torch

    from harness.toolkit import fit
    from harness_plugins.data import digits as data
    from harness_plugins.sources.builtin import digits_models

    h = hashlib.sha256()
    h.update(repr(recipe).encode())
    h.update(inspect.getsource(digits_models).encode())
    for code in (build, _TrainingTask, train, fit):  # what decides the weights, not the plumbing
        h.update(inspect.getsource(code).encode())
    h.update(data.fingerprint(recipe.dataset).encode())
    h.update(".".join(torch.__version__.split(".")[:2]).encode())
    return h.hexdigest()[:16]


class _TrainingTask:
    """The digits training split in the shape :func:`harness.toolkit.fit` expects."""

    def __init__(self, dataset: str):
        from harness_plugins.data import digits as data

        self.x, self.y = data.load(dataset, "train")

    def train_batches(self, batch_size: int, seed: int):
        import torch

        order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(seed))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield self.x[idx], self.y[idx]

    def loss(self, output, target):
        import torch.nn.functional as F

        return F.cross_entropy(output, target)


def train(recipe: Recipe) -> Any:
    import torch

    from harness.toolkit import fit

    # One thread: the same floating-point reduction order on every machine (so the same
    # weights), and faster than several threads for models this small.
    torch.set_num_threads(1)
    torch.manual_seed(recipe.seed)
    model = build(recipe)
    fit(model, _TrainingTask(recipe.dataset), epochs=recipe.epochs, lr=recipe.lr,
        seed=recipe.seed, batch_size=recipe.batch_size)
    return model


def cached_path(ref: str) -> Path:
    return cache_dir() / "models" / f"{ref}-{recipe_hash(MODELS[ref])}.pt"


def train_to_cache(ref: str) -> Path:
    """Train ``ref`` and store its weights atomically (parallel runs never read half a
    file); parallel processes wait on a lock instead of training it twice."""
    import torch

    path = cached_path(ref)
    with exclusive(path):
        if not path.exists():
            model = train(MODELS[ref])
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
    return path


def load_trained(ref: str) -> Any:
    """The trained model for ``ref``, from the cache or trained first.

    Training runs in a child process: a process that has just trained (autograd, thread
    pools, allocator state) times inference measurably slower than a fresh one, and the
    worker must measure like every other run.
    """
    import torch

    path = cached_path(ref)
    if not path.exists():
        subprocess.run(python_command("harness_plugins.sources.builtin.digits", ref), check=True)
    model = build(MODELS[ref])
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def prepare(ref: str) -> None:
    """Train ``ref`` into the cache unless it is there (the builtin source's prepare)."""
    if not cached_path(ref).exists():
        print(f"prepare: training builtin model {ref} (first use; cached in {cache_dir()}) …", file=sys.stderr, flush=True)
        train_to_cache(ref)


def load(ref: str, device: str) -> Any:
    return load_trained(ref).to(device)


if __name__ == "__main__":
    print(f"training builtin model {sys.argv[1]} → {train_to_cache(sys.argv[1])}", file=sys.stderr)
