"""Side by side by scheme: a suite that names its methods ``<scheme>:<who>``
(``suites/toolkits.toml``: ``int8-weights:nncf``, ``int8-weights:quanto``) gets, per model
and task, a table with a row per scheme and a column per toolkit, each cell what that
toolkit's run of that scheme kept, weighed and ran — so that a row reads "int4 AWQ:
ModelOpt vs NNCF vs llm-compressor"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.columns import blank


@dataclass
class SchemeTable:
    who: list[str]  # the toolkits (what follows the ':'), in order of first appearance
    rows: list[tuple[str, list[str]]]  # (scheme, a cell per toolkit: "" where it has no such method)


def _number(value: Any) -> float | None:
    return None if blank(value) else float(value)


def cell(record: dict[str, Any]) -> str:
    """``kept ×0.998 (yes) · 1.24 MB · speed ×0.90 · simulated``; a run that did not finish ok: its status."""
    if record.get("status") != "ok":
        return str(record.get("status"))
    parts = []
    kept, size, speed = (_number(record.get(k)) for k in ("retained", "size_mb", "speedup"))
    if kept is not None:
        parts.append(f"kept ×{kept:.3f}" + (f" ({record['holds']})" if isinstance(record.get("holds"), str) else ""))
    if size is not None:
        parts.append(f"{size:.3g} MB")
    if speed is not None:
        parts.append(f"speed ×{speed:.2f}")
    if isinstance(record.get("kernels"), str):
        parts.append(record["kernels"])
    return " · ".join(parts)


def scheme_table(part: Any) -> SchemeTable | None:
    """The table of one (suite, model, task)'s rows (every status), or None where no
    scheme has methods of two toolkits."""
    schemes: dict[str, dict[str, str]] = {}
    for record in part.to_dict("records"):
        scheme, colon, who = str(record["method"]).partition(":")
        if colon and scheme and who:
            schemes.setdefault(scheme, {})[who] = cell(record)
    if not any(len(by) > 1 for by in schemes.values()):
        return None
    who = list(dict.fromkeys(w for by in schemes.values() for w in by))
    return SchemeTable(who, [(scheme, [by.get(w, "") for w in who]) for scheme, by in schemes.items()])


CAPTION = ("Methods named <scheme>:<toolkit>, side by side: the quality kept (the verdict), the size, the speed-up "
           "against the baseline and whether low-precision kernels ran (simulated: a fake-quantized or dequantized "
           "model, whose speed is not the format's).")
