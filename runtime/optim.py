"""Optimizers and learning-rate schedules of the training engine, by name.

Defaults: AdamW with ``lr=5e-3, weight_decay=5e-4``; ``sgd`` with ``lr=0.05, momentum=0.9,
weight_decay=5e-4, nesterov=True``.

Schedules (:data:`compiler.vocab.SCHEDULES`), stepped every batch; ``T`` is the number of steps
the schedule runs (the training's, less its warmup) and ``t`` counts them from 0:

- ``onecycle``: :class:`~torch.optim.lr_scheduler.OneCycleLR` over ``T`` (up a quarter, down);
- ``cosine``: ``lr * (1 + cos(pi t / T)) / 2``;
- ``constant``: ``lr``;
- ``step(step_size=1, gamma=0.1)``: :class:`~torch.optim.lr_scheduler.StepLR`, ``x gamma``
  every ``step_size``;
- ``multistep(milestones, gamma=0.1)``: :class:`~torch.optim.lr_scheduler.MultiStepLR`,
  ``x gamma`` at each milestone;
- ``linear(end=0)``: :class:`~torch.optim.lr_scheduler.LinearLR`, straight from ``lr`` to
  ``end x lr`` at ``T``;
- ``poly(power=2)``: :class:`~torch.optim.lr_scheduler.PolynomialLR`,
  ``lr * (1 - t / T) ** power``;
- ``cosine_restarts(period, mult=1)``: :class:`~torch.optim.lr_scheduler.
  CosineAnnealingWarmRestarts` (SGDR), the first period ``period`` long, each next one ``mult``
  times the last.

Lengths (``step_size``, ``milestones``, ``period``) count epochs, or steps when the training's
duration is in steps (``TrainConfig.steps``), from the training's start. A warmup
(``warmup_steps``, or ``warmup_epochs`` x steps per epoch) comes first: the lr rises linearly,
``lr * (t + 1) / W`` at warmup step ``t`` of ``W`` (the first step at ``1/W`` of the peak, the
last at the peak); then the schedule: ``onecycle``, ``cosine``, ``linear`` and ``poly`` run
over the ``T`` steps left, ``step``, ``multistep`` and ``cosine_restarts`` go on where they are
at step ``W`` (a milestone at epoch 30 is at epoch 30 of the training, warmup or not).
:class:`~torch.optim.lr_scheduler.SequentialLR` chains the two, so its ``state_dict`` resumes
the pair.
torch.optim and torch.optim.lr_scheduler do the work; this module maps the recipe's words to
them.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from pydantic import ValidationError
from torch import nn
from torch.optim import lr_scheduler as sched

from compiler.optim_params import LrSchedule
from compiler.optim_values import SCHEDULE_DEFAULTS
from compiler.vocab import SCHEDULES
from recipe_lang.diagnostics import KdrError, Note, error

Scheduler = sched.LRScheduler


class TrainConfig(Protocol):
    """What the optimizer and the schedule read of :class:`runtime.engine.TrainConfig`."""

    steps: int | None
    optimizer: str
    optimizer_kwargs: dict[str, Any]
    lr: float | None
    schedule: str
    schedule_kwargs: dict[str, Any]
    warmup_steps: int
    warmup_epochs: int


OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"lr": 5e-3, "weight_decay": 5e-4},
    "sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
}
#: The share of a one-cycle schedule spent rising.
ONECYCLE_PCT_START = 0.25


def option_error(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR103", message, None, Note(kind="help", message=help_text)))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    name = cfg.optimizer.lower()
    if name not in OPTIMIZER_DEFAULTS:
        raise option_error(f"unknown optimizer `{cfg.optimizer}`", "use `sgd(...)` or `adamw(...)`")
    kwargs = {**OPTIMIZER_DEFAULTS[name], **cfg.optimizer_kwargs}
    if cfg.lr is not None:
        kwargs["lr"] = cfg.lr
    if name == "sgd" and not kwargs.get("momentum"):
        kwargs["nesterov"] = False
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.SGD
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise option_error(
            f"optimizer `{name}` rejects its arguments: {exc}",
            f"defaults: {OPTIMIZER_DEFAULTS[name]}",
        ) from exc


def schedule_spec(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The schedule's arguments, checked as :class:`LrSchedule` and with defaults filled in."""
    if name.lower() not in SCHEDULES:
        raise option_error(f"unknown schedule `{name}`", f"use one of {', '.join(SCHEDULES)}")
    try:
        spec = LrSchedule.model_validate({"name": name.lower(), **kwargs})
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise option_error(
            f"schedule `{name}` rejects its arguments: {problems}",
            "see `kdr explain` for the schedules and their arguments",
        ) from None
    given = spec.model_dump(exclude_none=True, exclude={"warmup"})
    out = {**SCHEDULE_DEFAULTS.get(spec.name, {}), **given}
    if spec.name == "multistep" and "milestones" not in out:
        raise option_error("`multistep` needs its milestones", "`multistep(milestones=[30, 60])`")
    if spec.name == "cosine_restarts" and "period" not in out:
        raise option_error("`cosine_restarts` needs its period", "`cosine_restarts(period=10)`")
    return out


def warmup_length(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Warmup steps: ``warmup_steps``, or ``warmup_epochs`` of ``steps_per_epoch``, or the
    schedule's own ``warmup`` (``{"epochs": N}`` or ``{"steps": N}``) when neither is set."""
    if cfg.warmup_steps or cfg.warmup_epochs:
        return cfg.warmup_steps or cfg.warmup_epochs * steps_per_epoch
    own = cfg.schedule_kwargs.get("warmup") or {}
    return int(own.get("steps") or 0) or int(own.get("epochs") or 0) * steps_per_epoch


def _schedule(
    optimizer: torch.optim.Optimizer, s: dict[str, Any], steps: int, unit: int, start: int = 0
) -> Scheduler | None:
    """The schedule ``s`` (see :func:`schedule_spec`) over ``steps`` steps, its first at step
    ``start`` of the training (after a warmup); lengths x ``unit``, counted from step 0."""
    name = s["name"]
    if name == "onecycle":
        if steps < 3:  # too short to warm up and anneal
            return None
        pct = max(ONECYCLE_PCT_START, 2.0 / steps)
        max_lr = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]  # not warmup's
        return sched.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=steps, pct_start=min(pct, 0.9)
        )
    if name == "cosine":
        return sched.LambdaLR(
            optimizer, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, steps) / steps))
        )
    if name == "step" and not start:
        return sched.StepLR(optimizer, s["step_size"] * unit, s["gamma"])
    if name in ("step", "multistep"):
        size = s.get("step_size", 1) * unit
        marks = [m * unit for m in s["milestones"]] if name == "multistep" else []
        marks = marks or list(range(size, start + steps, size))
        # from the warmup's end: milestones it passed are at 0, so they hold from the start
        return sched.MultiStepLR(optimizer, [max(m - start, 0) for m in marks], s["gamma"])
    if name == "linear":
        return sched.LinearLR(optimizer, 1.0, s["end"], total_iters=steps)
    if name == "poly":
        return sched.PolynomialLR(optimizer, total_iters=steps, power=s["power"])
    if name == "cosine_restarts":
        restarts = sched.CosineAnnealingWarmRestarts(optimizer, s["period"] * unit, s["mult"])
        if start:
            restarts.step(start)  # its place in the cycles, which SequentialLR's reset keeps
        return restarts
    assert name == "constant", name
    return None


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, steps_per_epoch: int
) -> Scheduler | None:
    """A per-batch learning-rate schedule with its warmup (``None``: the lr never changes)."""
    spec = {"name": cfg.schedule.lower(), **schedule_spec(cfg.schedule, cfg.schedule_kwargs)}
    unit = 1 if cfg.steps is not None else max(steps_per_epoch, 1)
    warm = min(warmup_length(cfg, steps_per_epoch), total_steps)
    if not warm:
        return _schedule(optimizer, spec, total_steps, unit)
    # Built first, the warmup's base lr is the optimizer's (the peak) whatever the schedule
    # after it writes into the param groups; closed-form, it is exact at every step.
    warmup = sched.LambdaLR(optimizer, lambda t: min(1.0, (t + 1) / warm))
    rest = total_steps - warm
    after = _schedule(optimizer, spec, rest, unit, warm) if rest > 0 else None
    if after is None:
        return warmup
    return sched.SequentialLR(optimizer, [warmup, after], milestones=[warm])
