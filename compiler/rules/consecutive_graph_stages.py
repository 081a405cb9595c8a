"""KDR303: two graph stages in a row, with no training between them, that could be one stage.

Two prunes merge into one larger prune only when they cut the same way: same granularity, same
scopes, same ranking and criterion, both by a ratio (an N:M pattern or a budget is its own
kind of cut). Two replaces merge only when they swap in the same block (one stage with both
scopes). A gradual prune is never the second of such a pair: it trains while it cuts.
"""

from __future__ import annotations

from typing import Any

from compiler.lower.kinds import STAGES
from compiler.program import Program, Step
from compiler.state import walk
from recipe_lang.codes import EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, warning

#: The prune params that must agree for two prunes to be one stage.
_PRUNE_KEYS = ("granularity", "ranking", "criterion", "include", "exclude")


def _kind(step: Step) -> tuple[Any, ...]:
    """What must agree for two consecutive graph stages to merge into one."""
    if step.kind == "replace":
        return ("replace", step.params.get("kind"))
    if step.kind == "prune":
        p = step.params
        how = "pattern" if p.get("pattern") else "budget" if p.get("budget") else "ratio"
        return ("prune", how, *(str(p.get(k)) for k in _PRUNE_KEYS))
    return (step.kind,)


def check(program: Program) -> list[Diagnostic]:
    out = []
    previous: dict[str, tuple[Any, ...]] = {}
    for step, states in walk(program):
        last = states.get(step.subject).last_untrained_graph
        if STAGES[step.kind].graph:
            mergeable = "schedule" not in step.params
            if last is not None and mergeable and previous.get(step.subject) == _kind(step):
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
distill from T for 1 epoch }`). Only stages that could really be one are reported: prunes with
the same granularity, scopes, ranking and criterion (prunes of different layers, or a
`channels` prune next to a `weights` one, are left alone), replaces that swap in the same
block. A gradual prune trains while it cuts, so it is never the second of such a pair.
""",
    EXAMPLE_TRAINED + "then prune student 20% channels\n"
    "then prune student 20% channels with distill from teacher for 1 epoch",
    EXAMPLE_TRAINED + "then prune student 36% channels with distill from teacher for 1 epoch",
)
