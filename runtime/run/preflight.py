"""The preflight of every run: build the models and check them before any training.

:func:`preflight` runs at the start of every ``kdr run``, before any training: every model
buildable (KDR504), able to take the data's images (KDR507) and giving logits of the data's
classes, hence teachers' and students' outputs comparable (KDR501; both in
:mod:`runtime.run.model_io`), an int8 engine for
quantization (KDR503), the models that traced passes act on traceable (KDR500), and a
validation split for every ``keep best`` (KDR207). The dry run
of the graph passes (:mod:`runtime.run.dry_run`) adds KDR502 and per-pass estimates.
"""

from __future__ import annotations

from compiler.ops import (
    PruneChannelsGradualParams,
    PruneChannelsParams,
    PruneWeightsGradualParams,
    training_of,
)
from compiler.optim_params import Warmup
from compiler.plan import Plan, PlanPass
from recipe_lang.diagnostics import Diagnostic, KdrError
from runtime.data import DataBundle
from runtime.modelstore import ModelStore
from runtime.run.model_io import check_models_io


def with_span(diags: list[Diagnostic], p: PlanPass | None) -> list[Diagnostic]:
    if p is None or p.span is None:
        return diags
    return [d if d.span is not None else d.model_copy(update={"span": p.span}) for d in diags]


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
            diags += with_span(exc.diagnostics, p)
    if diags:
        return diags
    diags += check_models_io(plan, store, data, example, first_use)
    if any(p.op.startswith("quant.") for p in plan.passes):
        diags += _check_engine(plan)
    diags += _check_traceable(plan, store)
    diags += _check_schedules(plan, data)
    diags += _check_keep_best(plan, data)
    diags += _check_warmups(plan, data)
    return diags


def _check_warmups(plan: Plan, data: DataBundle) -> list[Diagnostic]:
    """KDR107 (the training's own) / KDR108 (the recipe's ``set schedule``, a warning) before any
    training: a warmup in other units than its training (``warmup 500 steps`` on ``for 2
    epochs``) is shorter than the training with this data's steps per epoch (the compiler checks
    warmups in the training's own units). KDR109 (a warning): an ``ema`` too slow for a training
    counted in epochs."""
    from compiler.lower.modifiers import ema_misfit, warmup_misfit
    from runtime.engine import planned_steps

    out: list[Diagnostic] = []
    spe = max(data.steps_per_epoch, 1)
    recipe = plan.settings.get("schedule") or {}
    for p in plan.passes:
        t = training_of(p.params)
        if t is None:
            continue
        if t.ema is not None and t.steps is None:  # in steps the compiler checked it
            slow = ema_misfit(t.ema, planned_steps(t.epochs, t.steps, spe))
            out += with_span([slow], p) if slow is not None else []
        own = t.warmup is not None or t.schedule is not None
        warmup = t.warmup or (t.schedule.warmup if t.schedule is not None else None)
        if warmup is None and not own and recipe.get("warmup"):
            warmup = Warmup.model_validate(recipe["warmup"])
        if warmup is None or (warmup.steps is None) == (t.steps is None):
            continue  # none, or in the training's units (the compiler checked it)
        total = planned_steps(t.epochs, t.steps, spe)
        length = warmup.steps if warmup.steps is not None else (warmup.epochs or 0) * spe
        if length >= total:
            out += with_span([warmup_misfit(own, length, total)], p)
    return out


def _check_keep_best(plan: Plan, data: DataBundle) -> list[Diagnostic]:
    """KDR207 before any training: `keep best` on data without a validation split (the
    compiler rejects it when it sees the data call; data bound with --data it cannot see)."""
    from runtime.validation import keep_best_error

    if data.has_val:
        return []
    out: list[Diagnostic] = []
    for p in plan.passes:
        training = training_of(p.params)
        if training is not None and training.keep_best is not None:
            out += with_span(keep_best_error(data).diagnostics, p)
    return out


def _check_schedules(plan: Plan, data: DataBundle) -> list[Diagnostic]:
    """KDR106 before any training: each gradual prune's frequency fits its duration with this
    data's steps per epoch (the compiler checks what it can without the data)."""
    from runtime.engine import planned_steps
    from runtime.gradual.hook import schedule_points

    out: list[Diagnostic] = []
    spe = max(data.steps_per_epoch, 1)
    for p in plan.passes:
        params = p.params
        if isinstance(params, (PruneWeightsGradualParams, PruneChannelsGradualParams)):
            t = params.training
            try:
                schedule_points(params, planned_steps(t.epochs, t.steps, spe), spe)
            except KdrError as exc:
                out += with_span(exc.diagnostics, p)
    return out


def _check_traceable(plan: Plan, store: ModelStore) -> list[Diagnostic]:
    """KDR500 before any training: every model a traced graph pass will act on traces, with the
    modules that pass scopes out (``except ...``) kept opaque, as the pass itself keeps them.
    Passes that keep an untraceable block whole (``WHOLE_BLOCK_OPS``: channel pruning, BatchNorm
    folding) fail only when the model's own ``forward`` cannot be traced."""
    from runtime.passes.trace import WHOLE_BLOCK_OPS, trace, trace_with_leaves

    out: list[Diagnostic] = []
    seen: set[tuple[str, tuple[str, ...], bool]] = set()
    reported: set[str] = set()
    for p in plan.passes:
        cut = getattr(p.params, "cut", p.params)  # a gradual prune scopes like its cut
        leaves = tuple(cut.exclude) if isinstance(cut, PruneChannelsParams) else ()
        whole = p.op in WHOLE_BLOCK_OPS
        key = (p.subject, leaves, whole)
        if not p.info.traced or key in seen or p.subject in reported:
            continue
        seen.add(key)
        model = store.models.get(p.subject)
        if model is None:
            continue
        try:
            trace_with_leaves(model, leaves) if whole else trace(model, leaves)
        except KdrError as exc:
            reported.add(p.subject)
            out += with_span(exc.diagnostics, p)
    return out


def _check_engine(plan: Plan) -> list[Diagnostic]:
    try:
        from runtime.passes.quant import select_engine

        select_engine()
    except KdrError as exc:
        first = next(p for p in plan.passes if p.op.startswith("quant."))
        return with_span(exc.diagnostics, first)
    except ImportError:
        return []
    return []
