"""Names in stages: subjects, teachers (declared, zoo, inline, ensembles), snapshots."""

from __future__ import annotations

from compiler.declarations import check_ensemble
from compiler.lower.base import LowerState
from compiler.program import ModelSpec, Step
from compiler.values import did_you_mean, unknown
from compiler.vocab import StageTraits
from compiler.zoo import ZOO, is_model_constructor, is_zoo_name
from recipe_lang import ast
from recipe_lang.diagnostics import Note, error
from recipe_lang.printer import call as call_text


def _frozen_help(frozen_kinds: tuple[str, ...]) -> Note:
    allowed = " and ".join(f"`{k}`" for k in frozen_kinds)
    return Note(kind="help", message=f"only {allowed} act on a snapshot; use it as a teacher")


def placeholder(st: LowerState, name: str) -> str:
    """A model left to bind at run time (``--student``)."""
    if name not in st.models:
        st.models[name] = ModelSpec(name=name, kind="placeholder", span=None)
    return name


def subject(
    st: LowerState, s: ast.Stage, step: Step, traits: StageTraits, frozen_kinds: tuple[str, ...]
) -> str:
    """The stage's subject model (``student`` by default), checked against what it may be."""
    name = s.subject.value if s.subject else "student"
    span = s.subject.span if s.subject else s.span
    on_frozen = traits.on_frozen
    if name in st.snapshots:
        if not on_frozen:
            st.report(
                error(
                    "KDR104",
                    f"`{name}` is a snapshot, a frozen copy: `{s.kind}` cannot change it",
                    span,
                    _frozen_help(frozen_kinds),
                )
            )
            step.broken = True
        return name
    spec = st.models.get(name)
    if spec is None:
        if name == "student":
            return placeholder(st, name)
        notes = [n for n in (did_you_mean(name, [*st.models, *st.snapshots]),) if n]
        if name in st.future_snapshots:
            notes = [
                Note(message=f"snapshot `{name}` is taken later", span=st.future_snapshots[name])
            ]
        st.report(error("KDR100", f"unknown model `{name}`", span, *notes))
        step.broken = True
        return name
    if spec.kind == "ensemble" and not on_frozen:
        st.report(
            error(
                "KDR104",
                f"`{name}` is an ensemble; `{s.kind}` acts on one model",
                span,
                Note(kind="help", message="apply the stage to its members"),
            )
        )
        step.broken = True
    return name


def teacher(st: LowerState, t: ast.Teacher, step: Step) -> str | None:
    """The model name a teacher refers to, creating inline and zoo teachers on first use."""
    if not isinstance(t, ast.TeacherName):
        return _inline_teacher(st, t)
    name = t.name
    if name in st.snapshots or name in st.models:
        return name
    if name in st.future_snapshots:
        st.report(
            error(
                "KDR100",
                f"snapshot `{name}` is used before it is taken",
                t.span,
                Note(message="it is taken here", span=st.future_snapshots[name]),
            )
        )
        return None
    if is_zoo_name(name):  # a bare zoo name: the zoo model with its default weights
        st.models[name] = ModelSpec(
            name=name,
            kind="constructor",
            span=t.span,
            constructor=name,
            pretrained=True,
            inline=True,
        )
        return name
    if name == "student":
        return placeholder(st, name)
    candidates = [*st.models, *st.snapshots, *ZOO]
    notes = [n for n in (did_you_mean(name, candidates),) if n]
    st.report(error("KDR100", f"unknown teacher `{name}`", t.span, *notes))
    return None


def _inline_teacher(st: LowerState, call: ast.Call) -> str | None:
    name = call_text(call)
    if name in st.models:
        return name
    if not call.factory and call.callee == "ensemble":
        spec = ModelSpec(name=name, kind="ensemble", span=call.span, inline=True)
        check_ensemble(call, spec, st.models, set(st.decls.params), st.report)
        st.models[name] = spec
        return name
    if not call.factory and not is_model_constructor(call.callee):
        st.report(
            unknown(
                "KDR100", "teacher constructor", call.callee, call.span, ZOO, list_choices=False
            )
        )
        return None
    literal = st.values.literal(call)
    st.models[name] = ModelSpec(
        name=name,
        kind="factory" if call.factory else "constructor",
        span=call.span,
        constructor=call.callee,
        args=literal["args"],
        kwargs=literal["kwargs"],
        inline=True,
    )
    return name
