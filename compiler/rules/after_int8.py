"""KDR200: a stage trains or changes a model after it was converted to int8."""

from __future__ import annotations

from compiler.lower.kinds import STAGES
from compiler.program import Program
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_HEAD, EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, error


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        converted = states.get(step.subject).converted
        if converted is None or STAGES[step.kind].after_int8:
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


#: The catalogue entry behind `kdr explain KDR200` and docs/rules.md.
ENTRY = code_info(
    "KDR200",
    "error",
    "change after int8 conversion",
    """
After `quantize ... int8` converts a model, its weights are int8 and its graph is fixed: it can
no longer be trained, distilled, pruned, replaced or quantized. Only `evaluate` and `export` may
follow. Move the stage before the quantization, or use `quantize int8 qat with ... for N epochs`
to train with quantization in the loop.
""",
    EXAMPLE_HEAD + "train student for 3 epochs\nthen quantize student int8\n"
    "then prune student 50% channels",
    EXAMPLE_TRAINED + "then prune student 50% channels "
    "with distill from teacher for 1 epoch\nthen quantize student int8",
)
