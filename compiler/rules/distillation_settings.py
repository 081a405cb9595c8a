"""KDR304: distillation with no effect (alpha 0) or an unusual temperature (> 20)."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.codes import EXAMPLE_HEAD, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning

MAX_USUAL_TEMPERATURE = 20.0


def check(program: Program) -> list[Diagnostic]:
    out = []
    seen = set()
    for step in program.steps:
        ref = step.teacher
        if ref is None or id(ref) in seen:
            continue
        seen.add(id(ref))
        where = ref.options_span or ref.span
        if ref.alpha == 0:
            out.append(
                warning(
                    "KDR304",
                    "alpha 0 gives the distillation term no weight: this is plain training",
                    where,
                    Note(kind="help", message="use alpha around 0.5-0.9, or `train` instead"),
                )
            )
        if ref.temperature > MAX_USUAL_TEMPERATURE:
            out.append(
                warning(
                    "KDR304",
                    f"temperature {ref.temperature:g} is unusually high: the teacher's soft labels "
                    "become nearly uniform",
                    where,
                    Note(kind="help", message="temperatures of 2-8 are usual"),
                )
            )
    return out


#: The catalogue entry behind `kdr explain KDR304` and docs/rules.md.
ENTRY = code_info(
    "KDR304",
    "warning",
    "distillation without effect or with an unusual temperature",
    """
With alpha 0 the distillation term has no weight and the stage is plain training; a temperature
above 20 flattens the teacher's distribution so much that it carries little information.
""",
    EXAMPLE_HEAD + "train teacher for 3 epochs\n"
    "then distill student from teacher alpha 0 for 3 epochs",
    EXAMPLE_HEAD + "train teacher for 3 epochs\n"
    "then distill student from teacher alpha 0.9 for 3 epochs",
)
