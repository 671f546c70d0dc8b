"""The ``file`` model source: a ``torch.export`` archive (``.pt2``), a TorchScript
archive, or a full-model checkpoint."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.api import ModelSource


@dataclass(frozen=True)
class FileOptions:
    # torch.load runs arbitrary code from pickles; only for files you trust.
    unsafe_pickle: bool = False


def _resolve(ref: str, suite_dir: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else suite_dir / path


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class FileSource(ModelSource):
    name = "file"
    description = ("a torch.export .pt2 archive, a TorchScript file or a torch.save(model) checkpoint "
                   "(path relative to the suite)")
    Options = FileOptions

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        path = _resolve(ref, suite_dir)
        if not path.is_file():
            return f"model file '{path}' does not exist"
        return None

    def load(self, ref: str, options: FileOptions, ctx: Any) -> Any:
        import pickle

        import torch

        path = _resolve(ref, ctx.suite_dir)
        if path.suffix == ".pt2":  # torch.export.save: TorchScript's successor
            return torch.export.load(str(path)).module().to(ctx.device)
        if _is_torchscript(path):
            return torch.jit.load(str(path), map_location=ctx.device).eval()
        try:
            model = torch.load(path, map_location=ctx.device, weights_only=not options.unsafe_pickle)
        except pickle.UnpicklingError as exc:
            raise ValueError(
                f"model file '{path}' holds pickled code that torch.load(weights_only=True) refuses "
                f"({str(exc).splitlines()[0]}); if you trust it, set options = {{ unsafe_pickle = true }} on this model"
            ) from None
        if isinstance(model, dict):
            raise ValueError(
                f"model file '{path}' holds a state_dict, not a model; save it with torch.save(model) "
                "or torch.jit.save(torch.jit.script(model))"
            )
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model file '{path}' holds a {type(model).__name__}, not a torch.nn.Module")
        return model.eval()


@hookimpl
def harness_register_models(register):
    register(FileSource)
