"""KDR301: unstructured (``weights``) and N:M pruning compress but do not speed up dense kernels.

Reported once per recipe, at the granularity word of the first such stage (or its N:M pattern
when ``weights`` is implied), with a note counting the other stages it covers: one warning per
stage said the same thing many times over.
"""

from __future__ import annotations

from compiler.program import Program, Step
from recipe_lang import ast
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, Span, warning


def _word_span(step: Step) -> Span:
    node = step.node
    if isinstance(node, ast.PruneStage):
        word = next((w for w in node.words if w.value == "weights"), None)
        if word is not None:
            return word.span
        if node.pattern is not None:
            return node.pattern.span
    return step.span


def _pattern(step: Step) -> str | None:
    p = step.params.get("pattern")
    return f"{p['n']}:{p['m']}" if p else None


def check(program: Program) -> list[Diagnostic]:
    steps = [
        s for s in program.steps if s.kind == "prune" and s.params.get("granularity") == "weights"
    ]
    if not steps:
        return []
    first = steps[0]
    pattern = _pattern(first)
    if pattern is None:
        message = "`weights` pruning zeroes single weights"
    else:
        n, m = pattern.split(":")
        message = f"`{pattern}` sparsity zeroes {int(m) - int(n)} of every {m} weights"
    notes = []
    others = sorted(
        {(s.span.line, s.span.column) for s in steps} - {(first.span.line, first.span.column)}
    )
    if others:
        where = ", ".join(str(line) for line, _ in others)
        plural = "s" if len(others) > 1 else ""
        notes.append(
            Note(
                message=f"this warning covers {len(others)} other `weights` prune stage{plural} "
                f"(line{plural} {where})"
            )
        )
    patterns = sorted({p for p in map(_pattern, steps) if p is not None})
    if patterns:
        notes.append(
            Note(
                message=f"N:M sparsity ({', '.join(patterns)}) runs faster only on hardware "
                "with sparse kernels: 2:4 on NVIDIA sparse tensor cores (Ampere and later) "
                "through a sparse backend; no speedup on CPU"
            )
        )
    notes.append(Note(kind="help", message="use `channels` pruning for a real speedup"))
    return [
        warning(
            "KDR301",
            f"{message}: the model compresses better but runs no faster on dense kernels",
            _word_span(first),
            *notes,
        )
    ]


#: The catalogue entry behind `kdr explain KDR301` and docs/rules.md.
ENTRY = code_info(
    "KDR301",
    "warning",
    "unstructured pruning gives no speedup",
    """
`prune ... weights` zeroes individual weights: the model compresses better on disk but dense
kernels run at the same speed. N:M patterns (`prune 2:4 weights`: at most 2 non-zero weights in
every group of 4) run faster only where sparse kernels exist: 2:4 on NVIDIA sparse tensor cores
(Ampere and later) through a sparse backend; on CPU they bring no speedup either. Use `channels`
for a real speedup on any hardware. The warning is given once per recipe, at the first such
stage, and counts the others.
""",
    EXAMPLE_TRAINED + "then prune student 50% weights with distill from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then prune student 50% channels with distill from teacher for 1 epoch",
)
