"""``distill [M] from T [temperature X] [alpha Y] [for N epochs] [with MODS]``."""

from __future__ import annotations

from compiler.lower import clauses
from compiler.lower.base import LowerState
from compiler.lower.training_ops import training_pass
from compiler.ops import OpParams
from compiler.program import Step
from compiler.vocab import DEFAULT_DISTILL_EPOCHS, StageTraits
from recipe_lang import ast

KIND = "distill"
TRAITS = StageTraits(mutates=True)


def lower(st: LowerState, s: ast.DistillStage, step: Step) -> None:
    ref = clauses.teacher_ref(st, s.teacher, step, s.options)
    if ref is None:
        step.broken = True
    step.training = clauses.training(st, step, s.duration, s.modifiers, DEFAULT_DISTILL_EPOCHS, ref)
    step.training_span = s.span


def expand(step: Step) -> list[tuple[str, OpParams]]:
    return [training_pass(step)]
