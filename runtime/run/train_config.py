"""Maps a training pass of the plan (settings + :class:`TrainingParams`) to the engine's config.

The recipe's ``set optimizer`` / ``set schedule`` (``settings["optimizer"]`` /
``settings["schedule"]``, plain dicts of :class:`~compiler.optim_params.OptimizerSpec` /
:class:`~compiler.optim_params.LrSchedule` fields, the schedule's warmup nested in it) are every
training's defaults. A training's own ``with optimizer`` / ``with schedule`` replaces them (a
schedule with its own warmup or none), ``with warmup`` replaces the warmup, ``with
weight_decay`` / ``with lr`` the optimizer's value: for that training only.
"""

from __future__ import annotations

from typing import Any

from compiler.ops import training_of
from compiler.optim_params import Warmup
from compiler.params import TrainingParams
from compiler.plan import PlanPass
from runtime.engine import DistillConfig, TrainConfig
from runtime.run.context import RunContext
from runtime.run.inputs import pass_seed


def optimizer_settings(settings: dict, params: TrainingParams | None = None) -> tuple[str, dict]:
    """The optimizer's name and keyword arguments: the training's own, else the recipe's."""
    if params is not None and params.optimizer is not None:
        opt = params.optimizer.model_dump(exclude_none=True)
    else:
        opt = dict(settings["optimizer"])
    if params is not None and params.weight_decay is not None:
        opt["weight_decay"] = params.weight_decay
    if "beta1" in opt or "beta2" in opt:  # the recipe names them; AdamW takes a pair
        opt["betas"] = (opt.pop("beta1", 0.9), opt.pop("beta2", 0.999))
    return opt.pop("name"), opt


def schedule_settings(settings: dict, params: TrainingParams) -> tuple[str, dict, Warmup | None]:
    """The schedule's name, its arguments and its warmup: the training's own, else the
    recipe's."""
    if params.schedule is not None:
        sched = params.schedule.model_dump(exclude_none=True)
    else:
        sched = dict(settings["schedule"])
    own = sched.pop("warmup", None)
    warmup = params.warmup or (Warmup.model_validate(own) if own is not None else None)
    return sched.pop("name"), sched, warmup


def optimization(settings: dict, params: TrainingParams) -> dict[str, Any]:
    """The :class:`TrainConfig` fields of how a training optimizes (see the module docstring)."""
    optimizer, optimizer_kwargs = optimizer_settings(settings, params)
    schedule, schedule_kwargs, warmup = schedule_settings(settings, params)
    return {
        "optimizer": optimizer,
        "optimizer_kwargs": optimizer_kwargs,
        "lr": params.lr,
        "schedule": schedule,
        "schedule_kwargs": schedule_kwargs,
        "warmup_steps": (warmup.steps or 0) if warmup is not None else 0,
        "warmup_epochs": (warmup.epochs or 0) if warmup is not None else 0,
        "clip_grad": params.clip_grad,
        "ema": params.ema,
        "keep_best": params.keep_best,
    }


def train_config(ctx: RunContext, p: PlanPass, index: int) -> TrainConfig:
    params = training_of(p.params)
    assert params is not None
    settings = ctx.plan.settings
    distill = None
    if params.distill is not None:
        d = params.distill
        teacher = ctx.store.get(d.teacher).to(ctx.device).eval()
        distill = DistillConfig(teacher=teacher, temperature=d.temperature, alpha=d.alpha)
    history = ctx.store.lineages[p.subject].history
    return TrainConfig(
        epochs=params.epochs,
        steps=params.steps,
        **optimization(settings, params),
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
