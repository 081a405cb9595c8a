"""KDR205: a model distills from itself (or from an ensemble that contains it)."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.codes import EXAMPLE_HEAD, code_info
from recipe_lang.diagnostics import Diagnostic, Note, error


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step in program.steps:
        if step.teacher is None:
            continue
        spec = program.models.get(step.teacher.name)
        members = spec.members if spec is not None and spec.kind == "ensemble" else []
        if step.teacher.name == step.subject or step.subject in members:
            out.append(
                error(
                    "KDR205",
                    f"`{step.subject}` distills from itself"
                    + (
                        f": ensemble `{step.teacher.name}` contains it"
                        if step.teacher.name != step.subject
                        else ""
                    ),
                    step.teacher.span,
                    Note(
                        kind="help",
                        message=f"freeze a copy first: `snapshot {step.subject} as "
                        f"dense`, then distill from `dense`",
                    ),
                )
            )
    return out


#: The catalogue entry behind `kdr explain KDR205` and docs/rules.md.
ENTRY = code_info(
    "KDR205",
    "error",
    "self-distillation without a snapshot",
    """
A model cannot distill from itself while it changes: the teacher would move with the student.
Freeze a copy first with `snapshot M as NAME`, then distill from NAME.
""",
    EXAMPLE_HEAD + "train student for 3 epochs then distill student from student for 1 epoch",
    EXAMPLE_HEAD + "train student for 3 epochs\nthen snapshot student as dense\n"
    "then distill student from dense for 1 epoch",
)
