"""KDR301: unstructured (``weights``) pruning compresses but does not speed up dense kernels."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    return [
        warning(
            "KDR301",
            "`weights` pruning zeroes single weights: the model compresses better but runs no "
            "faster on dense kernels",
            step.span,
            Note(kind="help", message="use `channels` pruning for a real speedup"),
        )
        for step in program.steps
        if step.kind == "prune" and step.params.get("granularity") == "weights"
    ]
