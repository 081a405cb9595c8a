"""KDR204: a teacher that holds no trained weights when it is used."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from compiler.zoo import is_zoo_name
from recipe_lang.codes import EXAMPLE_HEAD, code_info
from recipe_lang.diagnostics import Diagnostic, Note, error


def _fixes(program: Program, missing: list[str]) -> str:
    """What makes the teacher trained, for these models (each fix is tested to work)."""
    first = missing[0]
    fixes = [
        f"train it first (`train {first} for 3 epochs then ...`)",
        f'load trained weights (`model {first} = ... from "{first}.pt"`)',
    ]
    spec = program.models.get(first)
    if spec is not None and spec.constructor is not None and is_zoo_name(spec.constructor):
        fixes.append(f'use the zoo\'s weights (`{spec.constructor}(weights="DEFAULT")`)')
    return "; or ".join(fixes)


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        if step.teacher is None or step.teacher.name == step.subject:
            continue
        missing = states.untrained_members(step.teacher.name)
        if not missing:
            continue
        who = ", ".join(f"`{m}`" for m in missing)
        out.append(
            error(
                "KDR204",
                f"teacher `{step.teacher.name}` holds no trained weights here"
                + (f" (untrained: {who})" if missing != [step.teacher.name] else ""),
                step.teacher.span,
                Note(kind="help", message=_fixes(program, missing)),
            )
        )
    return out


#: The catalogue entry behind `kdr explain KDR204` and docs/rules.md.
ENTRY = code_info(
    "KDR204",
    "error",
    "teacher without trained weights",
    """
A teacher must hold trained weights when it is used: loaded `from` a file, given `weights=...`,
trained earlier in the pipeline, a snapshot of a trained model, or an ensemble of such.
Distilling from randomly initialised weights teaches the student noise.
""",
    EXAMPLE_HEAD + "distill student from teacher for 3 epochs",
    EXAMPLE_HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs",
)
