"""KDR302: ``replace`` after ``prune`` on the same model: replace first, then prune.

A replace rebuilds the layers it swaps: channels pruned from them are pruned again from
scratch, and the zeros of a ``weights`` (or N:M, or gradual) prune are lost with them, so no
later training can keep those masks.
"""

from __future__ import annotations

from compiler.program import Program
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    out = []
    granularity = {
        (s.span.line, s.span.column): s.params.get("granularity")
        for s in program.steps
        if s.kind == "prune"
    }
    for step, states in walk(program):
        pruned = states.get(step.subject).pruned
        if step.kind == "replace" and pruned is not None:
            what = ""
            if granularity.get((pruned.line, pruned.column)) == "weights":
                what = ": the replaced layers lose their zeros (the sparsity is not kept)"
            out.append(
                warning(
                    "KDR302",
                    f"`replace` after `prune` on `{step.subject}` rebuilds the pruned layers{what}",
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
pruning: channels cut from them come back, and the zeros of a `weights` prune (one-shot, N:M or
gradual) are lost, since the new layers carry no mask that later training could keep. Replace
first, then prune the cheaper model.
""",
    EXAMPLE_TRAINED + "then prune student 50% channels with distill from teacher for 1 epoch\n"
    "then replace student convs with depthwise_separable\n"
    "then distill student from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then replace student convs with depthwise_separable\n"
    "then prune student 50% channels with distill from teacher for 1 epoch",
)
