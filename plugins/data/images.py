"""A user's image data set, read with Hugging Face ``datasets``, and its preprocessing.

Data: an ImageFolder directory (``<data_dir>/<split>/<class>/<image>``, read with the
``imagefolder`` builder), a ``save_to_disk`` directory or a hub id
(:mod:`harness_plugins.data.hf_data`). Preprocessing: the model's own (an HF image
processor, or the transforms a torchvision/timm source attached) or explicit
resize/crop/mean/std done here with PIL + numpy + torch. No ``datasets`` or torch import
at module top; :func:`folder_problems` reads only directory listings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness_plugins.data.hf_data import load_splits, suite_path
from harness_plugins.sources.hf import IMAGE_PROCESSOR_ATTR  # an HF image processor
from harness_plugins.sources.vision import TRANSFORMS_ATTR  # PIL image -> [3, H, W]

# Folder names the imagefolder builder reads as each split (datasets' SPLIT_KEYWORDS):
# a folder "val" becomes the split "validation".
SPLIT_FOLDERS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                 "test": ("test", "testing", "eval", "evaluation")}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos")


def folder_splits(root: Path) -> dict[str, Path]:
    """``{split: folder}`` as the imagefolder builder names them; a tree with no split
    folders is one ``train`` split (its class folders at the top)."""
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for split, names in SPLIT_FOLDERS.items():
            if folder.name.lower() in names and split not in found:
                found[split] = folder
    return found or {"train": root}


def folder_problems(data_dir: str, split: str, suite_dir: Path) -> list[str]:
    """Problems with an ImageFolder directory: missing, no such split, no class folders."""
    root = suite_path(data_dir, suite_dir)
    if not root.is_dir():
        return [f"data_dir: directory '{data_dir}' does not exist (paths are relative to the suite file)"]
    splits = folder_splits(root)
    if split not in splits:
        return [f"split: '{split}' is not a split of data_dir '{data_dir}' (its splits: {', '.join(splits)}; "
                "folders train/, val/ or validation/, test/ are read as train, validation, test)"]
    folder = splits[split]
    classes = [p for p in folder.iterdir() if p.is_dir()]
    if not classes:
        return [f"data_dir: '{folder}' has no class folders: put each class's images in <split>/<class name>/"]
    if not any(f.suffix.lower() in IMAGE_SUFFIXES for c in classes for f in c.iterdir()):
        return [f"data_dir: the class folders of '{folder}' hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})"]
    return []


def load_image_splits(config: Any, suite_dir: Path, wanted: list[str]) -> dict[str, Any]:
    """``{split: datasets.Dataset}`` for each name in ``wanted`` the data has (the first,
    the evaluation split, must be there)."""
    import datasets

    datasets.disable_progress_bars()
    if config.data_dir is None:
        source = SimpleNamespace(dataset=config.dataset, subset=config.subset, data_files=None)
        return load_splits(source, suite_dir, wanted)
    found = datasets.load_dataset("imagefolder", data_dir=str(suite_path(config.data_dir, suite_dir)))
    if wanted[0] not in found:
        raise ValueError(f"split '{wanted[0]}' is not in data_dir '{config.data_dir}' (its splits: "
                         f"{', '.join(found)}): set split")
    return {name: found[name] for name in wanted if name in found}


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def resize_image(image: Any, size: int | tuple[int, ...], resample: str) -> Any:
    """An int resizes the shorter side to it (aspect kept, as torchvision's ``Resize(int)``);
    ``[height, width]`` resizes to exactly that."""
    from PIL import Image

    w, h = image.size
    if isinstance(size, int):
        short, long = (w, h) if w <= h else (h, w)
        other = int(size * long / short)
        new = (size, other) if w <= h else (other, size)
    else:
        new = (size[1], size[0])
    return image.resize(new, getattr(Image.Resampling, resample.upper()))


def center_crop(image: Any, size: int | tuple[int, ...]) -> Any:
    """The centre ``size`` (int: a square), offsets rounded as torchvision's ``CenterCrop``."""
    height, width = _pair(size)
    w, h = image.size
    if height > h or width > w:
        raise ValueError(f"crop {height}x{width} is larger than the image ({h}x{w} after resize): "
                         "set resize to at least the crop size")
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def explicit_transform(config: Any) -> Callable[[Any], Any]:
    """PIL image -> float32 ``[3, H, W]`` tensor: RGB, ``resize``, ``crop``, scaled to
    [0, 1], then ``(x - mean) / std`` per channel when given."""
    import numpy as np
    import torch

    mean = None if config.mean is None else np.asarray(config.mean, dtype=np.float32)[:, None, None]
    std = None if config.std is None else np.asarray(config.std, dtype=np.float32)[:, None, None]

    def transform(image: Any) -> Any:
        image = image.convert("RGB")
        if config.resize is not None:
            image = resize_image(image, config.resize, config.resample)
        if config.crop is not None:
            image = center_crop(image, config.crop)
        x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        if mean is not None:
            x = (x - mean) / std
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    return transform


def pixel_function(model: Any, config: Any) -> tuple[Callable[[list[Any]], Any], str]:
    """(list of PIL images -> ``[N, 3, H, W]`` tensor, what it is): explicit keys when the
    task sets any, else the model's image processor, else its transforms."""
    import torch

    if config.explicit():
        one = explicit_transform(config)
        return (lambda images: torch.stack([one(i) for i in images])), "explicit resize/crop/mean/std"
    processor = getattr(model, IMAGE_PROCESSOR_ATTR, None)
    if processor is not None:
        return ((lambda images: processor([i.convert("RGB") for i in images], return_tensors="pt")["pixel_values"]),
                f"the model's image processor ({type(processor).__name__})")
    transforms = getattr(model, TRANSFORMS_ATTR, None)
    if transforms is not None:
        return ((lambda images: torch.stack([transforms(i.convert("RGB")) for i in images])),
                "the model's own transforms (harness_transforms)")
    raise ValueError("image-classification needs the model's preprocessing and this model carries none (load "
                     "it with source \"hf\", \"torchvision\" with weights, or \"timm\"), or set resize, crop, "
                     "mean and std in the task")


def stacked(images: list[Any], pixels: Callable[[list[Any]], Any], where: str) -> Any:
    """``pixels(images)``, with images of unequal sizes reported as a user error."""
    try:
        return pixels(images)
    except RuntimeError as exc:
        if "stack expects each tensor to be equal size" not in str(exc):
            raise
        raise ValueError(f"{where}: the images differ in size after preprocessing: set resize (and crop) "
                         "so that every image ends the same size") from None
