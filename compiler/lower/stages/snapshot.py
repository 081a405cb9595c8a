"""``snapshot [M] as NAME``: a frozen copy of M, usable as a teacher."""

from __future__ import annotations

from compiler.lower.base import LowerState
from compiler.ops import OpParams, SnapshotParams
from compiler.program import ModelSpec, Step
from compiler.vocab import StageTraits
from recipe_lang import ast
from recipe_lang.diagnostics import Note, error

KIND = "snapshot"
TRAITS = StageTraits(mutates=False, after_int8=True, copies=True)


def declare(st: LowerState, s: ast.SnapshotStage) -> None:
    """Before any stage is lowered: every snapshot the pipeline takes, wherever it is taken (a
    use before the snapshot gets "taken later"), with KDR101 for clashes."""
    name = s.name.value
    if name in st.models:
        st.report(
            error(
                "KDR101",
                f"snapshot `{name}` has the name of a model",
                s.name.span,
                Note(message="the model is declared here", span=st.models[name].span),
            )
        )
    elif name in st.future_snapshots:
        st.report(
            error(
                "KDR101",
                f"snapshot `{name}` is taken twice",
                s.name.span,
                Note(message="first taken here", span=st.future_snapshots[name]),
            )
        )
    else:
        st.future_snapshots[name] = s.name.span


def lower(st: LowerState, s: ast.SnapshotStage, step: Step) -> None:
    name = s.name.value
    step.params = {"name": name}
    if name not in st.models:
        st.snapshots.setdefault(name, s.name.span)
        st.models[name] = ModelSpec(
            name=name, kind="snapshot", span=s.name.span, source=step.subject
        )


def expand(step: Step) -> list[tuple[str, OpParams]]:
    return [("snapshot", SnapshotParams(name=step.params["name"]))]
