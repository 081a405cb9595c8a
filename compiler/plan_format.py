"""Readable forms of a plan: a text table (``--format text``) and Graphviz (``--format dot``)."""

from __future__ import annotations

import json
from typing import Any

from compiler.ops import OpParams
from compiler.plan import Plan

#: Parameters worth a column in the text table, per op prefix; the rest stay in the JSON.
_KEY_PARAMS = (
    "epochs",
    "steps",
    "ratio",
    "pattern",
    "start",
    "every_steps",
    "every_epochs",
    "curve",
    "budget",
    "criterion",
    "ranking",
    "distill",
    "mode",
    "granularity",
    "batches",
    "groups",
    "format",
    "path",
    "name",
    "cutmix",
    "mixup",
    "label_smoothing",
    "lr",
    "optimizer",
    "schedule",
    "warmup",
    "weight_decay",
    "clip_grad",
    "ema",
    "keep_best",
    "include",
    "exclude",
)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    if isinstance(value, dict) and "teacher" in value:
        return f"{value['teacher']} T={value['temperature']:g} a={value['alpha']:g}"
    if isinstance(value, dict) and set(value) == {"n", "m"}:
        return f"{value['n']}:{value['m']}"
    if isinstance(value, dict) and "name" in value:  # an optimizer or a schedule, as a call
        args = [f"{k}={_short(v)}" for k, v in value.items() if k != "name"]
        return f"{value['name']}({','.join(args)})" if args else str(value["name"])
    if isinstance(value, dict) and len(value) == 1 and set(value) <= {"epochs", "steps"}:
        ((unit, n),) = value.items()  # a warmup
        return f"{n}{unit}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _summary(model: OpParams) -> str:
    params = model.model_dump(mode="json")
    # A gradual prune: its cut, its sparsity schedule and its training in one row (the
    # training's own `schedule` is its learning-rate schedule).
    if "cut" in params:
        for part in ("cut", "schedule", "training"):
            params.update(params.pop(part, None) or {})
    parts = []
    for key in _KEY_PARAMS:
        value = params.get(key)
        if value in (None, [], 0.0) and key not in ("ratio",):
            continue
        if value is None:
            continue
        parts.append(f"{key}={_short(value)}")
    return " ".join(parts)


def plan_to_text(plan: Plan) -> str:
    rows = [("id", "op", "subject", "parameters", "line")]
    for p in plan.passes:
        line = str(p.span.line) if p.span else ""
        rows.append((p.id, p.op, p.subject, _summary(p.params), line))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"plan {plan.recipe} ({plan.source.path}) hash {plan.hash[:12]}"]
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, r[4]]).rstrip())
    if plan.placeholders or plan.data is None:
        unbound = [*plan.placeholders, *(["data"] if plan.data is None else [])]
        lines.append("bound at run time: " + ", ".join(unbound))
    return "\n".join(lines) + "\n"


def plan_to_dot(plan: Plan) -> str:
    lines = [
        f'digraph "{plan.recipe}" {{',
        "  rankdir=TB;",
        '  node [shape=box, fontname="monospace"];',
    ]
    for p in plan.passes:
        label = f"{p.op}\\n{p.subject}"
        summary = _summary(p.params)
        if summary:
            label += "\\n" + summary.replace('"', "'")
        lines.append(f'  "{p.id}" [label="{label}"];')
    for p in plan.passes:
        for d in p.depends_on:
            lines.append(f'  "{d}" -> "{p.id}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
