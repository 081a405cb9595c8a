"""KDR201: ``quantize ... qat`` without a ``with ... for N epochs`` clause."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.codes import EXAMPLE_HEAD, EXAMPLE_TRAINED, code_info
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


#: The catalogue entry behind `kdr explain KDR201` and docs/rules.md.
ENTRY = code_info(
    "KDR201",
    "error",
    "qat without training",
    """
Quantization-aware training trains with fake-quantized weights and activations before it
converts to int8; it needs a `with ... for N epochs` clause that says how long (and, ideally,
with which teacher).
""",
    EXAMPLE_HEAD + "train student for 3 epochs then quantize student int8 qat",
    EXAMPLE_TRAINED + "then quantize student int8 qat with distill from teacher for 1 epoch",
)
