"""The training engine: supervised training and distillation, lean enough to benchmark.

:func:`fit` trains a model in place according to a :class:`TrainConfig` and returns
:class:`FitStats`; :func:`evaluate` gives top-1 accuracy on the evaluation split.

Defaults (chosen so that a 2-epoch run on ``mnist10k`` gets a convnet past 95%): AdamW with
``lr=5e-3, weight_decay=5e-4`` and a one-cycle schedule stepped every batch. ``sgd`` defaults
to ``lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True``. Schedules (``onecycle``,
``cosine``, ``constant``, ``step``, ``multistep``, ``linear``, ``poly``, ``cosine_restarts``)
and their warmup: ``runtime/optim.py``.

Around every step (``runtime/step_extras.py``): the lr in use is recorded
(``FitStats.lr_curve``), the gradients are clipped to ``cfg.clip_grad``, and ``cfg.ema`` keeps
a moving average of the weights, which is the training's result.

Distillation (``cfg.distill``): the teacher runs in eval mode under ``torch.inference_mode``
on the *same* (possibly mixed) batch the student sees. When the inputs are deterministic
(in-memory data, no augmentation, no mixup/cutmix) the teacher's logits are computed once per
:func:`fit` call over the training tensors and looked up per batch (when the run covers at
least two epochs; shorter runs call the teacher per batch).

With ``cfg.seed`` set, :func:`fit` seeds every generator first and shuffles with its own
seeded generator, so the same call on CPU gives bit-identical weights.

Under torchrun (``runtime/distributed.py``) :func:`fit` trains through DDP: every rank draws
the same global batch and keeps ``batch[rank::world_size]``, so the per-rank batch is
``batch_size / world_size`` and the global batch, step count and schedule stay the recipe's.
``FitStats.samples`` counts global samples.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from runtime import distributed
from runtime.data import DataBundle, index_batches
from runtime.fit_state import BatchStream, FitHook, LoopState
from runtime.fit_stats import FitStats, stats_of
from runtime.kd import Targets, cross_entropy, kd_loss, mix_batch
from runtime.models.outputs import logits_of
from runtime.optim import (
    make_optimizer,
    make_scheduler,
    option_error,
)
from runtime.progress import TrainProgress
from runtime.seeding import seed_everything
from runtime.sparsity import WeightMasks
from runtime.step_extras import StepExtras
from runtime.validation import EpochValidation

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class DistillConfig:
    """Hinton distillation from ``teacher``: ``alpha`` weighs the soft (KL) term."""

    teacher: nn.Module
    temperature: float = 4.0
    alpha: float = 0.9
    #: Precompute teacher logits when the inputs are deterministic (see the module docstring).
    cache_logits: bool = True


@dataclass
class TrainConfig:
    """How one training or distillation stage runs. ``steps`` wins over ``epochs``."""

    epochs: int | None = 1
    steps: int | None = None
    optimizer: str = "adamw"
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Overrides the optimizer's ``lr`` (the ``with lr X`` modifier).
    lr: float | None = None
    schedule: str = "onecycle"
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.0
    mixup: float | None = None
    cutmix: float | None = None
    distill: DistillConfig | None = None
    seed: int | None = 0
    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    #: Report progress: a bar on a terminal, else one line per epoch (runtime/progress.py).
    progress: bool = False
    description: str = "train"
    #: Keep the zero entries of the model's weights zero (it was pruned by weights).
    keep_zeros: bool = False
    #: Linear warmup to the schedule's lr over the first ``warmup_steps`` steps, or
    #: ``warmup_epochs`` epochs (0: none); then the schedule (``runtime/optim.py``).
    warmup_steps: int = 0
    warmup_epochs: int = 0
    #: The global gradient norm is clipped to this before every optimizer step (None: never).
    clip_grad: float | None = None
    #: Decay of an exponential moving average of the weights; the average is the result.
    ema: float | None = None
    #: ``"accuracy"`` or ``"loss"``: the weights of the best epoch on the validation split are
    #: the result (the data must have one).
    keep_best: str | None = None


def planned_steps(epochs: int | None, steps: int | None, steps_per_epoch: int) -> int:
    """Optimizer steps of a training: ``steps`` if given, else ``epochs`` (1) of the data."""
    return steps if steps is not None else (epochs or 1) * max(steps_per_epoch, 1)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.inference_mode()
def _teacher_logits(
    teacher: nn.Module, images: torch.Tensor, device: torch.device, batch: int
) -> torch.Tensor:
    outs = [
        logits_of(teacher(images[i : i + batch].to(device))) for i in range(0, len(images), batch)
    ]
    return torch.cat(outs).float()


def _forward(model: nn.Module, device: torch.device, parallel: bool, compile_: bool) -> nn.Module:
    """What the loop calls: the model, under DDP when distributed, compiled if asked."""
    forward: nn.Module = distributed.wrap_ddp(model, device) if parallel else model
    if compile_:
        forward = torch.compile(forward)  # type: ignore[assignment]
    return forward


def fit(
    model: nn.Module,
    data: DataBundle,
    cfg: TrainConfig,
    hook: FitHook | None = None,
    start: LoopState | None = None,
) -> FitStats:
    """Train ``model`` in place on ``data`` as ``cfg`` says (see the module docstring).

    ``hook`` acts before every step (a gradual prune: new zeros, or smaller tensors whose
    optimizer state it remaps) and after every backward (it may read the gradients); after a
    change it may checkpoint the loop's :class:`LoopState`, and ``start`` resumes from one:
    the same batches, RNG, optimizer and schedule as the uninterrupted run.
    """
    if cfg.precision not in PRECISIONS:
        raise option_error(f"unknown precision `{cfg.precision}`", "use fp32, bf16 or fp16")
    if cfg.seed is not None:
        seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else data.seed)
    device = resolve_device(cfg.device)
    model.to(device).train()
    # Zeros written by `prune ... weights` hold through this training, whatever pass it is.
    masks = WeightMasks.of(model) if cfg.keep_zeros else WeightMasks()
    optimizer = make_optimizer(model, cfg)
    spe = max(data.steps_per_epoch, 1)
    total = planned_steps(cfg.epochs, cfg.steps, spe)
    scheduler = make_scheduler(optimizer, cfg, total, spe)
    extras = StepExtras(model, cfg.clip_grad, cfg.ema, total, spe, start)
    # Validation at epoch ends and `keep best` (runtime/validation.py).
    validation = EpochValidation(data, cfg.keep_best, spe)
    if start is not None:
        validation.load_state_dict(start.validation)
        optimizer.load_state_dict(start.optimizer)
        if scheduler is not None and start.scheduler is not None:
            scheduler.load_state_dict(start.scheduler)
    # Under torchrun (see runtime/distributed.py): DDP, each rank on its shard of every batch.
    parallel = distributed.is_distributed() and any(p.requires_grad for p in model.parameters())
    forward = _forward(model, device, parallel, cfg.compile)
    dtype = PRECISIONS[cfg.precision]
    autocast: Any = (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )
    scaler = torch.amp.GradScaler(
        device.type, enabled=cfg.precision == "fp16" and device.type == "cuda"
    )
    mixing = bool(cfg.mixup or cfg.cutmix)
    distill = cfg.distill
    teacher = distill.teacher if distill else None
    teacher_was_training = teacher.training if teacher is not None else False
    if teacher is not None:
        teacher.to(device).eval()
    tensors = data.train_tensors
    cached: torch.Tensor | None = None
    cacheable = distill is not None and distill.cache_logits and not data.augment and not mixing
    # Precomputing costs one teacher pass over the whole split: a gain from two epochs on.
    cacheable = cacheable and total * data.batch_size >= 2 * data.train_size
    if teacher is not None and tensors is not None and cacheable:
        with autocast:
            cached = _teacher_logits(teacher, tensors[0], device, data.batch_size)

    def epoch() -> Any:
        if cached is not None and tensors is not None:
            return (
                (tensors[0][idx], tensors[1][idx], cached[idx])
                for idx in index_batches(len(tensors[0]), data.batch_size, generator)
            )
        return ((x, y, None) for x, y in data.train_batches(generator))

    position = (start.epoch_generator, start.epoch_drawn) if start is not None else None
    stream = BatchStream(epoch, generator, position, data.name)
    smoothing = cfg.label_smoothing
    losses = torch.zeros(total)
    step = samples = 0
    if start is not None:
        torch.set_rng_state(start.rng)
        step, samples = start.step, start.samples
        losses[:step] = start.losses[:step]
    progress = TrainProgress(cfg.progress, total, spe, cfg.description)
    begin = time.perf_counter()
    try:
        while step < total:
            change = hook.before_step(step, model, optimizer) if hook is not None else ""
            if change:
                validation.model_changed()
                masks = WeightMasks.of(model)  # the new zeros hold from this step on
                if change == "structure":
                    forward = _forward(model, device, parallel, cfg.compile)
                    extras.restart(model)  # the average restarts on the new tensors
                if hook is not None and step > 0:
                    where, drawn = stream.position
                    hook.checkpoint(
                        LoopState(
                            step=step,
                            samples=samples,
                            epoch_generator=where,
                            epoch_drawn=drawn,
                            rng=torch.get_rng_state(),
                            optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            losses=losses[:step].clone(),
                            validation=validation.state_dict(),
                            **extras.state(),
                        )
                    )
            x, y, t_logits = stream.next()
            batch_samples = len(y)
            if parallel:
                if batch_samples < distributed.world_size():
                    continue  # a rank would get nothing (every rank skips it alike)
                x, y = distributed.shard(x), distributed.shard(y)
                if t_logits is not None:
                    t_logits = distributed.shard(t_logits)
            if device.type != "cpu":
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if t_logits is not None:
                    t_logits = t_logits.to(device, non_blocking=True)
            targets: Targets = y
            if mixing:
                x, targets = mix_batch(x, y, cfg.mixup, cfg.cutmix)
            with autocast:
                if distill is not None and teacher is not None:
                    if t_logits is None:
                        with torch.inference_mode():
                            t_logits = logits_of(teacher(x))
                    out = logits_of(forward(x))
                    loss = kd_loss(
                        out, t_logits, targets, distill.temperature, distill.alpha, smoothing
                    )
                else:
                    loss = cross_entropy(logits_of(forward(x)), targets, smoothing)
            extras.record(step, optimizer)
            optimizer.zero_grad(set_to_none=True)
            if scaler.is_enabled():
                scaler.scale(loss).backward()
                if hook is not None or cfg.clip_grad is not None:
                    scaler.unscale_(optimizer)
                if hook is not None:
                    hook.after_backward(step, model)
                extras.clip(model)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if hook is not None:
                    hook.after_backward(step, model)
                extras.clip(model)
                optimizer.step()
            if masks:
                masks.apply()  # pruned entries stay zero (runtime/sparsity.py)
            extras.update(model, masks)
            if scheduler is not None:
                scheduler.step()
            losses[step] = loss.detach()
            samples += batch_samples
            step += 1
            progress.update(step, losses)
            if validation.boundary(step, total):
                # the model that will be the result: the weights' average under `ema`
                validation.epoch_end(step, extras.result(model))
    finally:
        progress.close(step)
        if teacher is not None:
            teacher.train(teacher_was_training)
    extras.finish(model, masks)  # ema: the average is the result
    best_epoch = validation.finish(model)  # keep best: the best epoch's weights
    if masks and best_epoch is not None:
        masks.apply()
    if parallel:
        distributed.broadcast_buffers(model)
    wall = time.perf_counter() - begin
    stats = stats_of(losses[:step], step, samples, wall, spe, optimizer, cached is not None)
    stats.lr_curve = extras.lr_curve
    stats.val_curve, stats.best_epoch = validation.curve, best_epoch
    return stats


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def evaluate(model: nn.Module, data: DataBundle, device: str | None = None) -> float:
    """Top-1 accuracy (0..1) on the evaluation split, in eval mode; the mode is restored."""
    dev = resolve_device(device) if device else _device_of(model)
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        with torch.inference_mode():
            for x, y in data.eval_batches():
                out = logits_of(model(x.to(dev)))
                correct += int((out.argmax(1).cpu() == y).sum())
                total += len(y)
    finally:
        model.train(was_training)
    return correct / total if total else 0.0
