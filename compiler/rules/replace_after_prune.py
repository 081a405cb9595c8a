"""KDR302: ``replace`` after ``prune`` on the same model: replace first, then prune."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        pruned = states.get(step.subject).pruned
        if step.kind == "replace" and pruned is not None:
            out.append(
                warning(
                    "KDR302",
                    f"`replace` after `prune` on `{step.subject}` rebuilds the pruned layers",
                    step.span,
                    Note(message="pruned here", span=pruned),
                    Note(kind="help", message="replace convolutions first, then prune"),
                )
            )
    return out
