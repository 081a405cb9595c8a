"""A training clause's ``with`` modifiers (other than ``distill from``), and whether its
learning-rate schedule fits its duration.

``lr X``, ``label_smoothing X``, ``mixup X``, ``cutmix X``, ``weight_decay X``, ``clip_grad X``,
``ema X``; ``warmup N epochs|steps``; ``optimizer sgd(...)`` / ``optimizer adamw``;
``schedule multistep(...)`` / ``schedule cosine``; ``keep best [by accuracy|loss]``. Each fills
its :class:`compiler.params.TrainingParams` field. The grammar reads any ``NAME value``,
``NAME value unit``, ``NAME call`` and ``NAME word [by word]``: which modifier takes which
form is checked here, so a misspelt modifier gets "did you mean" (KDR103).
"""

from __future__ import annotations

import math
from typing import Any

from compiler.lower.base import LowerState
from compiler.optim_values import optimizer_spec, schedule_spec
from compiler.values import did_you_mean, unknown
from compiler.vocab import DURATION_UNITS, KEEP_BEST_BY, MODIFIERS
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error, warning

#: Numeric modifiers: (low, high, low_open, high_open).
NUMERIC: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "label_smoothing": (0, 1, False, True),
    "mixup": (0, None, True, False),
    "cutmix": (0, None, True, False),
    "lr": (0, None, True, False),
    "weight_decay": (0, None, False, False),
    "clip_grad": (0, None, True, False),
    "ema": (0, 1, True, True),
}
#: How each modifier is written, for the help of one written the wrong way.
FORMS: dict[str, str] = {
    **{k: f"{k} 0.1" for k in NUMERIC},
    "ema": "ema 0.999",
    "clip_grad": "clip_grad 1.0",
    "weight_decay": "weight_decay 0.0005",
    "lr": "lr 0.01",
    "warmup": "warmup 2 epochs` or `warmup 500 steps",
    "optimizer": "optimizer sgd(lr=0.01, momentum=0.9)` or `optimizer adamw",
    "schedule": "schedule multistep(milestones=[2], gamma=0.1)` or `schedule cosine",
    "keep": "keep best` or `keep best by loss",
}


def _help(message: str) -> Note:
    return Note(kind="help", message=message)


def _wrong_form(st: LowerState, key: str, span: Span, what: str) -> None:
    st.report(error("KDR104", f"`{key}` takes {what}", span, _help(f"write `{FORMS[key]}`")))


def modifier(st: LowerState, m: ast.Modifier, out: dict[str, Any]) -> None:
    """Check one modifier and set its field of ``out`` (the training's params)."""
    assert not isinstance(m, ast.DistillModifier)
    key = m.name.value
    if key not in MODIFIERS:
        st.report(unknown("KDR103", "modifier", key, m.name.span, MODIFIERS))
        return
    if isinstance(m, ast.ValueModifier):
        _value(st, m, out)
    elif isinstance(m, ast.CallModifier):
        _call(st, m, out)
    else:
        _word(st, m, out)


def _value(st: LowerState, m: ast.ValueModifier, out: dict[str, Any]) -> None:
    key = m.name.value
    if key in ("optimizer", "schedule") and isinstance(m.value, ast.Ref) and m.unit is None:
        _spec(st, key, m.value, out)  # `schedule $sched`
        return
    if key == "warmup":
        _warmup(st, m, out)
        return
    if key not in NUMERIC:
        what = "`best`, not a number" if key == "keep" else "a name or a call, not a number"
        _wrong_form(st, key, m.value.span, what)
        return
    if m.unit is not None:
        st.report(
            error(
                "KDR103",
                f"`{key}` takes a number, not a unit: `{m.unit.value}` does not belong here",
                m.unit.span,
                _help(f"write `{FORMS[key]}`"),
            )
        )
        return
    low, high, low_open, high_open = NUMERIC[key]
    x = st.values.number(m.value, key, low=low, high=high, low_open=low_open, high_open=high_open)
    if x is not None:
        out[key] = x


def _warmup(st: LowerState, m: ast.ValueModifier, out: dict[str, Any]) -> None:
    if m.unit is None:
        st.report(
            error(
                "KDR104",
                "a warmup needs a unit: epochs or steps",
                m.span,
                _help(f"write `{FORMS['warmup']}`"),
            )
        )
        return
    unit = DURATION_UNITS.get(m.unit.value)
    if unit is None:
        st.report(
            error(
                "KDR104",
                f"`{m.unit.value}` is not a warmup unit",
                m.unit.span,
                _help("write `epochs` or `steps`"),
            )
        )
        return
    n = st.values.count(m.value, f"the warmup's {unit}")
    if n is not None:
        out["warmup"] = {unit: n}


def _call(st: LowerState, m: ast.CallModifier, out: dict[str, Any]) -> None:
    key = m.name.value
    if key not in ("optimizer", "schedule"):
        what = {"keep": "`best`", "warmup": "a count and a unit"}.get(key, "a number")
        _wrong_form(st, key, m.call.span, f"{what}, not a call")
        return
    _spec(st, key, m.call, out)


def _spec(st: LowerState, key: str, v: ast.Value, out: dict[str, Any]) -> None:
    spec = optimizer_spec(v, st.values) if key == "optimizer" else schedule_spec(v, st.values)
    if spec is not None:
        out[key] = spec


def _word(st: LowerState, m: ast.WordModifier, out: dict[str, Any]) -> None:
    key = m.name.value
    if key == "keep":
        _keep(st, m, out)
        return
    if key not in ("optimizer", "schedule"):
        what = "a number" if key in NUMERIC else "a count and a unit"
        _wrong_form(st, key, m.word.span, f"{what}, not a word")
        return
    if m.by is not None:
        st.report(
            error(
                "KDR103",
                f"`by` does not apply to `{key}`: it follows `keep best`",
                m.by.span,
                _help(f"write `{FORMS[key]}`"),
            )
        )
        return
    _spec(st, key, ast.Name(span=m.word.span, value=m.word.value), out)


def _keep(st: LowerState, m: ast.WordModifier, out: dict[str, Any]) -> None:
    if m.word.value != "best":
        st.report(
            error(
                "KDR103",
                f"`keep` is followed by `best`, not `{m.word.value}`",
                m.word.span,
                _help(f"write `{FORMS['keep']}`"),
            )
        )
        return
    by = "accuracy"
    if m.by is not None:
        if m.by.value not in KEEP_BEST_BY:
            choices = " or ".join(f"`{w}`" for w in KEEP_BEST_BY)
            notes = [n for n in (did_you_mean(m.by.value, KEEP_BEST_BY),) if n]
            st.report(
                error(
                    "KDR103",
                    f"`keep best by` compares {choices}, not `{m.by.value}`",
                    m.by.span,
                    *notes,
                )
            )
            return
        by = m.by.value
    data = st.decls.data
    if data is not None and "val" not in (data.get("kwargs") or {}):
        notes = [Note(message="the data is declared here", span=st.decls.data_span)]
        if st.decls.data_span is None:
            notes = [Note(message="the data is bound with --data")]
        st.report(
            error(
                "KDR208",
                "`keep best` compares epochs on a validation split, and the data has none",
                m.span,
                *notes,
                _help(
                    "carve one from the training data: `data = mnist10k(val=1000)` "
                    '(or `imagefolder("train", eval="test", val="val")`)'
                ),
            )
        )
        return
    out["keep_best"] = by


# ---- does the schedule fit the training? ------------------------------------------------------
def _count(n: int, unit: str) -> str:
    return f"{n} {unit if n != 1 else unit[:-1]}"


def _this(total: int, unit: str) -> str:
    """``this 3-epoch training``."""
    return f"this {total}-{unit[:-1]} training"


def _problems(schedule: dict[str, Any], total: int, unit: str) -> list[tuple[str, str, str]]:
    """(argument, why, fix) for each length of ``schedule`` that does not fit ``total``."""
    training = _this(total, unit)
    out: list[tuple[str, str, str]] = []
    name = schedule.get("name")
    if name == "step" and schedule["step_size"] >= total:
        n = schedule["step_size"]
        out.append(
            (
                "step_size",
                f"`step_size={n}` never steps within {training}: the learning rate stays constant",
                f"step more often (`step_size={max(total // 2, 1)}`) or train longer",
            )
        )
    if name == "multistep":
        late = [m for m in schedule["milestones"] if m >= total]
        if late:
            out.append(
                (
                    "milestones",
                    f"milestone {late[0]} is not within {training}: it never decays the "
                    "learning rate",
                    f"keep the milestones below {total} (they count {unit} from the training's "
                    "start)"
                    if total > 1
                    else f"a milestone needs a training longer than {_count(total, unit)}",
                )
            )
    if name == "cosine_restarts" and schedule["period"] >= total:
        n = schedule["period"]
        out.append(
            (
                "period",
                f"`period={n}` does not end within {training}: nothing restarts",
                f"use a shorter period (`period={max(total // 2, 1)}`) or `cosine`",
            )
        )
    return out


def check_fit(
    st: LowerState,
    length: dict[str, int],
    out: dict[str, Any],
    mods: list[ast.Modifier],
    where: Span,
) -> None:
    """KDR107 when a training's own schedule or warmup does not fit its duration, KDR108
    (a warning) when the recipe's (``set schedule``) does not. A warmup in other units than
    the duration is checked at run time, with the data's steps per epoch."""
    ((unit, total),) = length.items()
    spans = {m.name.value: m.span for m in mods if not isinstance(m, ast.DistillModifier)}
    slow = ema_misfit(out["ema"], total) if unit == "steps" and "ema" in out else None
    if slow is not None:  # in epochs the preflight checks it, with the data's steps per epoch
        st.report(slow.model_copy(update={"span": spans.get("ema") or where}))
    own = out.get("schedule")
    schedule = own if own is not None else st.decls.settings.get("schedule") or {}
    recipe_span = st.decls.setting_spans.get("schedule")
    for _, why, fix in _problems(schedule, total, unit):
        _report(st, own is not None, spans.get("schedule"), where, recipe_span, why, fix)
    warmup = out.get("warmup") or schedule.get("warmup")
    if warmup is None or unit not in warmup or warmup[unit] < total:
        return
    n = warmup[unit]
    why = (
        f"a warmup of {_count(n, unit)} is not shorter than {_this(total, unit)}: the learning "
        "rate never reaches its peak"
    )
    shorter = f"warmup {_count(total // 4, unit)}" if total >= 4 else "warmup 100 steps"
    if unit == "steps" and total < 4:
        shorter = ""
    fix = f"warm up for less (`{shorter}`) or train longer" if shorter else "train longer"
    mine = out.get("warmup") is not None or own is not None
    at = spans.get("warmup") or spans.get("schedule")
    _report(st, mine, at, where, recipe_span, why, fix)


def _report(
    st: LowerState,
    mine: bool,
    at: Span | None,
    where: Span,
    recipe_span: Span | None,
    why: str,
    fix: str,
) -> None:
    if mine:
        st.report(
            error(
                "KDR107",
                f"the learning-rate schedule does not fit its training: {why}",
                at or where,
                _help(fix),
            )
        )
        return
    notes = [Note(message="the recipe's schedule is set here", span=recipe_span)]
    st.report(
        warning(
            "KDR108",
            f"the recipe's learning-rate schedule does not fit this training: {why}",
            where,
            *(notes if recipe_span is not None else []),
            _help(f"{fix}; or give this training its own: `with schedule cosine`"),
        )
    )


def warmup_misfit(own: bool, warmup_steps: int, total_steps: int) -> Diagnostic:
    """The run-time form of the check above, in steps (the preflight knows the data's steps per
    epoch): KDR107 for a training's own warmup, KDR108 (a warning) for the recipe's."""
    why = (
        f"a warmup of {_count(warmup_steps, 'steps')} is not shorter than this training "
        f"({_count(total_steps, 'steps')} with this data): the learning rate never reaches its peak"
    )
    fix = f"warm up for less (`warmup {max(total_steps // 4, 1)} steps`) or train longer"
    if own:
        return error(
            "KDR107",
            f"the learning-rate schedule does not fit its training: {why}",
            None,
            _help(fix),
        )
    return warning(
        "KDR108",
        f"the recipe's learning-rate schedule does not fit this training: {why}",
        None,
        _help(f"{fix}; or give this training its own: `with schedule cosine`"),
    )


#: ``ema X`` is too slow for its training when the starting weights still weigh more than this
#: in the average at its end (X ** steps).
EMA_START_WEIGHT = 0.1


def ema_misfit(decay: float, total_steps: int) -> Diagnostic | None:
    """KDR109 (a warning): after ``total_steps`` updates the weights a training started from
    still make up ``decay ** total_steps`` of its ``ema`` result; more than a tenth, and the
    result is mostly the untrained weights. None when the average has time to move."""
    left = decay**total_steps
    if left <= EMA_START_WEIGHT:
        return None
    horizon = round(1 / (1 - decay))
    fits = math.floor(EMA_START_WEIGHT ** (1 / total_steps) * 1000) / 1000
    return warning(
        "KDR109",
        f"`ema {decay:g}` averages over about {horizon} steps and this training has "
        f"{total_steps}: {left:.0%} of its result would still be the weights it started from",
        None,
        _help(f"use a smaller decay (`ema {fits:g}` or less) or train longer"),
    )
