"""Parts shared by several stage kinds: durations, training clauses, modifiers, option words."""

from __future__ import annotations

from typing import Any

from compiler.lower import modifiers, names
from compiler.lower.base import LowerState
from compiler.program import Step, TeacherRef
from compiler.values import unknown
from compiler.vocab import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DURATION_UNITS
from recipe_lang import ast
from recipe_lang.diagnostics import Note, Span, error


def duration(st: LowerState, d: ast.Duration) -> dict[str, int] | None:
    unit = DURATION_UNITS.get(d.unit.value)
    if unit is None:
        st.report(
            error(
                "KDR104",
                f"`{d.unit.value}` is not a duration unit",
                d.unit.span,
                Note(kind="help", message="write `epochs` or `steps`"),
            )
        )
        return None
    n = st.values.count(d.count, f"the number of {unit}")
    return None if n is None else {unit: n}


def teacher_ref(
    st: LowerState, t: ast.Teacher, step: Step, options: list[ast.Option]
) -> TeacherRef | None:
    """A teacher with its options checked, or None (reported) when the name is unknown."""
    name = names.teacher(st, t, step)
    if name is None:
        return None
    finetune_pretrained(st, name, t.span)
    ref = TeacherRef(name=name, span=t.span, temperature=DEFAULT_TEMPERATURE, alpha=DEFAULT_ALPHA)
    teacher_options(st, options, ref)
    return ref


def finetune_pretrained(st: LowerState, name: str, span: Span) -> None:
    """Plan ``finetune NAME for N epochs`` (``set teacher_finetune = N``, default 1) before a
    pretrained zoo teacher first teaches, unless a stage trained it already: its classifier is
    re-initialised for the data's classes at run time, so it must learn them first."""
    spec = st.models.get(name)
    epochs = int(st.decls.settings.get("teacher_finetune", 0))
    if spec is None or not spec.pretrained_elsewhere or name in st.trained or epochs == 0:
        return
    count = ast.Number(span=span, value=float(epochs), text=str(epochs))
    node = ast.TrainStage(
        span=span,
        verb="finetune",
        subject=ast.Ident(span=span, value=name),
        duration=ast.Duration(span=span, count=count, unit=ast.Ident(span=span, value="epochs")),
    )
    step = Step(index=len(st.steps), kind="train", subject=name, span=span, node=node)
    step.params = {"verb": "finetune"}
    step.training = training(st, step, node.duration, [], check_fit=False)
    step.training_span = span
    st.steps.append(step)
    st.trained.add(name)


def teacher_options(st: LowerState, options: list[ast.Option], ref: TeacherRef) -> None:
    seen: set[str] = set()
    for o in options:
        key = o.name.value
        if key in seen:
            st.report(error("KDR101", f"`{key}` is given twice", o.name.span))
            continue
        seen.add(key)
        if key == "temperature":
            t = st.values.number(o.value, "temperature", low=0, low_open=True)
            if t is not None:
                ref.temperature = t
        elif key == "alpha":
            a = st.values.number(o.value, "alpha", low=0, high=1)
            if a is not None:
                ref.alpha = a
        else:
            st.report(
                unknown("KDR103", "distillation option", key, o.name.span, ["temperature", "alpha"])
            )
        ref.options_span = (
            o.span if ref.options_span is None else Span.cover(ref.options_span, o.span)
        )


def training(
    st: LowerState,
    step: Step,
    dur: ast.Duration | None,
    mods: list[ast.Modifier],
    default_epochs: int | None = None,
    teacher: TeacherRef | None = None,
    *,
    check_fit: bool = True,
) -> dict[str, Any]:
    """The training phase of a stage: duration, modifiers, and its teacher if any.

    ``check_fit``: check that the schedule and warmup it runs with fit its duration (KDR107 for
    its own, KDR108 for the recipe's)."""
    out: dict[str, Any] = {
        "label_smoothing": 0.0,
        "mixup": None,
        "cutmix": None,
        "lr": None,
        "distill": None,
    }
    length: dict[str, int] | None
    if dur is not None:
        length = duration(st, dur)
        out.update(length or {"epochs": 1})
    else:
        length = {"epochs": default_epochs or 1}
        out.update(length)
    seen: dict[str, Span] = {}
    for m in mods:
        key = "distill" if isinstance(m, ast.DistillModifier) else m.name.value
        if key in seen:
            st.report(
                error(
                    "KDR101",
                    f"modifier `{key}` is given twice",
                    m.span,
                    Note(message="first given here", span=seen[key]),
                )
            )
            continue
        seen[key] = m.span
        if isinstance(m, ast.DistillModifier):
            if teacher is not None:
                st.report(
                    error(
                        "KDR103",
                        "`with distill` on a `distill` stage",
                        m.span,
                        Note(
                            kind="help",
                            message="the stage already has a teacher: `distill M from T`",
                        ),
                    )
                )
                continue
            teacher = teacher_ref(st, m.teacher, step, m.options)
            continue
        modifiers.modifier(st, m, out)
    if teacher is not None:
        step.teacher = teacher
        out["distill"] = {
            "teacher": teacher.name,
            "temperature": teacher.temperature,
            "alpha": teacher.alpha,
        }
    if check_fit and length is not None:
        modifiers.check_fit(st, length, out, mods, dur.span if dur is not None else step.span)
    return out


def recovery(
    st: LowerState, step: Step, dur: ast.Duration | None, mods: list[ast.Modifier]
) -> None:
    """The ``with MODS for N epochs`` clause of a prune or quantize stage."""
    if dur is not None:
        step.training = training(st, step, dur, mods)
        step.training_span = Span.cover(mods[0].span, dur.span) if mods else dur.span


def scopes(scopes: list[ast.Scope]) -> list[str]:
    return [s.pattern for s in scopes]


def words(
    st: LowerState,
    given_words: list[ast.Ident],
    table: dict[str, str],
    what: str,
    defaults: dict[str, str],
) -> dict[str, str]:
    """Bare option words (``channels``, ``global``, ``qat``...) into their slots."""
    out = dict(defaults)
    given: dict[str, ast.Ident] = {}
    for w in given_words:
        slot = table.get(w.value)
        if slot is None:
            st.report(unknown("KDR103", f"{what} option", w.value, w.span, table))
            continue
        if slot in given:
            st.report(
                error(
                    "KDR103",
                    f"`{w.value}` conflicts with `{given[slot].value}`: one {slot} per stage",
                    w.span,
                )
            )
            continue
        given[slot] = w
        out[slot] = w.value
    return out
