"""Compatibility rules, one module each, walked in this order by :func:`check_all`.

Each rule is ``check(program) -> list[Diagnostic]``: a plain function over the lowered
program (see ``compiler.program`` and ``compiler.state``), so a rule can be read, tested and
documented on its own. Each module also exports ``ENTRY``, its catalogue entry.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

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
from recipe_lang.codes import CodeInfo
from recipe_lang.diagnostics import Diagnostic

Rule = Callable[[Program], list[Diagnostic]]


class RegisteredRule(NamedTuple):
    """A rule with the code it raises and its catalogue entry (``kdr explain``, the docs)."""

    code: str
    check: Rule
    entry: CodeInfo


def _rule(module: ModuleType) -> RegisteredRule:
    """A rule module's ``check`` with its catalogue ``ENTRY`` (and the entry's code)."""
    return RegisteredRule(module.ENTRY.code, module.check, module.ENTRY)


#: The rules in the order they run; each module exports ``check`` and its ``ENTRY``.
RULES: tuple[RegisteredRule, ...] = (
    _rule(after_int8),
    _rule(qat_needs_training),
    _rule(ptq_no_training),
    _rule(quantized_twice),
    _rule(teacher_trained),
    _rule(self_distillation),
    _rule(unrecovered_change),
    _rule(unstructured_pruning),
    _rule(replace_after_prune),
    _rule(consecutive_graph_stages),
    _rule(distillation_settings),
    _rule(distillation_available),
)


def check_all(program: Program) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for rule in RULES:
        out.extend(rule.check(program))
    return out


__all__ = ["RULES", "RegisteredRule", "Rule", "check_all"]
