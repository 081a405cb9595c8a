"""The registry of stage kinds: one lowering module per kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from compiler.lower import distill, evaluate, export, prune, quantize, replace, snapshot, train
from compiler.ops import OpParams
from compiler.program import Step


@dataclass(frozen=True)
class StageKind:
    kind: str
    lower: Callable[..., None]
    expand: Callable[[Step], list[tuple[str, OpParams]]]


def _kind(module: ModuleType) -> StageKind:
    return StageKind(module.KIND, module.lower, module.expand)


STAGE_KINDS: dict[str, StageKind] = {
    k.kind: k
    for k in map(_kind, (train, distill, snapshot, prune, replace, quantize, evaluate, export))
}


def expand(step: Step) -> list[tuple[str, OpParams]]:
    """The (op, params) passes one step becomes, in order."""
    return STAGE_KINDS[step.kind].expand(step)
