"""KDR302: ``replace`` after ``prune`` on the same model: replace first, then prune."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    out = []
    for step, states in walk(program):
        pruned = states.get(step.subject).pruned
        if step.kind == "replace" and pruned is not None:
            out.append(
                warning(
                    "KDR302",
                    f"`replace` after `prune` on `{step.subject}` rebuilds the pruned layers",
                    step.span,
                    Note(message="pruned here", span=pruned),
                    Note(kind="help", message="replace convolutions first, then prune"),
                )
            )
    return out


#: The catalogue entry behind `kdr explain KDR302` and docs/rules.md.
ENTRY = code_info(
    "KDR302",
    "warning",
    "replace after prune",
    """
Replacing convolutions after pruning rebuilds the pruned layers from scratch and wastes the
pruning; replace first, then prune the cheaper model.
""",
    EXAMPLE_TRAINED + "then prune student 50% channels with distill from teacher for 1 epoch\n"
    "then replace student convs with depthwise_separable\n"
    "then distill student from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then replace student convs with depthwise_separable\n"
    "then prune student 50% channels with distill from teacher for 1 epoch",
)
