"""``prune [M] P%|N:M|to BUDGET [channels|weights|heads] [by C] [local|global] [in/except SCOPES]
[gradually over N epochs ...] [with MODS [for N epochs]]``: the cut, then its recovery
training if any; or, with ``gradually``, one training pass that ramps the sparsity.

``heads`` (whole attention heads, :mod:`runtime.passes.heads`) takes a ratio only: a budget,
an N:M pattern or a ramp is KDR103 (:func:`_heads_only_ratio`)."""

from __future__ import annotations

import math
from typing import Any

from compiler.lower import clauses, gradual
from compiler.lower.base import LowerState
from compiler.lower.training_ops import training_pass
from compiler.ops import (
    OpParams,
    PruneChannelsGradualParams,
    PruneChannelsParams,
    PruneHeadsParams,
    PruneWeightsGradualParams,
    PruneWeightsParams,
    Schedule,
    TrainingParams,
)
from compiler.params import default_ranking
from compiler.program import Step
from compiler.values import unknown
from compiler.vocab import (
    BUDGET_UNITS,
    CRITERIA,
    HEAD_CRITERIA,
    PRUNE_WORDS,
    TRAINING_CRITERIA,
    WEIGHT_CRITERIA,
    StageTraits,
)
from recipe_lang import ast
from recipe_lang.diagnostics import Note, Span, error

KIND = "prune"
TRAITS = StageTraits(mutates=True, graph=True)


def lower(st: LowerState, s: ast.PruneStage, step: Step) -> None:
    params: dict[str, Any] = clauses.words(
        st, s.words, PRUNE_WORDS, "prune", {"granularity": "channels"}
    )
    unstructured = params["granularity"] == "weights" and s.pattern is None
    params.setdefault("ranking", default_ranking(unstructured))
    heads = params["granularity"] == "heads"
    if heads:
        _heads_only_ratio(st, s)  # a budget or a pattern is reported there, not lowered
    if s.budget is not None and not heads:
        params["budget"] = _budget(st, s.budget, params["granularity"])
    elif s.pattern is not None and not heads:
        params["pattern"] = gradual.pattern(st, s, params)
    elif s.amount is not None:
        params["ratio"] = st.values.ratio(s.amount, "the pruning amount")
    params["criterion"] = "l1"
    if s.criterion is not None:
        _criterion(st, s.criterion, params, s.gradual is not None)
    params["include"] = clauses.scopes(s.include)
    params["exclude"] = clauses.scopes(s.exclude)
    step.params = params
    if s.gradual is not None:
        gradual.gradual(st, s, step, params)
    else:
        clauses.recovery(st, step, s.duration, s.modifiers)


def _heads_only_ratio(st: LowerState, s: ast.PruneStage) -> None:
    """``heads`` removes a ratio of whole heads in one cut: no budget, N:M or ramp (KDR103)."""
    word = next(w for w in s.words if w.value == "heads")
    problems: list[tuple[Span, str, str]] = []
    if s.budget is not None:
        problems.append(
            (
                s.budget.span,
                "a budget needs `channels` pruning: `heads` removes a ratio of the heads",
                "write a ratio, e.g. `prune 25% heads`, or aim at the budget with channels: "
                "`prune to 40% macs`",
            )
        )
    if s.pattern is not None:
        text = f"{s.pattern.n}:{s.pattern.m}"
        problems.append(
            (
                word.span,
                f"an N:M pattern zeroes single weights: `{text}` does not apply to `heads`",
                f"write `prune {text} weights`, or `prune 50% heads` for whole heads",
            )
        )
    if s.gradual is not None:
        problems.append(
            (
                s.gradual.span,
                "`heads` are removed in one cut: a heads prune cannot be `gradually`",
                "write `prune 25% heads with distill from teacher for 3 epochs` (recovery after "
                "the cut), or `repeat` a smaller cut with its own recovery",
            )
        )
    for span, message, help_text in problems:
        st.report(error("KDR103", message, span, Note(kind="help", message=help_text)))


def _criterion(st: LowerState, c: ast.Ident, params: dict[str, Any], ramps: bool) -> None:
    weights = params["granularity"] == "weights"
    if params["granularity"] == "heads":
        _head_criterion(st, c, params)
        return
    allowed = WEIGHT_CRITERIA if weights else CRITERIA
    if c.value in TRAINING_CRITERIA and (not weights or not ramps or "pattern" in params):
        st.report(
            error(
                "KDR103",
                f"`by {c.value}` scores single weights as they train: it needs a gradual "
                "`weights` prune",
                c.span,
                Note(
                    kind="help",
                    message=f"write `prune 90% weights by {c.value} gradually over 3 epochs`, "
                    "or rank by magnitude: `by l1`",
                ),
            )
        )
    elif c.value in allowed:
        params["criterion"] = c.value
    elif c.value in CRITERIA:
        st.report(
            error(
                "KDR103",
                f"`by {c.value}` does not apply to `weights` pruning",
                c.span,
                Note(
                    kind="help",
                    message=f"`{c.value}` ranks whole channels (`prune 50% channels by "
                    f"{c.value}`); unstructured pruning ranks weights by magnitude: `by l1`",
                ),
            )
        )
    else:
        st.report(unknown("KDR103", "pruning criterion", c.value, c.span, allowed))


def _head_criterion(st: LowerState, c: ast.Ident, params: dict[str, Any]) -> None:
    if c.value in HEAD_CRITERIA:
        params["criterion"] = c.value
    elif c.value in CRITERIA or c.value in WEIGHT_CRITERIA:
        st.report(
            error(
                "KDR103",
                f"`by {c.value}` does not apply to `heads` pruning",
                c.span,
                Note(
                    kind="help",
                    message="a head is ranked by the norm of its query, key, value and output "
                    f"weights: use one of {', '.join(f'`by {k}`' for k in HEAD_CRITERIA)}",
                ),
            )
        )
    else:
        st.report(unknown("KDR103", "head pruning criterion", c.value, c.span, HEAD_CRITERIA))


def _budget(st: LowerState, b: ast.Budget, granularity: str) -> dict[str, Any] | None:
    unit = b.unit.value
    if unit not in BUDGET_UNITS:
        st.report(unknown("KDR103", "budget unit", unit, b.unit.span, BUDGET_UNITS))
        return None
    if granularity != "channels":
        st.report(error("KDR103", "a budget needs `channels` pruning", b.span))
        return None
    value, decl = st.values.resolve(b.value)
    if isinstance(value, ast.Percent):
        ratio = st.values.ratio(b.value, "the budget")
        return None if ratio is None else {"unit": unit, "fraction": ratio}
    if isinstance(value, (ast.Number, ast.Size)):
        if not math.isfinite(value.value):  # already reported as too large
            return None
        if value.value < 1:
            st.report(error("KDR102", f"the budget must be at least 1 {unit}", b.value.span))
            return None
        return {"unit": unit, "value": int(value.value)}
    if value is not None:
        st.report(
            error(
                "KDR104",
                "a budget is a count like `2.5M` or a percentage",
                b.value.span,
                *[n for n in (decl,) if n],
            )
        )
    return None


def expand(step: Step) -> list[tuple[str, OpParams]]:
    skip = ("granularity", "schedule")
    p = {k: v for k, v in step.params.items() if k not in skip and v is not None}
    if step.params["granularity"] == "heads":
        heads = PruneHeadsParams.model_validate(p)
        if step.training is None:
            return [("prune.heads", heads)]
        return [("prune.heads", heads), training_pass(step, recovery=True)]
    channels = step.params["granularity"] == "channels"
    cut = (PruneChannelsParams if channels else PruneWeightsParams).model_validate(p)
    op = "prune.channels" if channels else "prune.weights"
    schedule = step.params.get("schedule")
    if schedule is not None:
        assert step.training is not None
        ramp = PruneChannelsGradualParams if channels else PruneWeightsGradualParams
        gradual_params = ramp.model_validate(
            {
                "cut": cut,
                "schedule": Schedule.model_validate(schedule),
                "training": TrainingParams.model_validate(step.training),
            }
        )
        return [(f"{op}.gradual", gradual_params)]
    if step.training is None:
        return [(op, cut)]
    return [(op, cut), training_pass(step, recovery=True)]
