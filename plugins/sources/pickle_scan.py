"""What a pickle or a ``torch.export`` archive would call when loaded, read statically
(``pickletools``): nothing is unpickled and no code runs. Used by the ``file`` source to
refuse, before anything runs, what ``weights_only`` would not allow (docs/security.md)."""

from __future__ import annotations

import io
import json
import pickletools
import zipfile
from collections.abc import Iterator
from typing import Any


def members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Member names without the archive's root folder → full names."""
    return {name.split("/", 1)[1] if "/" in name else name: name for name in archive.namelist()}


# --- what a pickle would call, read without running it --------------------------------

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
            "SHORT_BINSTRING"}


def pickle_globals(data: bytes, count: int = 1) -> set[str]:
    """The ``module.name`` of every global the first ``count`` pickles in ``data`` refer
    to (``?`` where it cannot be told)."""
    found: set[str] = set()
    stream = io.BytesIO(data)
    for _ in range(count):
        if stream.tell() < len(data):
            found |= _globals_of_one(stream)
    return found


def _globals_of_one(stream: io.BytesIO) -> set[str]:
    found: set[str] = set()
    memo: dict[int, Any] = {}
    stack: list[Any] = []  # only strings matter: they name STACK_GLOBAL's module and name
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                found.add(".".join(str(arg).split(" ", 1)))
            elif op.name == "STACK_GLOBAL":
                module, name = (stack[-2:] if len(stack) >= 2 else [None, None])
                found.add(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "?")
            elif op.name.startswith("EXT"):
                found.add("?")  # the copyreg extension registry
            if op.name in _STRINGS:
                stack.append(arg)
            elif op.name == "MEMOIZE" and stack:
                memo[len(memo)] = stack[-1]
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT") and stack:
                memo[int(arg)] = stack[-1]
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg)))
            elif op.name not in ("FRAME", "PROTO"):
                stack.append(None)
    except Exception:  # noqa: BLE001 - a pickle we cannot read is one we will not run
        found.add("?")
    return found


def unsafe_in_pickle(data: bytes, count: int = 1) -> list[str]:
    """Globals a pickle refers to outside torch's ``weights_only`` allow-list, the
    model's own classes first (not torch's, not builtins)."""
    try:  # torch's own allow-list (a private module: tested on torch 2.11–2.14)
        from torch import _weights_only_unpickler as allowed

        safe = set(allowed._get_allowed_globals()) | set(allowed._get_user_allowed_globals())
    except (ImportError, AttributeError):  # another torch: fail closed, every global counts as unsafe
        safe = set()
    return sorted(pickle_globals(data, count) - safe,
                  key=lambda name: (name.startswith(("torch.", "__builtin__.", "builtins.")), name))


def unsafe_in_payload(data: bytes) -> list[str]:
    """The same for a ``torch.save`` payload (a zip of pickles, or a legacy pickle)."""
    if not data:
        return []  # torch reads an empty payload as {}
    if not data.startswith(b"PK"):  # torch's legacy format: five pickles, then storages
        return unsafe_in_pickle(data, count=5)
    found: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    found += [n for n in unsafe_in_pickle(archive.read(name)) if n not in found]
    except (zipfile.BadZipFile, OSError):
        return ["?"]
    return found


def shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# --- a torch.export archive: which members torch.export.load would unpickle -----------

def export_risks(archive: zipfile.ZipFile) -> Iterator[tuple[str, str, str]]:
    """(what, member, how torch reads it) for every member torch.export.load (torch 2.13)
    would read with more than ``weights_only``: torch.load payloads whose pickles refer to
    globals off the allow-list (sample inputs, ``use_pickle`` weights and constants, legacy
    files), plain-pickled ``opaque_obj_`` constants, AOTInductor shared libraries."""
    names = members(archive)
    scanned: set[str] = set()
    aoti = False
    for short, full in names.items():
        base = short.rsplit("/", 1)[-1]
        if short.startswith("data/aotinductor/"):
            if not aoti:
                aoti = True
                yield "AOTInductor-compiled code", short, "load as a shared library"
        elif short.startswith("data/constants/") and base.startswith("opaque_obj_"):
            yield "a pickled Python object", short, "unpickle with plain pickle"
        elif short.endswith("_config.json") and short.startswith(("data/weights/", "data/constants/")):
            folder = short.rsplit("/", 1)[0]
            for meta in json.loads(archive.read(full)).get("config", {}).values():
                member = f"{folder}/{meta.get('path_name')}"
                # opaque_obj_ is refused above; custom_obj_ (TorchBind) goes to TorchScript's unpickler
                pickled_object = str(meta.get("path_name")).startswith(("opaque_obj_", "custom_obj_"))
                if meta.get("use_pickle") and member in names and member not in scanned and not pickled_object:
                    scanned.add(member)
                    yield from _payload_risk(archive, member, names[member])
    for short, full in names.items():  # sample inputs, legacy weights and formats
        if short not in scanned and (short.endswith((".pt", ".pkl")) or short.startswith("serialized_")) \
                and short != "serialized_exported_program.json":
            yield from _payload_risk(archive, short, full)


def _payload_risk(archive: zipfile.ZipFile, short: str, full: str) -> Iterator[tuple[str, str, str]]:
    unsafe = unsafe_in_payload(archive.read(full))
    if unsafe:
        yield f"a pickle calling {shown(unsafe)}", short, "unpickle unrestricted"
