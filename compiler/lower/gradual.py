"""The parts of ``prune`` that go beyond one cut: the gradual clause and N:M patterns.

``prune M 90% weights gradually over 3 epochs [from 10%] [every 100 steps] [cubic] [with MODS]``
is one training pass whose sparsity ramps (:class:`compiler.ops.Schedule`); ``prune M 2:4``
keeps the 2 largest of every 4 consecutive weights. Both fill the prune step's params
(``schedule``, ``pattern``); :mod:`compiler.lower.stages.prune` expands them into passes.
"""

from __future__ import annotations

from typing import Any

from compiler.lower import clauses
from compiler.lower.base import LowerState
from compiler.ops import Schedule
from compiler.program import Step
from compiler.values import unknown
from compiler.vocab import CURVES, DEFAULT_CURVE, DURATION_UNITS
from recipe_lang import ast
from recipe_lang.diagnostics import Note, Span, error
from recipe_lang.printer import value


def _help(message: str) -> Note:
    return Note(kind="help", message=message)


# ---- N:M ---------------------------------------------------------------------------------------
def pattern(st: LowerState, s: ast.PruneStage, params: dict[str, Any]) -> dict[str, int] | None:
    """``2:4``: checked against the stage's other words; ``weights`` is implied."""
    assert s.pattern is not None
    p = s.pattern
    text = f"{p.n}:{p.m}"
    ok = True
    for w in s.words:
        if w.value == "channels":
            st.report(
                error(
                    "KDR103",
                    f"an N:M pattern zeroes single weights: `{text}` does not apply to `channels`",
                    w.span,
                    _help(f"write `prune {text} weights` (or `prune 50% channels` for channels)"),
                )
            )
            ok = False
        elif w.value == "global":
            st.report(
                error(
                    "KDR103",
                    f"an N:M pattern is kept within each group of {p.m}: it has no `global` "
                    "ranking",
                    w.span,
                    _help("drop `global` (every group keeps its own largest weights)"),
                )
            )
            ok = False
    if s.gradual is not None:
        st.report(
            error(
                "KDR103",
                f"an N:M pattern is applied in one cut: `{text}` cannot be `gradually`",
                s.gradual.span,
                _help(
                    f"write `prune {text} weights with ... for N epochs` (recovery after the cut), "
                    "or ramp a ratio: `prune 50% weights gradually over ...`"
                ),
            )
        )
        ok = False
    if not 0 < p.n < p.m:
        st.report(
            error(
                "KDR102",
                f"an N:M pattern keeps N of every M weights with 0 < N < M, got `{text}`",
                p.span,
                _help("for example `2:4` (the pattern of NVIDIA's sparse tensor cores)"),
            )
        )
        ok = False
    params["granularity"] = "weights"
    return {"n": p.n, "m": p.m} if ok else None


# ---- gradual -----------------------------------------------------------------------------------
def gradual(st: LowerState, s: ast.PruneStage, step: Step, params: dict[str, Any]) -> None:
    """The schedule (``params["schedule"]``) and the training it ramps during."""
    g = s.gradual
    assert g is not None
    if s.budget is not None:
        st.report(
            error(
                "KDR103",
                "a gradual prune ramps a ratio: it cannot aim at a budget",
                s.budget.span,
                _help("write a ratio, e.g. `prune 50% channels gradually over 3 epochs`"),
            )
        )
    if s.duration is not None:
        st.report(
            error(
                "KDR103",
                "a gradual prune trains for its `over` duration: `for ...` gives it a second one",
                s.duration.span,
                _help(
                    "drop the `for` duration: the modifiers apply to the training over "
                    f"{_text(g.over)}"
                ),
            )
        )
    step.training = clauses.training(st, step, g.over, s.modifiers)
    step.training_span = Span.cover(g.span, s.modifiers[-1].span) if s.modifiers else g.span
    schedule: dict[str, Any] = {"curve": DEFAULT_CURVE}
    if g.start is not None:
        start = st.values.ratio(g.start, "the start of a gradual prune (`from`)", zero=True)
        target = params.get("ratio")
        if start is not None and target is not None and target <= start:
            st.report(
                error(
                    "KDR102",
                    f"a gradual prune ramps up: it starts at {start * 100:g}% and targets "
                    f"{target * 100:g}%, so its target must be above its start",
                    g.start.span,
                    _help(f"start below {target * 100:g}%, or leave `from` out to start at 0%"),
                )
            )
        elif start is not None:
            schedule["start"] = start
    if g.every is not None:
        every = clauses.duration(st, g.every)
        if every is not None:
            ((unit, count),) = every.items()
            schedule[f"every_{unit}"] = count
    if g.curve is not None:
        if g.curve.value in CURVES:
            schedule["curve"] = g.curve.value
        else:
            st.report(unknown("KDR103", "sparsity curve", g.curve.value, g.curve.span, CURVES))
    params["schedule"] = schedule
    _fits(st, g, schedule, params.get("ratio"))


def _text(d: ast.Duration) -> str:
    return f"{value(d.count)} {d.unit.value}"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit if n != 1 else unit[:-1]}"


def _valid_count(st: LowerState, v: ast.Num) -> int | None:
    """The count ``v`` stands for if it is a valid one (its errors are reported elsewhere)."""
    if isinstance(v, ast.Ref):
        if v.name not in st.values.params:
            return None
        v = st.values.params[v.name][0]  # type: ignore[assignment]
    if isinstance(v, ast.Number) and v.value.is_integer() and v.value >= 1:
        return int(v.value)
    return None


def _fits(
    st: LowerState,
    g: ast.Gradual,
    schedule: dict[str, Any],
    target: float | None,
) -> None:
    """KDR106 when the update period and the duration share a unit and leave a single update
    (nothing to ramp). Other units meet only at run time (the data's steps per epoch)."""
    over_unit = DURATION_UNITS.get(g.over.unit.value)
    total = _valid_count(st, g.over.count)
    period_unit = next((k[6:] for k in schedule if k.startswith("every_")), "epochs")
    if over_unit is None or total is None or period_unit != over_unit:
        return
    if g.every is not None and f"every_{period_unit}" not in schedule:
        return  # the period itself is wrong (reported)
    plan = Schedule.model_validate(schedule)
    # One step per epoch: both counts are in the same unit, so the unit itself does not matter.
    if len(plan.points(target if target is not None else 0.5, total, 1)) >= 2:
        return
    period = schedule.get(f"every_{period_unit}", 1)
    where = g.every.span if g.every is not None else g.over.span
    if g.every is None:
        why = (
            f"over {_text(g.over)} with one update per epoch (the default) the sparsity jumps "
            "to its target at the start: nothing is ramped"
        )
        fix = "update within the epoch (`every 100 steps`) or train longer (`over 2 epochs`)"
    else:
        why = (
            f"updating every {_text(g.every)} over {_text(g.over)} leaves no update after the "
            "first: nothing is ramped"
        )
        unit = DURATION_UNITS[g.over.unit.value]
        often = f"every {_count(total // 2, unit)}" if total >= 2 else "every 100 steps"
        fix = f"update more often (`{often}`) or train longer (`over {_count(2 * period, unit)}`)"
    st.report(
        error(
            "KDR106",
            f"the gradual schedule does not fit its duration: {why}",
            where,
            _help(fix),
        )
    )
