"""A cold worker: ``python -P -m harness.warm.cold SPEC RESULT`` — a fresh interpreter
that loads what the fork server loads (:mod:`harness.warm.preload`), marks where its run
starts (peak RSS is counted from there, as in a forked worker), then runs
``harness.worker`` exactly as a forked worker does."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from harness.warm.child import die_with_parent

    die_with_parent()  # before the imports: a driver that dies meanwhile takes this worker along
    from harness.warm.preload import preload, uses_of

    try:
        spec = json.loads(Path(argv[0]).read_text())
        energy = bool(spec["measure"]["energy"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        spec, energy = {}, False  # the worker reports what is wrong with the spec
    preload(energy, uses=uses_of(spec))
    from harness import worker
    from harness.measure.memory import mark_start

    mark_start()
    return worker.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
