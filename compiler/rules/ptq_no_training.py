"""KDR202: a training clause on ``static`` or ``dynamic`` (post-training) quantization."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
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


#: The catalogue entry behind `kdr explain KDR202` and docs/rules.md.
ENTRY = code_info(
    "KDR202",
    "error",
    "training clause on post-training quantization",
    """
`static` and `dynamic` quantization are post-training: they calibrate or convert without
training, so a `with ... for N epochs` clause has nothing to act on. Use `qat` to train with
quantization in the loop.
""",
    EXAMPLE_TRAINED + "then quantize student int8 static with distill from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then quantize student int8 qat with distill from teacher for 1 epoch",
)
