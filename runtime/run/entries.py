"""The report's entry for each pass: stable metric fields first, then whatever the pass adds."""

from __future__ import annotations

from typing import Any

from runtime.metrics import MEASURED_KEYS

#: The stable fields of every stage entry in ``report.json`` (the spec's names).
METRIC_KEYS = ("accuracy", "params", "macs", "size_bytes", "latency_ms_b1", "latency_ms_b32")
#: Fields a later read-only pass reuses rather than measuring an unchanged model again.
REUSED_KEYS = MEASURED_KEYS


def entry(
    pass_id: str,
    op: str,
    model: str,
    wall: float,
    metrics: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {"pass_id": pass_id, "op": op, "model": model}
    out.update({k: metrics.get(k) for k in METRIC_KEYS})
    out["wall_s"] = round(wall, 3)
    out.update({k: v for k, v in metrics.items() if k not in METRIC_KEYS})
    out.update(extra)
    return out


def last_metrics(stages: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The latest measured figures of ``model``, or None if it was never measured."""
    for e in reversed(stages):
        if e["model"] == model:
            return {k: e.get(k) for k in REUSED_KEYS}
    return None
