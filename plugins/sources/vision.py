"""The ``torchvision`` and ``timm`` model sources: an image classifier by its library name
(``ref = "resnet50"``), with pretrained weights from the library's cache or a local
``state_dict`` file, and the model's own preprocessing attached for the
``image-classification`` task.

Both libraries are optional (``pip install 'compression-harness[vision]'``) and are
imported only inside functions: where they are missing, or cannot be imported because
torchvision was built for another torch, ``check_ref`` says so in one sentence.

Runs never download: ``prepare`` (the driver's one-time step before the runs) fills the
cache — torch hub's ``checkpoints/`` for torchvision, the Hugging Face cache for timm —
and a run whose weights are not there is one clear error. Attached to the model:
``harness_transforms`` (PIL image -> ``[3, H, W]`` tensor: the weights' ``transforms()``,
or timm's ``resolve_data_config`` + ``create_transform``), ``harness_class_names`` (the
weights' class names in output order: torchvision's categories, timm's ImageNet synsets)
and ``harness_load_info``. Options: docs/vision.md.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import ModelSource
from harness.toolkit import nearest

TRANSFORMS_ATTR = "harness_transforms"
CLASS_NAMES_ATTR = "harness_class_names"
LOAD_INFO_ATTR = "harness_load_info"


def import_problem(source: str, packages: tuple[str, ...]) -> str | None:
    """One sentence when ``packages`` cannot be imported (missing, or torchvision built for
    another torch), else None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        for package in packages:
            importlib.import_module(package)
    except (ImportError, OSError, RuntimeError) as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name in packages
        why = "is not installed" if missing else f"cannot be imported ({str(exc).splitlines()[0].rstrip('.')})"
        try:
            torch = f"torch {version('torch')}"
        except PackageNotFoundError:
            torch = "torch"
        needs = f"{package}, which" if packages == (package,) else f"{' and '.join(packages)}, and {package}"
        return (f"the {source} source needs {needs} {why}: pip install "
                f"'compression-harness[vision]', with a torchvision build that matches the installed {torch} "
                "(the CPU or the same CUDA build, from the index torch came from)")
    return None


def _need(source: str, packages: tuple[str, ...]) -> None:
    problem = import_problem(source, packages)
    if problem:
        raise RuntimeError(problem)


def _file(name: str, suite_dir: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else suite_dir / path


def _attach(model: Any, transforms: Any, names: list[str] | None, info: dict[str, Any]) -> Any:
    # Through __dict__: torchvision's transforms are nn.Modules, and a plain setattr would
    # make them a submodule of the model (seen by methods, state_dict and size).
    model.__dict__[TRANSFORMS_ATTR] = transforms
    model.__dict__[CLASS_NAMES_ATTR] = names
    model.__dict__[LOAD_INFO_ATTR] = info
    return model


def state_dict_of(path: Path) -> dict[str, Any]:
    """A ``state_dict`` file, read with ``weights_only=True``; a checkpoint that wraps it
    under ``state_dict`` or ``model`` is unwrapped."""
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"weights_file '{path}' is not a state_dict (a dict of tensors): save it with "
                         "torch.save(model.state_dict(), path)")
    return data


@dataclass(frozen=True)
class TorchvisionOptions:
    weights: str = "DEFAULT"  # a member of the model's WeightsEnum ("IMAGENET1K_V2"), "DEFAULT", or "none"
    weights_file: str | None = None  # a state_dict file (relative to the suite) instead of the named weights
    num_classes: int | None = None  # another head size: the head is new (random) unless weights_file has it

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("weights must name the model's weights (\"DEFAULT\", e.g. \"IMAGENET1K_V2\") or be \"none\"")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError("num_classes must be >= 1")


def torchvision_weights(ref: str, name: str) -> Any:
    """The WeightsEnum member ``name`` names for model ``ref`` (None for "none")."""
    from torchvision.models import get_model_weights

    if name.lower() == "none":
        return None
    enum = get_model_weights(ref)
    member = name.removeprefix(enum.__name__ + ".")
    if member not in enum.__members__:
        raise ValueError(f"options.weights '{name}' is not one of {ref}'s weights ({', '.join(enum.__members__)}, "
                         "or \"none\")")
    return enum[member]


def cached_weights(weights: Any) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps (or would keep) these weights."""
    from urllib.parse import urlparse

    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _torchvision_model(ref: str, options: TorchvisionOptions, weights: Any, suite_dir: Path) -> tuple[Any, dict]:
    from torchvision.models import get_model

    categories = list(weights.meta.get("categories") or []) if weights is not None else []
    size = {"num_classes": options.num_classes or len(categories)} if options.num_classes or categories else {}
    if options.weights_file:
        model = get_model(ref, **size)
        try:
            model.load_state_dict(state_dict_of(_file(options.weights_file, suite_dir)))
        except RuntimeError as exc:
            raise ValueError(f"weights_file '{options.weights_file}' does not fit torchvision {ref} (num_classes "
                             f"{size.get('num_classes', 'default')}; {str(exc).splitlines()[0]}): set num_classes or "
                             "ref to the file's") from None
        return model, {"weights": f"file {options.weights_file}"}
    if weights is None:
        return get_model(ref, **size), {"weights": "none (random initialisation)"}
    if not cached_weights(weights).is_file():
        raise RuntimeError(f"torchvision weights {weights} are not in torch hub's cache ({cached_weights(weights)}): "
                           "run harness bench with network access once (it fetches them before the runs), or set "
                           "options.weights_file to a local state_dict file")
    pretrained = get_model(ref, weights=weights)
    if not options.num_classes or options.num_classes == len(categories):
        return pretrained, {"weights": str(weights)}
    model = get_model(ref, **size)  # a new head: every tensor of another shape stays as initialised
    own = model.state_dict()
    kept = {k: v for k, v in pretrained.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    return model, {"weights": str(weights), "new_weights": sorted(set(own) - set(kept))}


class TorchvisionSource(ModelSource):
    name = "torchvision"
    description = "a torchvision model by name (resnet50, …) with its weights' transforms (extra: vision)"
    Options = TorchvisionOptions
    preload = ("torchvision",)

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        problem = import_problem("torchvision", ("torchvision",))
        if problem:
            return problem
        from torchvision.models import list_models

        if ref not in list_models():
            return f"'{ref}' is not a torchvision model{nearest(ref, list_models())}"
        try:
            torchvision_weights(ref, options.weights)
        except ValueError as exc:
            return str(exc)
        if options.weights_file and not _file(options.weights_file, suite_dir).is_file():
            return f"weights_file '{options.weights_file}' does not exist (paths are relative to the suite file)"
        return None

    def prepare(self, ref: str, options: Any, suite_dir: Path) -> None:
        """Fetch named weights into torch hub's cache, so no run downloads."""
        _need("torchvision", ("torchvision",))
        weights = torchvision_weights(ref, options.weights)
        if options.weights_file or weights is None or cached_weights(weights).is_file():
            return
        print(f"prepare: fetching torchvision weights {weights} (cached in {cached_weights(weights).parent}) …",
              file=sys.stderr, flush=True)
        weights.get_state_dict(progress=False)

    def load(self, ref: str, options: Any, ctx: Any) -> Any:
        _need("torchvision", ("torchvision",))
        weights = torchvision_weights(ref, options.weights)
        model, info = _torchvision_model(ref, options, weights, ctx.suite_dir)
        categories = list(weights.meta.get("categories") or []) if weights is not None else []
        outputs = options.num_classes or len(categories)
        names = categories if categories and outputs == len(categories) else None
        info = {"class": type(model).__name__, "library": "torchvision", **info}
        return _attach(model.to(ctx.device).eval(), weights.transforms() if weights is not None else None,
                       names, info)


@dataclass(frozen=True)
class TimmOptions:
    pretrained: bool = True  # the model's pretrained weights (ref may carry a tag: "resnet50.a1_in1k")
    weights_file: str | None = None  # a state_dict file (relative to the suite), loaded strictly after creation
    num_classes: int | None = None  # another head size: a new (random) head, unless weights_file has it

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError("num_classes must be >= 1")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _timm_model(ref: str, options: TimmOptions, suite_dir: Path) -> Any:
    import timm

    kwargs: dict[str, Any] = {"pretrained": options.pretrained and options.weights_file is None}
    if options.num_classes:
        kwargs["num_classes"] = options.num_classes
    if options.weights_file:
        # checkpoint_path, not pretrained_cfg_overlay's file: timm drops a file's head when its
        # size differs from the pretrained config's, and a fine-tuned file's head is the point
        kwargs["checkpoint_path"] = str(_file(options.weights_file, suite_dir))
    try:
        return timm.create_model(ref, **kwargs)
    except RuntimeError as exc:  # the file's tensors do not fit (load_state_dict, strict)
        if options.weights_file is None:
            raise
        raise ValueError(f"weights_file '{options.weights_file}' does not fit timm {ref} (num_classes "
                         f"{options.num_classes or 'default'}; {str(exc).splitlines()[0]}): set num_classes or "
                         "ref to the file's") from None
    except OSError as exc:
        if options.weights_file is None and hub_offline():
            raise RuntimeError(f"timm weights for '{ref}' are not in the local Hugging Face cache and "
                               "HF_HUB_OFFLINE=1 forbids downloading them: run once with network access, or set "
                               "options.weights_file to a local state_dict file") from exc
        raise RuntimeError(f"cannot load timm model '{ref}': {str(exc).splitlines()[0]}") from exc


class TimmSource(ModelSource):
    name = "timm"
    description = "a timm model by name (resnet50.a1_in1k, …) with its data config's transforms (extra: vision)"
    Options = TimmOptions
    preload = ("timm",)

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        problem = import_problem("timm", ("torchvision", "timm"))
        if problem:
            return problem
        import timm

        if not timm.is_model(ref):
            return f"'{ref}' is not a timm model{nearest(ref, timm.list_models())}"
        if options.weights_file and not _file(options.weights_file, suite_dir).is_file():
            return f"weights_file '{options.weights_file}' does not exist (paths are relative to the suite file)"
        return None

    def prepare(self, ref: str, options: Any, suite_dir: Path) -> None:
        """Fetch pretrained weights into the Hugging Face cache, so no run downloads."""
        if not options.pretrained or options.weights_file or hub_offline():
            return
        _need("timm", ("torchvision", "timm"))
        import timm

        print(f"prepare: fetching timm weights for {ref} (cached afterwards) …", file=sys.stderr, flush=True)
        timm.create_model(ref, pretrained=True)

    def load(self, ref: str, options: Any, ctx: Any) -> Any:
        _need("timm", ("torchvision", "timm"))
        from timm.data import (
            ImageNetInfo,
            create_transform,
            infer_imagenet_subset,
            resolve_data_config,
        )

        model = _timm_model(ref, options, ctx.suite_dir).eval()
        transforms = create_transform(**resolve_data_config({}, model=model))
        subset = infer_imagenet_subset(model) if options.pretrained and not options.num_classes else None
        names = list(ImageNetInfo(subset).label_names()) if subset else None
        weights = f"file {options.weights_file}" if options.weights_file else (
            str(model.pretrained_cfg.get("hf_hub_id") or ref) if options.pretrained else "none (random initialisation)")
        info = {"class": type(model).__name__, "library": "timm", "weights": weights}
        return _attach(model.to(ctx.device), transforms, names, info)


@hookimpl
def harness_register_models(register):
    register(TorchvisionSource)
    register(TimmSource)
