"""KDR303: two graph stages of the same kind in a row with no training between them."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        last = states.get(step.subject).last_untrained_graph
        if step.kind in ("prune", "replace") and last is not None and last[0] == step.kind:
            out.append(
                warning(
                    "KDR303",
                    f"two `{step.kind}` stages on `{step.subject}` with no training between them",
                    step.span,
                    Note(message=f"the previous `{step.kind}` is here", span=last[1]),
                    Note(kind="help", message="merge them into one stage, or train between them"),
                )
            )
    return out
