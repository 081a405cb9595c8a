"""The handler of the gradual prune ops: one training run with a sparsity ramp, resumable.

``prune.weights.gradual`` and ``prune.channels.gradual`` train like any training pass (the
same :class:`~runtime.engine.TrainConfig`, teacher and modifiers) with a
:class:`~runtime.gradual.GradualPrune` hook. After every cut but the first the loop is
checkpointed to ``checkpoints/<pass>.partial.pt`` (atomic, with its digest, plain data: the
model's lineage, which for channels holds every cut's record, its weights, the loop's
:class:`~runtime.fit_state.LoopState` and the hook's state), so ``kdr run --resume`` after a
crash restarts at the last cut and ends with the same model as an uninterrupted run. The
partial file goes once the pass's own checkpoint is written.
"""

from __future__ import annotations

from typing import Any

import torch

from compiler.ops import PruneChannelsGradualParams, PruneWeightsGradualParams
from compiler.plan import PlanPass
from recipe_lang.diagnostics import KdrError, Note, error
from runtime import distributed
from runtime.checkpoint import load_checkpoint, save_checkpoint
from runtime.engine import fit, planned_steps
from runtime.fit_state import LoopState
from runtime.gradual import GradualPrune
from runtime.gradual.hook import schedule_points
from runtime.modelstore import Lineage, rebuild
from runtime.run.console import say
from runtime.run.context import RunContext
from runtime.run.inputs import pass_seed
from runtime.run.train_config import train_config


def _resume_point(ctx: RunContext, p: PlanPass) -> dict[str, Any] | None:
    """The partial checkpoint of ``p`` to resume from, if this is a resumed run that has one."""
    path = ctx.rundir.partial_path(p.id)
    if not ctx.options.resume or not path.is_file():
        return None
    payload = load_checkpoint(path)
    if payload.get("plan_hash") != ctx.plan.hash or payload.get("pass_id") != p.id:
        raise KdrError(
            error(
                "KDR504",
                f"`{path}` belongs to another plan or pass",
                None,
                Note(kind="help", message="start a fresh run (--fresh)"),
            )
        )
    return dict(payload)


def run_gradual(ctx: RunContext, p: PlanPass, index: int) -> dict[str, Any]:
    params = p.params
    assert isinstance(params, (PruneWeightsGradualParams, PruneChannelsGradualParams))
    cfg = train_config(ctx, p, index)
    cfg.keep_zeros = True  # the zeros of every cut hold until the next one
    spe = max(ctx.data.steps_per_epoch, 1)
    total = planned_steps(cfg.epochs, cfg.steps, spe)
    points = schedule_points(params, total, spe)
    seed = pass_seed(ctx.plan, index)
    resumed = _resume_point(ctx, p)
    if resumed is not None:
        lineage = Lineage.from_plain(resumed["model"])
        ctx.store.set(p.subject, rebuild(lineage, ctx.data, resumed["state_dict"]), lineage)
    model = ctx.store.get(p.subject)
    path = ctx.rundir.partial_path(p.id)

    def save(state: LoopState, hook_state: dict[str, Any]) -> None:
        if not distributed.is_main():
            return
        save_checkpoint(
            path,
            {
                "plan_hash": ctx.plan.hash,
                "pass_id": p.id,
                "model": ctx.store.lineages[p.subject].to_plain(),
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "loop": state.to_plain(),
                "gradual": hook_state,
            },
        )

    def batches(step: int) -> Any:  # taylor's batch at each cut: seeded by the cut's step
        generator = torch.Generator().manual_seed(seed + step)
        return lambda: ctx.data.train_batches(generator)

    hook = GradualPrune(
        model,
        params,
        points,
        example=ctx.example,
        seed=seed,
        batches=batches,
        on_record=lambda record: ctx.store.record(p.subject, "prune.channels", record),
        save=save,
    )
    start = None
    if resumed is not None:
        hook.load_state_dict(resumed["gradual"])
        start = LoopState.from_plain(resumed["loop"])
        say(
            ctx.options,
            f"resuming at step {start.step}/{total}, after the cut to "
            f"{hook.updates[-1]['level']:.1%}",
        )
    stats = fit(model, ctx.data, cfg, hook, start)
    if isinstance(params, PruneWeightsGradualParams):
        ctx.store.record(p.subject, p.op, {"ratio": params.cut.ratio, "structural": False})
    return {
        "train": stats.summary(),
        "gradual": {
            "curve": params.schedule.curve,
            "updates": hook.updates,
        },
    }


__all__ = ["run_gradual"]
