"""How each op propagates channel dependencies: rules in one registry, keyed by what is called.

A rule sees the walker and one fx node and returns the :class:`Info` of the node's output (its
tracked channel dim and the atom of each channel), or ``None`` when the output carries no
tracked channels. A rule couples atoms (``walker.dg.union``) or blocks them
(``walker.dg.block``); an op without a rule blocks every channel flowing into it
(``walker.unknown``), so a missing rule costs prunability, never correctness.

Rules are keyed by the called module's exact type (``call_module``), the function
(``call_function``), the method name (``call_method``), or, for functions that cannot be keyed
(torchvision's fx-wrapped ``stochastic_depth``), a predicate. The rules themselves live in
:mod:`.rules_tensor` (element-wise and shape ops), :mod:`.rules_layers` (layers),
:mod:`.rules_functional` (functional layers on a module's own weights), :mod:`.rules_split`
(split, chunk, unbind, stack, getitem) and :mod:`.rules_pointwise` (pad, addcmul, norm, einsum).
A module type may be keyed by its ``"module.QualName"`` when it comes from an optional library
kdr does not import (timm's ``Conv2dSame``).

>>> from torch import nn
>>> from runtime.passes.channels import rules_layers  # noqa: F401  (registers the layer rules)
>>> nn.Conv2d in MODULE_RULES and nn.Linear in MODULE_RULES
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import fx, nn


@dataclass
class Info:
    """The tracked channel dim of a tensor and the atom of each channel along it."""

    dim: int
    atoms: list[int]


#: ``(walker, node) -> Info | None``; the walker is a :class:`.walker.GraphWalker`.
NodeRule = Callable[[Any, fx.Node], Info | None]
#: ``(walker, node, module) -> Info | None`` for ``call_module`` nodes.
ModuleRule = Callable[[Any, fx.Node, Any], Info | None]

#: By type, or by ``"module.QualName"`` for optional libraries kdr does not import (timm).
MODULE_RULES: dict[type[nn.Module] | str, ModuleRule] = {}
FUNCTION_RULES: dict[Any, NodeRule] = {}
METHOD_RULES: dict[str, NodeRule] = {}
#: ``(matches(target), rule)`` for call_function targets that are not hashable constants.
PREDICATE_RULES: list[tuple[Callable[[Any], bool], NodeRule]] = []


def module_rule(*types: type[nn.Module] | str) -> Callable[[ModuleRule], ModuleRule]:
    def register(rule: ModuleRule) -> ModuleRule:
        for t in types:
            MODULE_RULES[t] = rule
        return rule

    return register


def function_rule(*targets: Any) -> Callable[[NodeRule], NodeRule]:
    def register(rule: NodeRule) -> NodeRule:
        for t in targets:
            FUNCTION_RULES[t] = rule
        return rule

    return register


def method_rule(*names: str) -> Callable[[NodeRule], NodeRule]:
    def register(rule: NodeRule) -> NodeRule:
        for n in names:
            METHOD_RULES[n] = rule
        return rule

    return register


def predicate_rule(matches: Callable[[Any], bool]) -> Callable[[NodeRule], NodeRule]:
    def register(rule: NodeRule) -> NodeRule:
        PREDICATE_RULES.append((matches, rule))
        return rule

    return register


def function_rule_for(target: Any) -> NodeRule | None:
    """The rule of a ``call_function`` target: by key first, then by predicate."""
    try:
        rule = FUNCTION_RULES.get(target)
    except TypeError:  # an unhashable target
        rule = None
    if rule is not None:
        return rule
    return next((r for matches, r in PREDICATE_RULES if matches(target)), None)


def arg(node: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    """Argument ``pos`` of ``node``, or its keyword ``name``."""
    if len(node.args) > pos:
        return node.args[pos]
    return node.kwargs.get(name, default)


def target_name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


__all__ = [
    "FUNCTION_RULES",
    "METHOD_RULES",
    "MODULE_RULES",
    "PREDICATE_RULES",
    "Info",
    "ModuleRule",
    "NodeRule",
    "arg",
    "function_rule",
    "function_rule_for",
    "method_rule",
    "module_rule",
    "predicate_rule",
    "target_name",
]
