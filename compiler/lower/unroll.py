"""Unrolls the pipeline into steps, one per stage occurrence.

``repeat N { ... }`` is unrolled here: its body is lowered once per iteration, so a
``prune 16%`` inside removes 16% of the channels that remain at each iteration (four
iterations keep 0.84^4 = 50% of them). Diagnostics from repeated iterations carry the same
span and are reported once. Sizes are computed before anything is unrolled, so a huge
``repeat`` is refused at once (KDR102) rather than after the work.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from compiler.declarations import Declarations
from compiler.lower import names
from compiler.lower.base import LowerState
from compiler.lower.kinds import FROZEN_STAGES, STAGE_KINDS
from compiler.program import Step
from compiler.values import Values
from compiler.vocab import MAX_STEPS
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, error


def lower_pipeline(
    decls: Declarations,
    values: Values,
    report: Callable[[Diagnostic], None],
    stages: list[ast.Stage],
) -> list[Step]:
    st = LowerState(decls, values, report)
    _declare(st, stages)
    _lower_block(st, stages, ())
    return st.steps


def _declare(st: LowerState, stages: list[ast.Stage]) -> None:
    for s in stages:
        if isinstance(s, ast.RepeatStage):
            _declare(st, s.stages)
            continue
        declare = STAGE_KINDS[s.kind].declare
        if declare is not None:
            declare(st, s)


def unrolled_size(st: LowerState, stages: list[ast.Stage]) -> int:
    """How many stage occurrences ``stages`` unroll to (counts that fail checks count 1).

    Memoized per block: deeply nested repeats are sized once each, not once per ancestor.
    """
    key = id(stages)
    if key in st.sizes:
        return st.sizes[key]
    total = 0
    for s in stages:
        if isinstance(s, ast.RepeatStage):
            value, _ = st.values.resolve(s.count)
            n = 1
            if isinstance(value, ast.Number) and math.isfinite(value.value):
                n = max(int(value.value), 1)
            total += n * unrolled_size(st, s.stages)
        else:
            total += 1
        if total > MAX_STEPS:
            break
    st.sizes[key] = total
    return total


def _lower_block(st: LowerState, stages: list[ast.Stage], iteration: tuple[int, ...]) -> None:
    for s in stages:
        if isinstance(s, ast.RepeatStage):
            n = st.values.count(s.count, "`repeat` count")
            size = (n or 1) * unrolled_size(st, s.stages)
            if len(st.steps) + size > MAX_STEPS:
                st.report(
                    error(
                        "KDR102",
                        f"the pipeline would unroll to more than {MAX_STEPS:,} stages",
                        s.span,
                        Note(kind="help", message="lower the `repeat` count"),
                    )
                )
                return
            for i in range(n or 1):
                _lower_block(st, s.stages, (*iteration, i))
        else:
            st.steps.append(_lower_stage(st, s, iteration))


def _lower_stage(st: LowerState, s: ast.Stage, iteration: tuple[int, ...]) -> Step:
    step = Step(
        index=len(st.steps), kind=s.kind, subject="", span=s.span, node=s, iteration=iteration
    )
    kind = STAGE_KINDS[s.kind]
    step.subject = names.subject(st, s, step, kind.traits, FROZEN_STAGES)
    kind.lower(st, s, step)
    step.index = len(st.steps)  # lowering may have planned steps before it (a finetune)
    if step.training is not None:
        st.trained.add(step.subject)
    return step
