"""Model-aware checks: build the models, trace them, dry-run the graph passes (KDR500-KDR504).

:func:`preflight` runs at the start of every ``kdr run``, before any training: data present
(KDR207), every model buildable (KDR504), teachers' and students' outputs comparable (KDR501),
an int8 engine for quantization (KDR503), and the graph passes traceable (KDR500/KDR502, by
dry-running them on copies). :func:`check_plan` is what ``kdr check --models`` calls through
``compiler.model_aware``: the same checks plus per-pass estimates of params and MACs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compiler.model_aware import Estimate, ModelCheckReport
from compiler.plan import Plan, PlanPass
from recipe_lang.diagnostics import Diagnostic, KdrError, Note, error
from runtime.data import DataBundle
from runtime.metrics import count_macs, count_params
from runtime.modelstore import ModelStore

GRAPH_PREFIXES = ("prune.", "replace.", "quant.", "fuse.")


def _with_span(diags: list[Diagnostic], p: PlanPass | None) -> list[Diagnostic]:
    if p is None or p.span is None:
        return diags
    return [d if d.span is not None else d.model_copy(update={"span": p.span}) for d in diags]


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def preflight(plan: Plan, data: DataBundle, store: ModelStore) -> list[Diagnostic]:
    """Build every model and check the plan against them; returns the diagnostics."""
    diags: list[Diagnostic] = []
    example = data.example_batch(2)
    first_use: dict[str, PlanPass] = {}
    for p in plan.passes:
        for name in (p.subject, *p.reads):
            first_use.setdefault(name, p)
    for name, p in first_use.items():
        spec = plan.models.get(name)
        if spec is None or spec.kind == "snapshot":
            continue
        try:
            store.get(name)
        except KdrError as exc:
            diags += _with_span(exc.diagnostics, p)
    if diags:
        return diags
    for p in plan.passes:
        if p.reads and not any(d.code == "KDR501" for d in diags):
            diags += _check_logits(plan, store, p, example, data)
    if any(p.op.startswith("quant.") for p in plan.passes):
        diags += _check_engine(plan)
    diags += _check_traceable(plan, store)
    return diags


def _check_traceable(plan: Plan, store: ModelStore) -> list[Diagnostic]:
    """KDR500 before any training: every model a traced graph pass will act on traces."""
    from runtime.passes.trace import trace

    out: list[Diagnostic] = []
    seen: set[str] = set()
    for p in plan.passes:
        if not p.op.startswith(("prune.channels", "fuse.", "quant.")) or p.subject in seen:
            continue
        seen.add(p.subject)
        model = store.models.get(p.subject)
        if model is None:
            continue
        try:
            trace(model)
        except KdrError as exc:
            out += _with_span(exc.diagnostics, p)
    return out


def _check_logits(
    plan: Plan, store: ModelStore, p: PlanPass, example: torch.Tensor, data: DataBundle
) -> list[Diagnostic]:
    student = store.models.get(p.subject)
    if student is None:  # a snapshot taken later: same outputs as its source
        return []
    s_out = _outputs(student, example)
    out: list[Diagnostic] = []
    for teacher_name in p.reads:
        teacher = store.models.get(teacher_name)
        if teacher is None:
            continue
        t_out = _outputs(teacher, example)
        if t_out.shape != s_out.shape:
            out.append(
                error(
                    "KDR501",
                    f"teacher `{teacher_name}` gives {t_out.shape[-1]} outputs but `{p.subject}` "
                    f"gives {s_out.shape[-1]} (the data has {data.num_classes} classes)",
                    p.span,
                    Note(
                        kind="help",
                        message=f"fine-tune `{teacher_name}` on the data first "
                        f"(`finetune {teacher_name} for N epochs`), or build it with "
                        f"num_classes={data.num_classes}",
                    ),
                )
            )
    return out


def _check_engine(plan: Plan) -> list[Diagnostic]:
    try:
        from runtime.passes.quant import select_engine

        select_engine()
    except KdrError as exc:
        first = next(p for p in plan.passes if p.op.startswith("quant."))
        return _with_span(exc.diagnostics, first)
    except ImportError:
        return []
    return []


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
        if p.op == "snapshot":
            models[p.params["name"]] = copy.deepcopy(model)
            continue
        if not p.op.startswith(GRAPH_PREFIXES):
            continue
        ctx = PassContext(
            example_inputs=example,
            batches=lambda: data.train_batches(torch.Generator().manual_seed(0)),
            options={"dry_run": True},
        )
        try:
            params = dict(p.params)
            if p.op == "quant.calibrate":  # an estimate needs observers, not good ranges
                params["batches"] = min(int(params.get("batches", 1)), 1)
            result = run_pass(p.op, model, params, ctx)
        except KdrError as exc:
            report.diagnostics += _with_span(exc.diagnostics, p)
            return report
        models[p.subject] = result.module
        report.estimates.append(
            Estimate(
                p.id, p.op, p.subject, count_params(result.module), count_macs(result.module, shape)
            )
        )
    return report


def check_plan(plan: Plan) -> ModelCheckReport:
    """``kdr check --models``: preflight, then a dry run of the graph passes."""
    from runtime.executor import load_data

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


__all__ = ["check_plan", "dry_run", "preflight"]
