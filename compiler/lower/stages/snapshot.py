"""``snapshot [M] as NAME``: a frozen copy of M, usable as a teacher."""

from __future__ import annotations

from compiler.lower.base import LowerState
from compiler.ops import OpParams, SnapshotParams
from compiler.program import ModelSpec, Step
from compiler.vocab import StageTraits
from recipe_lang import ast

KIND = "snapshot"
TRAITS = StageTraits(mutates=False, after_int8=True, copies=True)


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
