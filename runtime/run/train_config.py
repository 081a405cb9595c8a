"""Maps a training pass of the plan (settings + :class:`TrainingParams`) to the engine's config."""

from __future__ import annotations

from compiler.ops import training_of
from compiler.plan import PlanPass
from runtime.engine import DistillConfig, TrainConfig
from runtime.run.context import RunContext
from runtime.run.inputs import pass_seed


def optimizer_settings(settings: dict) -> tuple[str, dict]:
    opt = dict(settings["optimizer"])
    if "beta1" in opt or "beta2" in opt:  # the recipe names them; AdamW takes a pair
        opt["betas"] = (opt.pop("beta1", 0.9), opt.pop("beta2", 0.999))
    return opt.pop("name"), opt


def train_config(ctx: RunContext, p: PlanPass, index: int) -> TrainConfig:
    params = training_of(p.params)
    assert params is not None
    settings = ctx.plan.settings
    optimizer, optimizer_kwargs = optimizer_settings(settings)
    sched = dict(settings["schedule"])
    distill = None
    if params.distill is not None:
        d = params.distill
        teacher = ctx.store.get(d.teacher).to(ctx.device).eval()
        distill = DistillConfig(teacher=teacher, temperature=d.temperature, alpha=d.alpha)
    history = ctx.store.lineages[p.subject].history
    return TrainConfig(
        epochs=params.epochs,
        steps=params.steps,
        optimizer=optimizer,
        optimizer_kwargs=optimizer_kwargs,
        lr=params.lr,
        schedule=sched.pop("name"),
        schedule_kwargs=sched,
        label_smoothing=params.label_smoothing,
        mixup=params.mixup,
        cutmix=params.cutmix,
        distill=distill,
        seed=pass_seed(ctx.plan, index),
        device=str(ctx.device),
        precision=str(settings.get("precision", "fp32")),
        compile=bool(settings.get("compile", False)),
        progress=ctx.options.progress,
        description=f"{p.op} {p.subject}",
        keep_zeros=any(h["op"].startswith("prune.weights") for h in history),
    )
