"""KDR202: a training clause on ``static`` or ``dynamic`` (post-training) quantization."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.diagnostics import Diagnostic, Note, error


def check(program: Program) -> list[Diagnostic]:
    return [
        error(
            "KDR202",
            f"`{step.params['mode']}` quantization does not train; the `with ... for N epochs` "
            "clause has nothing to act on",
            step.training_span or step.span,
            Note(kind="help", message="use `qat` to train with quantization in the loop"),
        )
        for step in program.steps
        if step.kind == "quantize"
        and step.params.get("mode") in ("static", "dynamic")
        and step.trains
    ]
