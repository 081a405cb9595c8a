"""``kdr run``: execute a plan's passes, measure every stage, checkpoint, report, resume.

Execution is deterministic on CPU: every pass seeds its own RNGs from the recipe's seed and
its position in the plan, so a resumed run computes exactly what the uninterrupted one would
have from the same checkpoints. Models are all built (and seeded) before the first pass, in
plan order, so a model first used late in the pipeline is initialised identically whether or
not the run was resumed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from compiler.plan import PlanPass
from recipe_lang.diagnostics import KdrError
from runtime import distributed
from runtime.engine import resolve_device
from runtime.metrics import measure, nm_lineage
from runtime.modelstore import ModelStore
from runtime.run import entries, resume
from runtime.run.console import result_line, say
from runtime.run.context import RunContext
from runtime.run.handlers import handler
from runtime.run.inputs import input_models, load_data
from runtime.run.options import RunRequest
from runtime.run.preflight import preflight
from runtime.seeding import seed_everything
from runtime.workspace import RunDir, RunState


def prepare(request: RunRequest) -> RunContext:
    """Load the data, build (and seed) every model, and run the model-aware preflight."""
    plan, options = request.plan, request.options
    seed_everything(int(plan.settings.get("seed", 0)))
    data = load_data(plan)
    store = ModelStore(plan, data)
    ctx = RunContext(
        plan=plan,
        options=options,
        device=resolve_device(options.device or str(plan.settings.get("device", "auto"))),
        rundir=RunDir(options.run_dir),
        data=data,
        store=store,
        example=data.example_batch(8),
        state=RunState(plan_hash=plan.hash),
    )
    diagnostics = preflight(plan, data, store)
    if any(d.is_error for d in diagnostics):
        raise KdrError(diagnostics)
    if diagnostics and options.warn is not None and distributed.is_main():
        options.warn(diagnostics)
    return ctx


def on_main(action: Callable[[], None], what: str) -> None:
    """Run ``action`` on rank 0 only, then meet the other ranks at a barrier that also
    tells them whether it succeeded (just ``action()`` in a one-process run)."""
    failure: BaseException | None = None
    if distributed.is_main():
        try:
            action()
        except BaseException as exc:
            failure = exc
    ok = distributed.all_ok(failure is None)
    if failure is not None:
        raise failure
    if not ok:
        raise distributed.peer_failed(what)


def open_rundir(ctx: RunContext) -> None:
    """Rank 0 opens (locks, clears or verifies) the run directory; then, on resume, the
    other ranks load their models from it too."""
    on_main(functools.partial(resume.open_rundir, ctx), "to open the run directory")
    if not distributed.is_main() and ctx.options.resume:
        previous = ctx.rundir.read_state()
        if previous is not None:
            ctx.state = previous
            resume.restore(ctx)


def _measure(ctx: RunContext, name: str, until: PlanPass | None = None) -> dict[str, Any]:
    """``name``'s figures; ``until``: the pass just finished (its N:M prune history counts)."""
    model = ctx.store.get(name)
    model.eval()
    nm = nm_lineage(ctx.plan.passes, name, until.id) if until is not None else None
    return measure(model.cpu(), ctx.data, nm=nm)


def _measure_inputs(ctx: RunContext) -> None:
    for name in input_models(ctx.plan):
        t0 = time.perf_counter()
        metrics = _measure(ctx, name)
        wall = time.perf_counter() - t0
        notes = getattr(ctx.store.get(name), "kdr_notes", None)  # e.g. a re-initialised head
        extra = {"notes": list(notes)} if notes else {}
        ctx.state.stages.append(entries.entry("input", "input", name, wall, metrics, extra))
    ctx.rundir.write_state(ctx.state)


def _finish(ctx: RunContext, p: PlanPass, name: str, wall: float, extra: dict[str, Any]) -> None:
    """Measure, checkpoint and record a finished pass (rank 0 only)."""
    last = entries.last_metrics(ctx.state.stages, p.subject)
    if p.info.read_only and p.op != "evaluate" and last:
        metrics = dict(last)  # the model did not change: reuse its figures, do not re-time it
    else:
        metrics = _measure(ctx, name, p)
    entry = entries.entry(p.id, p.op, name, wall, metrics, extra)
    if distributed.is_distributed():
        entry["world_size"] = distributed.world_size()
    resume.checkpoint(ctx, p, name)
    ctx.state.stages.append(entry)
    ctx.state.finished.append(p.id)
    ctx.rundir.write_state(ctx.state)


def _run_pass(ctx: RunContext, p: PlanPass, index: int, title: str) -> None:
    """One pass: its handler, then (rank 0) measure, checkpoint and record it. A diagnostic
    raised without a span gets the span of the stage the pass comes from."""
    try:
        t0 = time.perf_counter()
        extra = handler(p.op)(ctx, p, index)
        wall = time.perf_counter() - t0
        name = p.result_model
        if not p.info.read_only:
            distributed.check_agreement(ctx.store.get(name), f"pass {p.id}")
        on_main(functools.partial(_finish, ctx, p, name, wall, extra), f"to checkpoint pass {p.id}")
        if distributed.is_main():
            say(ctx.options, f"{title}: {result_line(ctx.state.stages[-1])}")
    except KdrError as exc:
        if p.span is not None:
            exc.diagnostics = [
                d if d.span is not None else d.model_copy(update={"span": p.span})
                for d in exc.diagnostics
            ]
        raise


def execute(ctx: RunContext) -> dict[str, Any]:
    started = time.perf_counter()
    if not ctx.state.stages:
        on_main(functools.partial(_measure_inputs, ctx), "to measure the input models")
    done = set(ctx.state.finished)
    total = len(ctx.plan.passes)
    for index, p in enumerate(ctx.plan.passes):
        if p.id in done:
            continue
        title = f"[{index + 1}/{total}] {p.op} {p.subject}"
        say(ctx.options, title)
        _run_pass(ctx, p, index, title)
        if not distributed.is_main():
            ctx.state.finished.append(p.id)
    if not distributed.is_main():
        return {}
    from runtime.report import write_reports

    return write_reports(
        ctx.rundir, ctx.plan, ctx.state.stages, str(ctx.device), time.perf_counter() - started
    )


def run(request: RunRequest) -> dict[str, Any]:
    """Run a bound plan; under torchrun, as one rank of a data-parallel run (``{}`` off rank 0)."""
    joined = distributed.init()
    try:
        ctx = prepare(request)
        try:
            open_rundir(ctx)
            return execute(ctx)
        finally:  # also on an error or Ctrl-C: no lock file is left behind
            ctx.rundir.unlock()
    finally:
        if joined:
            distributed.shutdown()
