"""KDR203: a model quantized twice."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_HEAD, code_info
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


#: The catalogue entry behind `kdr explain KDR203` and docs/rules.md.
ENTRY = code_info(
    "KDR203",
    "error",
    "quantized twice",
    """
A model is quantized twice. The first conversion already produced int8 kernels; drop the
second `quantize`.
""",
    EXAMPLE_HEAD + "train student for 3 epochs\nthen quantize student int8\n"
    "then quantize student int8",
    EXAMPLE_HEAD + "train student for 3 epochs\nthen quantize student int8",
)
