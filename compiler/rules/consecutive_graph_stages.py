"""KDR303: two graph stages of the same kind in a row with no training between them.

Two prunes merge into one larger prune; two replaces merge only when they swap in the same
block (one stage with both scopes): replaces with different blocks cannot be one stage.
"""

from __future__ import annotations

from compiler.lower.kinds import STAGES
from compiler.program import Program, Step
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning


def _kind(step: Step) -> str:
    if step.kind == "replace":
        return f"replace:{step.params.get('kind')}"
    return step.kind


def check(program: Program) -> list[Diagnostic]:
    out = []
    previous: dict[str, str] = {}
    for step, states in walk(program):
        last = states.get(step.subject).last_untrained_graph
        if STAGES[step.kind].graph:
            if last is not None and previous.get(step.subject) == _kind(step):
                out.append(
                    warning(
                        "KDR303",
                        f"two `{step.kind}` stages on `{step.subject}` with no training "
                        "between them",
                        step.span,
                        Note(message=f"the previous `{step.kind}` is here", span=last[1]),
                        Note(
                            kind="help", message="merge them into one stage, or train between them"
                        ),
                    )
                )
            previous[step.subject] = _kind(step)
    return out


#: The catalogue entry behind `kdr explain KDR303` and docs/rules.md.
ENTRY = code_info(
    "KDR303",
    "warning",
    "consecutive graph stages of one kind",
    """
Two prune (or two replace) stages in a row with no training between them act like one larger
stage; merge them, or train between them (an iterative schedule: `repeat N { prune P% then
distill from T for 1 epoch }`).
""",
    EXAMPLE_TRAINED + "then prune student 20% channels\n"
    "then prune student 20% channels with distill from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then prune student 36% channels with distill from teacher for 1 epoch",
)
