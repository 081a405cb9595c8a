"""``evaluate [M]``: metrics on the evaluation split."""

from __future__ import annotations

from compiler.lower.base import LowerState
from compiler.ops import EvaluateParams, OpParams
from compiler.program import Step
from compiler.vocab import StageTraits
from recipe_lang import ast

KIND = "evaluate"
TRAITS = StageTraits(mutates=False, after_int8=True, on_frozen=True)


def lower(st: LowerState, s: ast.EvaluateStage, step: Step) -> None:
    step.params = {}


def expand(step: Step) -> list[tuple[str, OpParams]]:
    return [("evaluate", EvaluateParams())]
