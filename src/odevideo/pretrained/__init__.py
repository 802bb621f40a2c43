"""Models that ship inside the package, found by name wherever a checkpoint is accepted.

Each is ``NAME.safetensors`` (weights and resolved config, an ordinary odevideo checkpoint) and ``NAME.json``,
its card: what it was trained on, with which command and budget, its benchmark scores with the results file
they come from, and ``check``, a small test set and the score the model got on it when it was shipped (the
tests re-score it). ``benchmarks/ship_models.py`` writes both.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from odevideo.errors import CheckpointError

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """The shipped models, by name."""
    return sorted(p.stem for p in HERE.glob("*.safetensors"))


def path(name: str) -> Path:
    """The checkpoint file of shipped model ``name``.

    Raises:
        CheckpointError: no shipped model has that name.
    """
    found = HERE / f"{name}.safetensors"
    if name not in names() or not found.is_file():
        raise CheckpointError(f"no shipped model named {name!r}; shipped: {', '.join(names()) or 'none'}")
    return found


@cache
def card(name: str) -> dict[str, object]:
    """The card of shipped model ``name`` (see the module docstring)."""
    path(name)
    return json.loads((HERE / f"{name}.json").read_text())
