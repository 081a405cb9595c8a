"""``replace convs [in SCOPES] [except SCOPES] with depthwise_separable|ghost|group(G)``."""

from __future__ import annotations

from typing import Any

from compiler.lower import clauses
from compiler.lower.base import LowerState
from compiler.ops import OpParams, ReplaceGroupParams, ReplaceParams
from compiler.program import Step
from compiler.values import unknown
from compiler.vocab import REPLACEMENTS, StageTraits
from recipe_lang import ast
from recipe_lang.diagnostics import error

KIND = "replace"
TRAITS = StageTraits(mutates=True, graph=True)


def lower(st: LowerState, s: ast.ReplaceStage, step: Step) -> None:
    if s.target.value != "convs":
        st.report(unknown("KDR103", "replace target", s.target.value, s.target.span, ["convs"]))
    params: dict[str, Any] = {
        "include": clauses.scopes(s.include),
        "exclude": clauses.scopes(s.exclude),
    }
    r = s.replacement
    kind = r.value if isinstance(r, ast.Ident) else r.callee
    if kind not in REPLACEMENTS:
        st.report(unknown("KDR103", "replacement", kind, r.span, REPLACEMENTS))
        step.broken = True
    elif kind == "group":
        if isinstance(r, ast.Call) and len(r.args) == 1 and not r.kwargs:
            params["groups"] = st.values.count(r.args[0], "the number of groups", minimum=2)
        else:
            st.report(error("KDR104", "`group` needs its number of groups: `group(4)`", r.span))
    elif isinstance(r, ast.Call):
        st.report(error("KDR104", f"`{kind}` takes no arguments", r.span))
    params["kind"] = kind
    step.params = params


def expand(step: Step) -> list[tuple[str, OpParams]]:
    kind = step.params["kind"]
    p = {k: v for k, v in step.params.items() if k != "kind"}
    model = ReplaceGroupParams if kind == "group" else ReplaceParams
    return [(f"replace.{kind}", model.model_validate(p))]
