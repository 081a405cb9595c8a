"""One handler per plan op, looked up by op: the runtime's half of the plan contract.

A handler is ``(ctx, pass, index) -> extra report fields``. Training ops run the engine, graph
ops run the graph pass registered under the same op (``runtime.passes``), the read-only ops
copy, measure or write. :func:`handler` refuses an op the compiler does not define, and a test
checks that every op in ``compiler.ops.OPS`` has a handler here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from compiler.ops import OPS, ExportParams, SnapshotParams, TrainingParams
from compiler.plan import PlanPass
from recipe_lang.diagnostics import KdrError, Note, error
from runtime import distributed
from runtime.engine import fit
from runtime.run.context import RunContext
from runtime.run.gradual import run_gradual
from runtime.run.inputs import pass_seed
from runtime.run.train_config import train_config
from runtime.seeding import seed_everything

Handler = Callable[[RunContext, PlanPass, int], dict[str, Any]]

HANDLERS: dict[str, Handler] = {}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            if op not in OPS:
                raise ValueError(f"`{op}` is not a plan op (compiler.ops.OPS)")
            HANDLERS[op] = fn
        return fn

    return register


def handler(op: str) -> Handler:
    found = HANDLERS.get(op)
    if found is None:
        raise KdrError(error("KDR999", f"no runtime handler for plan op `{op}`"))
    return found


@handles(*(op for op, info in OPS.items() if info.params is TrainingParams))
def run_training(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    model = ctx.store.get(p.subject)
    return {"train": fit(model, ctx.data, train_config(ctx, p, index)).summary()}


handles("prune.weights.gradual", "prune.channels.gradual")(run_gradual)


@handles("snapshot")
def run_snapshot(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    assert isinstance(p.params, SnapshotParams)
    ctx.store.snapshot(p.subject, p.params.name)
    return {}


@handles("evaluate")
def run_evaluate(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    return {}  # the executor measures every pass's model; evaluate only asks for it


@handles("export")
def run_export(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    from runtime.export import export_model

    params = p.params
    assert isinstance(params, ExportParams)
    if not distributed.is_main():
        return {}
    target = Path(params.path).expanduser()
    if not target.is_absolute():  # relative paths land in the run directory, with the reports
        target = ctx.rundir.path / target
    try:
        path = export_model(ctx.store.get(p.subject).cpu(), params.format, target, ctx.example)
    except OSError as exc:
        raise KdrError(
            error(
                "KDR504",
                f"cannot write export `{params.path}`: {exc.strerror or exc}",
                None,
                Note(
                    kind="help", message="free some space or fix the path, then rerun with --resume"
                ),
            )
        ) from exc
    return {"export_path": str(path)}


@handles(*(op for op, info in OPS.items() if info.graph))
def run_graph_pass(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    from runtime.passes import PassContext, run_pass

    seed = pass_seed(ctx.plan, index)
    seed_everything(seed)
    model = ctx.store.get(p.subject).cpu()
    generator = torch.Generator().manual_seed(seed)
    pctx = PassContext(
        example_inputs=ctx.example,
        batches=lambda: ctx.data.train_batches(generator),
        history=[h["op"] for h in ctx.store.lineages[p.subject].history],
        options={"seed": seed},
    )
    result = run_pass(p.op, model, p.params, pctx)
    ctx.store.set(p.subject, result.module)
    ctx.store.record(p.subject, p.op, result.record)
    return {"info": result.info} if result.info else {}
