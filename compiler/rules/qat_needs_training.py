"""KDR201: ``quantize ... qat`` without a ``with ... for N epochs`` clause."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.diagnostics import Diagnostic, Note, error


def check(program: Program) -> list[Diagnostic]:
    return [
        error(
            "KDR201",
            "quantization-aware training needs a `with ... for N epochs` clause",
            step.span,
            Note(
                kind="help",
                message="e.g. `quantize int8 qat with distill from teacher for 2 epochs`",
            ),
        )
        for step in program.steps
        if step.kind == "quantize" and step.params.get("mode") == "qat" and not step.trains
    ]
