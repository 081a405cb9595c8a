"""KDR200: a stage trains or changes a model after it was converted to int8."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.diagnostics import Diagnostic, Note, error

#: Stages that may act on an int8 model (snapshot only copies it; quantize is KDR203's).
_ALLOWED = {"evaluate", "export", "snapshot", "quantize"}


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        converted = states.get(step.subject).converted
        if converted is None or step.kind in _ALLOWED:
            continue
        out.append(
            error(
                "KDR200",
                f"`{step.kind}` modifies `{step.subject}` after it was converted to int8 at "
                f"{converted.line}:{converted.column}",
                step.span,
                Note(message="converted to int8 here", span=converted),
                Note(
                    kind="help",
                    message="only `evaluate` and `export` may follow; move this "
                    "stage before the quantization, or use `quantize int8 qat with ...`",
                ),
            )
        )
    return out
