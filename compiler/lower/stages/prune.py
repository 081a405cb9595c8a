"""``prune [M] P%|N:M|to BUDGET [channels|weights] [by C] [local|global] [in/except SCOPES]
[gradually over N epochs ...] [with MODS [for N epochs]]``: the cut, then its recovery
training if any; or, with ``gradually``, one training pass that ramps the sparsity."""

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
    PRUNE_WORDS,
    TRAINING_CRITERIA,
    WEIGHT_CRITERIA,
    StageTraits,
)
from recipe_lang import ast
from recipe_lang.diagnostics import Note, error

KIND = "prune"
TRAITS = StageTraits(mutates=True, graph=True)


def lower(st: LowerState, s: ast.PruneStage, step: Step) -> None:
    params: dict[str, Any] = clauses.words(
        st, s.words, PRUNE_WORDS, "prune", {"granularity": "channels"}
    )
    unstructured = params["granularity"] == "weights" and s.pattern is None
    params.setdefault("ranking", default_ranking(unstructured))
    if s.budget is not None:
        params["budget"] = _budget(st, s.budget, params["granularity"])
    elif s.pattern is not None:
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


def _criterion(st: LowerState, c: ast.Ident, params: dict[str, Any], ramps: bool) -> None:
    weights = params["granularity"] == "weights"
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
