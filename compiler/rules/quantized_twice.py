"""KDR203: a model quantized twice."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.diagnostics import Diagnostic, Note, error


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        converted = states.get(step.subject).converted
        if step.kind == "quantize" and converted is not None:
            out.append(
                error(
                    "KDR203",
                    f"`{step.subject}` is quantized twice",
                    step.span,
                    Note(message="first quantized here", span=converted),
                    Note(kind="help", message="remove one of the `quantize` stages"),
                )
            )
    return out
