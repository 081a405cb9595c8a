"""The zoo's summary figures and kdr's reasons, computed from the rows alone (no torch).

A tool *works* on a model when its pruned model runs forward with the dense output shape; the
params counts (``<= 0.35``, ``<= 0.40`` of the dense model) are over working models only, since
a smaller model that no longer runs is no result. *Broken* is the opposite: the tool returned a
pruned model whose forward fails. A kdr refusal (``declined``, a diagnostic) is neither: kdr
said it would not prune, which is the promised behaviour for what it does not understand.

Reasons are grouped by kind (:func:`reason_kind`): node and module names are replaced by ``…``
so that "`add_3` (call_function add) is not understood" on two models counts as one reason.

>>> reason_kind("`chunk_1` (call_method chunk) is not understood")
'`…` (call_method chunk) is not understood'
>>> reason_kind("parameters shared by ['a.b', 'c']")
'parameters shared by […]'
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

THRESHOLDS = (0.35, 0.40)
TOOLS = ("kdr", "tp")
_NAME = re.compile(r"`[^`]*`")
_LIST = re.compile(r"\[[^\]]*\]")
QUOTED = "blocked because: "
#: where a KDR500 failed to trace (`` (ClassName) at `line` (file)...``): one kind for all
_WHERE = re.compile(r" \(\w+\) at `.*", re.S)
#: the reason every model gives (kdr never prunes a classifier's outputs)
ALWAYS = "model output"


def reason_kind(reason: str) -> str:
    """A reason without the names of the nodes and modules it is about."""
    return _LIST.sub("[…]", _NAME.sub("`…`", reason)).strip()


def tally(found: list[str]) -> dict[str, int]:
    """``{kind: how many groups}``, most frequent first."""
    return dict(Counter(reason_kind(r) for r in found).most_common())


def works(cell: dict[str, Any]) -> bool:
    return cell.get("status") == "pruned" and cell.get("forward") is True


def broken(cell: dict[str, Any]) -> bool:
    return cell.get("status") == "pruned" and cell.get("forward") is not True


def model_reasons(cell: dict[str, Any]) -> list[str]:
    """The reason kinds one model contributes (each once): the blocks and kept-whole layers of
    a prune, the blocks a refusal quotes (KDR502 "blocked because: a; b; c"), or the error
    that stopped it. The classifier's outputs, kept on every model, are no finding."""
    if cell.get("status") == "pruned":
        kinds = set(cell.get("blocked", {})) | set(cell.get("kept_whole", {}))
    elif not cell.get("error"):
        return []
    else:
        head, sep, quoted = str(cell["error"]).partition(QUOTED)
        parts = quoted.removesuffix("...").removesuffix(")").split("; ") if sep else [head]
        kinds = {reason_kind(_WHERE.sub("", p)) for p in parts if p.strip()}
    return sorted(k for k in kinds if not k.startswith(ALWAYS))


def tool_summary(rows: list[dict[str, Any]], tool: str) -> dict[str, Any]:
    cells = [r[tool] for r in rows]
    ok = [c for c in cells if works(c)]
    out: dict[str, Any] = {
        "pruned": sum(c.get("status") == "pruned" for c in cells),
        "works": len(ok),
        "broken": sum(broken(c) for c in cells),
        "declined": sum(c.get("status") == "declined" for c in cells),
        "errors": sum(c.get("status") not in ("pruned", "declined") for c in cells),
        "train_step_fails": sum(c.get("train_step") is not True for c in ok),
    }
    for t in THRESHOLDS:
        out[f"params_le_{t:.2f}"] = sum(c["params_ratio"] <= t for c in ok)
    if tool == "kdr":
        out["replay_fails"] = sum(c.get("replay") is not True for c in ok)
    return out


def top_reasons(rows: list[dict[str, Any]], n: int = 12) -> list[dict[str, Any]]:
    """kdr's reasons by how many models they concern, with up to three of those models."""
    where: dict[str, list[str]] = {}
    for r in rows:
        for kind in model_reasons(r["kdr"]):
            where.setdefault(kind, []).append(r["name"])
    ranked = sorted(where.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:n]
    return [{"reason": k, "models": len(v), "examples": v[:3]} for k, v in ranked]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "models": len(rows),
        **{tool: tool_summary(rows, tool) for tool in TOOLS},
        "top_kdr_reasons": top_reasons(rows),
    }


__all__ = ["QUOTED", "THRESHOLDS", "broken", "reason_kind", "summarize", "tally", "works"]
