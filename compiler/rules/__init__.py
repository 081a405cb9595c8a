"""Compatibility rules, one module each, walked in this order by :func:`check_all`.

Each rule is ``check(program) -> list[Diagnostic]``: a plain function over the lowered
program (see ``compiler.program`` and ``compiler.state``), so a rule can be read, tested and
documented on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.program import Program
from compiler.rules import (
    after_int8,
    consecutive_graph_stages,
    distillation_available,
    distillation_settings,
    ptq_no_training,
    qat_needs_training,
    quantized_twice,
    replace_after_prune,
    self_distillation,
    teacher_trained,
    unrecovered_change,
    unstructured_pruning,
)
from recipe_lang.diagnostics import Diagnostic

Rule = Callable[[Program], list[Diagnostic]]

#: (code, rule) in the order they run.
RULES: tuple[tuple[str, Rule], ...] = (
    ("KDR200", after_int8.check),
    ("KDR201", qat_needs_training.check),
    ("KDR202", ptq_no_training.check),
    ("KDR203", quantized_twice.check),
    ("KDR204", teacher_trained.check),
    ("KDR205", self_distillation.check),
    ("KDR300", unrecovered_change.check),
    ("KDR301", unstructured_pruning.check),
    ("KDR302", replace_after_prune.check),
    ("KDR303", consecutive_graph_stages.check),
    ("KDR304", distillation_settings.check),
    ("KDR400", distillation_available.check),
)


def check_all(program: Program) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for _, rule in RULES:
        out.extend(rule(program))
    return out


__all__ = ["RULES", "Rule", "check_all"]
