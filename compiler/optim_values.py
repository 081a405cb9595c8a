"""Checks on what a recipe says about optimizing: optimizers, schedules and their warmup.

``set optimizer = ...`` / ``set schedule = ...`` and a training's ``with optimizer ...`` /
``with schedule ...`` go through the same checks, and give the same plain dicts: an
:class:`~compiler.optim_params.OptimizerSpec` or :class:`~compiler.optim_params.LrSchedule`
dumped without its unset fields, every default filled in (:data:`SCHEDULE_DEFAULTS`), so the
runtime reads a complete schedule. Unknown arguments are KDR103 (with "did you mean"), values
out of range KDR102, values of the wrong kind KDR104.

>>> from recipe_lang.parser import parse_value
>>> bag = []
>>> schedule_spec(parse_value("multistep(milestones=[2, 4])"), Values({}, bag.append))
{'name': 'multistep', 'gamma': 0.1, 'milestones': [2, 4]}
"""

from __future__ import annotations

import itertools
from typing import Any

from compiler.optim_params import OPTIMIZER_ARGS, SCHEDULE_ARGS, LrSchedule, OptimizerSpec
from compiler.values import Values, unknown
from compiler.vocab import OPTIMIZERS, SCHEDULES
from recipe_lang import ast
from recipe_lang.diagnostics import Note, Span, error

#: The learning rate an optimizer named without one gets.
DEFAULT_LR: dict[str, float] = {"sgd": 0.05, "adamw": 0.005}

#: The arguments a schedule gets when the recipe leaves them out. ``poly`` defaults to a
#: quadratic decay (``power=1`` is ``linear``); ``multistep`` needs its ``milestones`` and
#: ``cosine_restarts`` its ``period`` (:data:`REQUIRED_ARGS`): no length fits every training.
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "step": {"step_size": 1, "gamma": 0.1},
    "multistep": {"gamma": 0.1},
    "linear": {"end": 0.0},
    "poly": {"power": 2.0},
    "cosine_restarts": {"mult": 1},
}
REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "multistep": ("milestones",),
    "cosine_restarts": ("period",),
}
#: ``set schedule = cosine(warmup_epochs=2)``: a warmup given inside the schedule call.
WARMUP_ARGS: dict[str, str] = {"warmup_epochs": "epochs", "warmup_steps": "steps"}

#: (low, high, low_open, high_open) of each numeric argument.
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "lr": (0, None, True, False),
    "weight_decay": (0, None, False, False),
    "momentum": (0, 1, False, True),
    "beta1": (0, 1, False, True),
    "beta2": (0, 1, False, True),
    "gamma": (0, 1, True, False),
    "end": (0, 1, False, True),
    "power": (0, None, True, False),
}
#: Arguments that are whole numbers (at least 1).
_COUNTS = ("step_size", "period", "mult")
#: An example of each schedule, for the help of a missing argument.
EXAMPLES: dict[str, str] = {
    "step": "step(step_size=2, gamma=0.1)",
    "multistep": "multistep(milestones=[25, 45], gamma=0.1)",
    "linear": "linear(end=0)",
    "poly": "poly(power=2)",
    "cosine_restarts": "cosine_restarts(period=10, mult=2)",
}
_BOOLS = {"true": True, "false": False}


def _help(message: str) -> Note:
    return Note(kind="help", message=message)


def _name_and_call(
    v: ast.Value, values: Values, what: str
) -> tuple[str, ast.Call | None, Span] | None:
    """``sgd`` or ``sgd(...)`` (a ``$param`` followed): its name and call, or None (reported)."""
    resolved, decl = values.resolve(v)
    if resolved is None:
        return None
    if isinstance(resolved, ast.Call) and not resolved.factory:
        return resolved.callee, resolved, v.span
    if isinstance(resolved, (ast.Name, ast.String)):
        return resolved.value, None, v.span
    example = "`sgd(lr=0.05)`" if what == "optimizer" else "`cosine` or `step(step_size=2)`"
    notes = [n for n in (decl,) if n]
    values.report(
        error("KDR104", f"`{what}` must be a name or a call like {example}", v.span, *notes)
    )
    return None


def _named_args(call: ast.Call | None, values: Values, what: str) -> list[ast.KeywordArg] | None:
    if call is not None and call.args:
        values.report(
            error(
                "KDR104",
                f"{what} arguments must be named, like `gamma=0.1`",
                call.args[0].span,
            )
        )
        return None
    return list(call.kwargs) if call is not None else []


def _number_arg(k: ast.KeywordArg, values: Values) -> float | int | None:
    if k.name in _COUNTS:
        return values.count(k.value, f"`{k.name}`")
    low, high, low_open, high_open = _RANGES[k.name]
    return values.number(
        k.value, f"`{k.name}`", low=low, high=high, low_open=low_open, high_open=high_open
    )


# ---- optimizers --------------------------------------------------------------------------------
def optimizer_spec(v: ast.Value, values: Values) -> dict[str, Any] | None:
    """``sgd(lr=0.05, momentum=0.9)`` or ``adamw``: an OptimizerSpec dict, or None (reported)."""
    head = _name_and_call(v, values, "optimizer")
    if head is None:
        return None
    name, call, span = head
    if name not in OPTIMIZERS:
        values.report(unknown("KDR100", "optimizer", name, span, OPTIMIZERS))
        return None
    kwargs = _named_args(call, values, "optimizer")
    if kwargs is None:
        return None
    out: dict[str, Any] = {"name": name, "lr": DEFAULT_LR[name]}
    allowed = OPTIMIZER_ARGS[name]
    ok = True
    for k in kwargs:
        if k.name not in allowed:
            values.report(_foreign_arg(name, k, allowed))
            ok = False
            continue
        if k.name == "nesterov":
            flag = _bool(k, values)
            ok &= flag is not None
            out["nesterov"] = flag
            continue
        x = _number_arg(k, values)
        ok &= x is not None
        out[k.name] = x
    if ok and out.get("nesterov") and out.get("momentum", 0.9) == 0:
        where = next(k.span for k in kwargs if k.name == "nesterov")
        values.report(
            error(
                "KDR103",
                "`nesterov=true` needs a momentum above 0",
                where,
                _help("give a momentum (`momentum=0.9`) or drop `nesterov`"),
            )
        )
        ok = False
    if not ok:
        return None
    return OptimizerSpec.model_validate(out).model_dump(exclude_none=True)


def _foreign_arg(name: str, k: ast.KeywordArg, allowed: tuple[str, ...]) -> Any:
    """KDR103 for an argument ``name`` does not take; says which optimizer does take it."""
    owners = [o for o, args in OPTIMIZER_ARGS.items() if k.name in args]
    if owners:
        return error(
            "KDR103",
            f"`{name}` takes no `{k.name}`: it is an argument of `{owners[0]}`",
            k.span,
            Note(message="`" + name + "` takes " + ", ".join(f"`{a}`" for a in allowed)),
        )
    return unknown("KDR103", f"`{name}` argument", k.name, k.span, allowed)


def _bool(k: ast.KeywordArg, values: Values) -> bool | None:
    resolved, _ = values.resolve(k.value)
    word = resolved.value.lower() if isinstance(resolved, ast.Name) else None
    if word not in _BOOLS:
        if resolved is not None:
            values.report(error("KDR104", f"`{k.name}` must be `true` or `false`", k.value.span))
        return None
    return _BOOLS[word]


# ---- schedules ---------------------------------------------------------------------------------
def schedule_spec(
    v: ast.Value, values: Values, *, warmup_args: bool = True
) -> dict[str, Any] | None:
    """``multistep(milestones=[2], gamma=0.1)``, ``cosine``, ...: an LrSchedule dict with its
    defaults filled in, or None (reported). With ``warmup_args``, ``warmup_epochs=N`` /
    ``warmup_steps=N`` give the nested ``warmup``."""
    head = _name_and_call(v, values, "schedule")
    if head is None:
        return None
    name, call, span = head
    if name not in SCHEDULES:
        values.report(unknown("KDR100", "schedule", name, span, SCHEDULES))
        return None
    kwargs = _named_args(call, values, "schedule")
    if kwargs is None:
        return None
    allowed = SCHEDULE_ARGS[name] + (tuple(WARMUP_ARGS) if warmup_args else ())
    out: dict[str, Any] = {"name": name, **SCHEDULE_DEFAULTS.get(name, {})}
    ok = True
    warmup: ast.KeywordArg | None = None
    for k in kwargs:
        if k.name not in allowed:
            what = f"`{name}` argument"
            if not allowed:
                values.report(
                    error(
                        "KDR103",
                        f"schedule `{name}` takes no `{k.name}`",
                        k.span,
                        _help(f"write `{name}`" + (" (warmup: `warmup_epochs=N`)" * warmup_args)),
                    )
                )
            else:
                values.report(unknown("KDR103", what, k.name, k.span, allowed))
            ok = False
        elif k.name in WARMUP_ARGS:
            if warmup is not None:
                values.report(
                    error(
                        "KDR103",
                        f"`{k.name}` and `{warmup.name}` are two warmups: give one",
                        k.span,
                        Note(message="the first is given here", span=warmup.span),
                    )
                )
                ok = False
                continue
            warmup = k
            n = values.count(k.value, f"`{k.name}`")
            ok &= n is not None
            out["warmup"] = {WARMUP_ARGS[k.name]: n}
        elif k.name == "milestones":
            milestones = _milestones(k, values)
            ok &= milestones is not None
            out["milestones"] = milestones
        else:
            x = _number_arg(k, values)
            ok &= x is not None
            out[k.name] = x
    missing = [a for a in REQUIRED_ARGS.get(name, ()) if a not in out]
    if ok and missing:
        values.report(
            error(
                "KDR104",
                f"schedule `{name}` needs `{missing[0]}`",
                span,
                _help(f"for example `{EXAMPLES[name]}`"),
            )
        )
        ok = False
    if not ok:
        return None
    return LrSchedule.model_validate(out).model_dump(exclude_none=True)


def _milestones(k: ast.KeywordArg, values: Values) -> list[int] | None:
    """A non-empty, strictly increasing list of counts."""
    resolved, decl = values.resolve(k.value)
    if resolved is None:
        return None
    notes = [n for n in (decl,) if n]
    if not isinstance(resolved, ast.NumberList) or not resolved.items:
        got = "an empty list" if isinstance(resolved, ast.NumberList) else "not a list"
        values.report(
            error(
                "KDR104",
                f"`milestones` must be a list of epochs (or steps) like `[25, 45]`, {got}",
                k.value.span,
                *notes,
            )
        )
        return None
    counts = [values.count(item, "a milestone") for item in resolved.items]
    if any(c is None for c in counts):
        return None
    checked = [c for c in counts if c is not None]
    for (a, b), item in zip(itertools.pairwise(checked), resolved.items[1:], strict=True):
        if b <= a:
            values.report(
                error(
                    "KDR102",
                    f"milestones must increase: {b} follows {a}",
                    item.span,
                    *notes,
                    _help("list each milestone once, in order: `[25, 45]`"),
                )
            )
            return None
    return checked


__all__ = [
    "DEFAULT_LR",
    "EXAMPLES",
    "REQUIRED_ARGS",
    "SCHEDULE_DEFAULTS",
    "WARMUP_ARGS",
    "optimizer_spec",
    "schedule_spec",
]
