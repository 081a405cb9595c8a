"""KDR301: unstructured (``weights``) pruning compresses but does not speed up dense kernels."""

from __future__ import annotations

from compiler.program import Program
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning


def check(program: Program) -> list[Diagnostic]:
    return [
        warning(
            "KDR301",
            "`weights` pruning zeroes single weights: the model compresses better but runs no "
            "faster on dense kernels",
            step.span,
            Note(kind="help", message="use `channels` pruning for a real speedup"),
        )
        for step in program.steps
        if step.kind == "prune" and step.params.get("granularity") == "weights"
    ]


#: The catalogue entry behind `kdr explain KDR301` and docs/rules.md.
ENTRY = code_info(
    "KDR301",
    "warning",
    "unstructured pruning gives no speedup",
    """
`prune ... weights` zeroes individual weights: the model compresses better on disk but dense
kernels run at the same speed. Use `channels` for a real speedup.
""",
    EXAMPLE_TRAINED + "then prune student 50% weights with distill from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then prune student 50% channels with distill from teacher for 1 epoch",
)
