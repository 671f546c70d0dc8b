"""What a run was computed from, by content: the files its model and task read, and the
code of the plugins it uses. Part of its ``run_id`` and of its artifact key, so that a
retrained ``model.pt``, an edited data file or a plugin edited without a version bump
re-runs what it affects (and only that).

- Files: every string in a model's or task's spec that names an existing file or folder
  (relative to the suite's folder, as sources and tasks resolve them) is hashed (SHA-256;
  a folder: the names and hashes of the files under it). Hashes are cached by path, size
  and modification time in ``$HARNESS_CACHE/fingerprints.json``, so a re-run does not read
  a large file again.
- Plugin code: the ``.py`` files of the plugin's top-level package (wherever installed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_FILES = 100_000  # a folder with more is fingerprinted by names, sizes and times only
_memo: dict[tuple[str, int, int], str] = {}


def _cache_path() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness")) / "fingerprints.json"


class _Cache:
    """Content hashes by (path, size, mtime_ns), read once and written back when grown."""

    def __init__(self) -> None:
        self.path = _cache_path()
        try:
            self.data: dict[str, list[Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def file_hash(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in _memo:
            return _memo[key]
        known = self.data.get(str(path))
        if isinstance(known, list) and known[:2] == [st.st_size, st.st_mtime_ns]:
            _memo[key] = known[2]
            return known[2]
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        _memo[key] = digest.hexdigest()
        self.data[str(path)] = [st.st_size, st.st_mtime_ns, _memo[key]]
        self.dirty = True
        return _memo[key]

    def save(self) -> None:
        if not self.dirty:
            return
        # files gone since (a deleted results folder, a temporary data set) leave the cache:
        # it holds what exists, however many benches ran
        self.data = {path: known for path, known in self.data.items() if os.path.exists(path)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache: the next bench hashes again


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def _tree_hash(folder: Path, cache: _Cache) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files[:MAX_FILES]:
        rel = path.relative_to(folder).as_posix()
        if len(files) > MAX_FILES:
            st = path.stat()
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            digest.update(f"{rel}\0{cache.file_hash(path)}\n".encode())
    return digest.hexdigest()


def files_read(spec: dict[str, Any], suite_dir: Path, skip: tuple[str, ...] = ("name", "source", "kind")) -> dict[str, str]:
    """``{string as written: sha256}`` of every file or folder a model's or task's spec
    names (relative to ``suite_dir`` or absolute)."""
    cache = _Cache()
    out: dict[str, str] = {}
    for key, value in spec.items():
        if key in skip:
            continue
        for text in strings(value):
            if not text or len(text) > 4096 or "\n" in text:
                continue
            path = Path(text).expanduser()
            path = path if path.is_absolute() else Path(suite_dir) / path
            try:
                if path.is_file():
                    out[text] = cache.file_hash(path)[:16]
                elif path.is_dir():
                    out[text] = _tree_hash(path, cache)[:16]
            except OSError:
                continue  # unreadable: the source or task reports it
    cache.save()
    return out


def code_hash(module: str) -> str:
    """SHA-256 (12 hex) of the ``.py`` files of ``module``'s top-level package; '' when
    it cannot be found. Not memoised: an edit between two benches of one process counts."""
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    digest = hashlib.sha256()
    roots = list(spec.submodule_search_locations or []) if spec else []
    if spec and not roots and spec.origin and spec.origin.endswith(".py"):
        roots = [spec.origin]
    for root in roots:
        root_path = Path(root)
        files = [root_path] if root_path.is_file() else sorted(root_path.rglob("*.py"))
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12] if roots else ""
