"""The registry of stage kinds, discovered: every module of ``compiler.lower.stages``.

A stage-kind module defines ``KIND``, ``TRAITS`` (:class:`~compiler.vocab.StageTraits`),
``lower(state, stage, step)``, ``expand(step)`` and, if the stage declares names,
``declare``. :data:`STAGES` is the one table of stage traits that the state tracker and the
rules read.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.ops import OpParams
from compiler.program import Step
from compiler.vocab import StageTraits


@dataclass(frozen=True)
class StageKind:
    kind: str
    traits: StageTraits
    lower: Callable[..., None]
    expand: Callable[[Step], list[tuple[str, OpParams]]]
    #: Optional: called on every occurrence of the stage before any is lowered (names the
    #: stage declares, such as a snapshot's).
    declare: Callable[..., None] | None = None


def _discover() -> dict[str, StageKind]:
    found: dict[str, StageKind] = {}
    folder = Path(__file__).parent / "stages"
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda i: i.name):
        module = importlib.import_module(f"compiler.lower.stages.{info.name}")
        found[module.KIND] = StageKind(
            module.KIND,
            module.TRAITS,
            module.lower,
            module.expand,
            getattr(module, "declare", None),
        )
    return found


STAGE_KINDS: dict[str, StageKind] = _discover()
STAGES: dict[str, StageTraits] = {k: s.traits for k, s in STAGE_KINDS.items()}
#: The stage kinds that may act on a snapshot or an ensemble, for messages.
FROZEN_STAGES: tuple[str, ...] = tuple(k for k, t in STAGES.items() if t.on_frozen)


def expand(step: Step) -> list[tuple[str, OpParams]]:
    """The (op, params) passes one step becomes, in order."""
    return STAGE_KINDS[step.kind].expand(step)
