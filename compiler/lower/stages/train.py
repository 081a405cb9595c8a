"""``train [M] for N epochs|steps [with MODS]`` (also ``finetune``): one training pass."""

from __future__ import annotations

from compiler.lower import clauses
from compiler.lower.base import LowerState
from compiler.lower.training_ops import training_pass
from compiler.ops import OpParams
from compiler.program import Step
from compiler.vocab import StageTraits
from recipe_lang import ast

KIND = "train"
TRAITS = StageTraits(mutates=True)


def lower(st: LowerState, s: ast.TrainStage, step: Step) -> None:
    step.params = {"verb": s.verb}
    step.training = clauses.training(st, step, s.duration, s.modifiers)
    step.training_span = s.span


def expand(step: Step) -> list[tuple[str, OpParams]]:
    return [training_pass(step, verb=step.params["verb"])]
