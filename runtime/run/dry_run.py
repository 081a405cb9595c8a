"""``kdr check --models``: the preflight, then a dry run of the plan's graph passes on copies.

No training: every graph pass runs on a deep copy of the model as the plan would leave it, so
KDR500-KDR504 surface before any training, with estimates of params and MACs per pass. A prune
that falls short of its ratio warns (KDR506, with the main reasons channels are blocked), and
each block a pass keeps whole because torch.fx cannot trace it gets a note (KDR508).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compiler.ops import (
    CalibrateParams,
    ExportParams,
    OpParams,
    PruneChannelsGradualParams,
    PruneWeightsGradualParams,
)
from compiler.plan import Plan
from recipe_lang.diagnostics import Diagnostic, KdrError, Note, note, warning
from runtime.data import DataBundle
from runtime.metrics import count_macs, count_params
from runtime.modelstore import ModelStore
from runtime.run.inputs import load_data
from runtime.run.preflight import preflight, with_span


@dataclass
class Estimate:
    pass_id: str
    op: str
    model: str
    params: int | None
    macs: int | None


@dataclass
class ModelCheckReport:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)

    def table(self) -> str:
        rows = [("pass", "op", "model", "params", "MACs")]
        for e in self.estimates:
            rows.append((e.pass_id, e.op, e.model, _n(e.params), _n(e.macs)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join(
            "  ".join(r[i].rjust(widths[i]) if i >= 3 else r[i].ljust(widths[i]) for i in range(5))
            for r in rows
        )


def _n(x: int | None) -> str:
    if x is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= size:
            return f"{x / size:.2f}{unit}"
    return str(x)


def dry_run(plan: Plan, data: DataBundle, store: ModelStore) -> ModelCheckReport:
    """Apply the plan's graph passes to copies, without training, estimating params/MACs."""
    from runtime.passes import PassContext, run_pass

    report = ModelCheckReport()
    shape = (data.in_channels, data.image_size, data.image_size)
    example = data.example_batch(8)
    models: dict[str, nn.Module] = {}

    def current(name: str) -> nn.Module | None:
        if name not in models:
            live = store.models.get(name)
            if live is None:
                return None
            models[name] = copy.deepcopy(live).cpu()
        return models[name]

    noted: set[tuple[str, str]] = set()  # (model, module) kept whole, already noted
    for name in store.models:
        model = current(name)
        if model is not None:
            report.estimates.append(
                Estimate("input", "input", name, count_params(model), count_macs(model, shape))
            )
    for p in plan.passes:
        model = current(p.subject)
        if model is None:
            continue
        if p.result_model != p.subject:  # a copy (snapshot): the graph passes see it later
            models[p.result_model] = copy.deepcopy(model)
            continue
        if isinstance(p.params, ExportParams):
            failed = _try_export(model, p.params, example)
            if failed:
                report.diagnostics += with_span(failed, p)
                return report
            continue
        op: str = p.op
        params: OpParams = p.params
        if isinstance(params, (PruneWeightsGradualParams, PruneChannelsGradualParams)):
            # A ramp ends where one cut at its target would: estimate with that cut (movement
            # scores need training; magnitude stands in for them here).
            assert p.info.cuts is not None
            op, params = p.info.cuts, params.cut
            if params.criterion == "movement":
                params = params.model_copy(update={"criterion": "l1"})
        elif not p.info.graph:
            continue
        ctx = PassContext(
            example_inputs=example,
            batches=lambda: data.train_batches(torch.Generator().manual_seed(0)),
            options={"dry_run": True},
        )
        try:
            if isinstance(params, CalibrateParams):  # an estimate needs observers, not ranges
                params = params.model_copy(update={"batches": 1})
            result = run_pass(op, model, params, ctx)
        except KdrError as exc:
            report.diagnostics += with_span(exc.diagnostics, p)
            return report
        models[p.subject] = result.module
        report.diagnostics += with_span(_pass_notes(result.info, p.subject, noted), p)
        report.estimates.append(
            Estimate(
                p.id, p.op, p.subject, count_params(result.module), count_macs(result.module, shape)
            )
        )
    return report


def _pass_notes(info: dict[str, Any], model: str, noted: set[tuple[str, str]]) -> list[Diagnostic]:
    """KDR508 for each block newly kept whole in ``model``; KDR506 when a prune fell short."""
    from runtime.passes.channels.shortfall import kept_whole_message, shortfall_message

    out: list[Diagnostic] = []
    for entry in info.get("kept_whole", []):
        if (model, entry["module"]) not in noted:
            noted.add((model, entry["module"]))
            out.append(note("KDR508", f"`{model}`: {kept_whole_message(entry)}"))
    short = shortfall_message(info)
    if short is not None:
        out.append(
            warning(
                "KDR506",
                f"the prune of `{model}` falls short: {short}",
                None,
                Note(
                    kind="help",
                    message="blocked channels are those kdr cannot follow through every op; "
                    "prune more of what it can (a higher ratio, or a budget: `prune to 40% "
                    "params`), or see `kdr explain KDR506`",
                ),
            )
        )
    return out


def _try_export(model: nn.Module, params: ExportParams, example: torch.Tensor) -> list[Diagnostic]:
    """Export the model as the plan would leave it, into a scratch directory: an export that
    cannot succeed (KDR505) is known before any training."""
    from runtime.export import export_model

    with tempfile.TemporaryDirectory(prefix="kdr-dry-export-") as scratch:
        try:
            export_model(model, params.format, Path(scratch) / Path(params.path).name, example)
        except KdrError as exc:
            return exc.diagnostics
    return []


def check_plan(plan: Plan) -> ModelCheckReport:
    """``kdr check --models``: preflight, then a dry run of the graph passes."""
    try:
        data = load_data(plan)
        store = ModelStore(plan, data)
        diags = preflight(plan, data, store)
    except KdrError as exc:
        return ModelCheckReport(diagnostics=[_file(d, plan) for d in exc.diagnostics])
    if any(d.is_error for d in diags):
        return ModelCheckReport(diagnostics=[_file(d, plan) for d in diags])
    report = dry_run(plan, data, store)
    report.diagnostics = [_file(d, plan) for d in diags + report.diagnostics]
    return report


def _file(d: Diagnostic, plan: Plan) -> Diagnostic:
    return d.with_file(plan.source.path) if d.file == "<recipe>" else d


__all__ = ["Estimate", "ModelCheckReport", "check_plan", "dry_run"]
