"""The code a pickled ``torch.save(model)`` needs: the user's modules found through the
``file`` source's ``python_path``, and classes pickled from a script (``__main__.Net``)
read from ``main_module``. Problems are found statically (the pickle's globals, read
without unpickling) so that ``harness validate`` reports them before anything runs."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

from harness_plugins.sources.pickle_scan import members, pickle_globals

# Modules a model pickle refers to that come with Python or torch: never the user's code.
_PROVIDED = ("torch", "builtins", "__builtin__", "collections", "copyreg", "_codecs", "numpy", "functools",
             "typing", "enum")


def python_path(options: Any, suite_dir: Path) -> list[Path]:
    return [(suite_dir / Path(p).expanduser()).resolve() for p in options.python_path]


def python_path_problems(options: Any, suite_dir: Path) -> list[str]:
    return [f"options.python_path: folder '{p}' does not exist (entries are relative to the suite file)"
            for p in python_path(options, suite_dir) if not p.is_dir()]


def add_python_path(options: Any, suite_dir: Path) -> None:
    """Put ``python_path`` in front of ``sys.path``: in the worker, for this run only (the
    model's code may import more when it is called, so it stays)."""
    for folder in reversed(python_path(options, suite_dir)):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def checkpoint_globals(path: Path) -> set[str]:
    """``module.name`` of every global a ``torch.save`` checkpoint's pickle refers to."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return pickle_globals(archive.read(members(archive)["data.pkl"]))
    return pickle_globals(path.read_bytes(), count=5)  # torch's legacy format: five pickles, then storages


def _findable(module: str, folders: list[Path]) -> bool:
    """Whether ``module``'s top-level package can be imported from ``folders`` or the
    installed packages, found without importing (running) it."""
    top = module.split(".")[0]
    if top in sys.modules or importlib.machinery.PathFinder.find_spec(top, [str(f) for f in folders]):
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def code_problem(path: Path, options: Any, suite_dir: Path) -> str | None:
    """Why unpickling ``path`` would fail to find the model's code, with the fix; or None."""
    found = checkpoint_globals(path)
    script = sorted(name.split(".", 1)[1] for name in found if name.startswith("__main__."))
    if script and not options.main_module:
        return (f"model file '{path}' holds class {', '.join(script)} defined in the script that saved it "
                f"(pickled as __main__.{script[0]}); move the class into a module in a python_path folder and "
                "save the model again, or set options.main_module to the module (on python_path) that defines "
                "it, e.g. main_module = \"train\" for train.py")
    folders = python_path(options, suite_dir)
    modules = {name.rsplit(".", 1)[0] for name in found if "." in name and not name.startswith("__main__.")}
    modules |= {options.main_module} if script else set()
    missing = sorted(m for m in modules if m.split(".")[0] not in _PROVIDED and not _findable(m, folders))
    if missing:
        where = ", ".join(f"'{f}'" for f in folders) or "none set"
        return (f"model file '{path}' needs module {', '.join(missing)} for its model class, which is not "
                f"importable (python_path: {where}); add the folder holding {missing[0].split('.')[0]} to "
                "options.python_path (relative to the suite file)")
    return None


def remapping_pickle(main_module: str) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` that reads ``__main__.X`` as ``main_module.X``."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return super().find_class(main_module if module == "__main__" else module, name)

    remap = types.ModuleType("harness_main_remap")
    remap.Unpickler = Unpickler  # type: ignore[attr-defined]
    remap.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()  # type: ignore[attr-defined]
    return remap
