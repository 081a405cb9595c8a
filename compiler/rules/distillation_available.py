"""KDR400: a training phase without distillation while a trained teacher is available.

Knowledge distillation is orthogonal to pruning, quantization and regularization (Park, Yoo,
Kwak 2020): its gain adds to theirs. A teacher counts as available when it holds trained
weights at that point and plays the teacher's role in the recipe: it is used as a teacher
somewhere (directly or as an ensemble member) or it is a snapshot. Stages that train a
teacher-role model themselves get no note.
"""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_HEAD, code_info
from recipe_lang.diagnostics import Diagnostic, Note, note


def check(program: Program) -> list[Diagnostic]:
    teachers = {s.teacher.name for s in program.steps if s.teacher is not None}
    teachers |= {n for n, m in program.models.items() if m.kind == "snapshot"}
    teachers &= {n for n, m in program.models.items() if not m.broken}
    teachers |= {m for t in teachers for m in program.models[t].members}
    out = []
    for step, states in walk(program):
        if not step.trains or step.teacher is not None or step.subject in teachers:
            continue
        available = sorted(
            t
            for t in teachers
            if step.subject not in program.models[t].members and states.get(t).trained is not None
        )
        if not available:
            continue
        t = available[0]
        out.append(
            note(
                "KDR400",
                f"`{t}` is a trained teacher here; distillation's gain adds to this stage's",
                step.training_span or step.span,
                Note(kind="help", message=f"add `with distill from {t}`"),
            )
        )
    return out


#: The catalogue entry behind `kdr explain KDR400` and docs/rules.md.
ENTRY = code_info(
    "KDR400",
    "note",
    "distillation is available",
    """
A training stage runs without distillation while a trained teacher is available. Knowledge
distillation is orthogonal to pruning, quantization and regularization (Park, Yoo, Kwak 2020):
its gain adds to theirs, so use it as the recovery signal, e.g. `with distill from T`.
""",
    EXAMPLE_HEAD + "train teacher for 3 epochs\n"
    "then distill student from teacher for 3 epochs\n"
    "then prune student 50% channels with lr 0.01 for 1 epoch",
    EXAMPLE_HEAD + "train teacher for 3 epochs\n"
    "then distill student from teacher for 3 epochs\n"
    "then prune student 50% channels with distill from teacher for 1 epoch",
)
