"""The preflight's checks of each model against the data: its input and its outputs.

Every model a run uses is run once on the data's example batch (eval mode, no gradients) before
any training, so that what the model cannot do shows up as a diagnostic with a fix instead of
an internal error in the middle of a run:

- **KDR507**: the forward fails on the data's images (``convnext_tiny`` on 28x28 MNIST
  downsamples to nothing: "Kernel size can't be greater than actual input size"). The model is
  retried on larger square images (:data:`TRIAL_SIDES`) to find the smallest that works, and
  the help says how to get it (``mnist10k(image_size=64)``);
- **KDR501**: the output is not logits of the data's classes: a width other than the data's
  number of classes (a factory that ignores ``num_classes``, ``timm.resnet18(num_classes=1000)``
  on 10 classes; before, a student trained on them silently), or an output kdr cannot read
  (:func:`runtime.models.outputs.logits_of`). Teachers and students that differ are caught
  here too: each differs from the data.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from compiler.plan import Plan, PlanPass
from recipe_lang.diagnostics import Diagnostic, KdrError, Note, error
from runtime.data import DataBundle
from runtime.models.outputs import logits_of
from runtime.modelstore import ModelStore

#: Square image sides a failing model is retried on, smallest first (299: inception_v3's own).
TRIAL_SIDES: tuple[int, ...] = (32, 64, 96, 128, 160, 224, 299)


def check_models_io(
    plan: Plan,
    store: ModelStore,
    data: DataBundle,
    example: torch.Tensor,
    uses: dict[str, PlanPass],
) -> list[Diagnostic]:
    """KDR507 / KDR501 for every built model (``uses``: the pass that first uses each, whose
    span the diagnostic carries; an ensemble's members are checked one by one)."""
    where = dict(uses)
    for name, p in uses.items():
        spec = plan.models.get(name)
        for member in spec.members if spec is not None else []:
            where.setdefault(member, p)
    out: list[Diagnostic] = []
    for name, model in store.models.items():
        use = where.get(name)
        span = use.span if use is not None else None
        output, failure = _forward(model, example)
        if failure is not None:
            out.append(_input_error(plan, name, model, example, failure, span))
            continue
        try:
            logits = logits_of(output)
        except KdrError as exc:
            out += [
                d.model_copy(
                    update={"span": span, "message": d.message.replace("a model's", f"`{name}`'s")}
                )
                for d in exc.diagnostics
            ]
            continue
        if logits.dim() != 2 or logits.shape[-1] != data.num_classes:
            out.append(_width_error(plan, name, tuple(logits.shape), data.num_classes, span))
    return out


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[Any, Exception | None]:
    """``model(x)`` in eval mode without gradients (the mode restored), or the exception."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x), None
    except KdrError:
        raise
    except Exception as exc:  # any failure of the user's model on this input is reported
        return None, exc
    finally:
        model.train(was_training)


def smallest_side(model: nn.Module, example: torch.Tensor) -> int | None:
    """The smallest of :data:`TRIAL_SIDES` above the example's side on which ``model`` runs
    (a batch of two blank images), or None (its failure is not about the image size)."""
    if example.dim() != 4:
        return None
    n, channels, height, width = example.shape
    for side in TRIAL_SIDES:
        if side <= max(height, width):
            continue
        trial = torch.zeros(max(n, 2), channels, side, side, dtype=example.dtype)
        _, failure = _forward(model, trial)
        if failure is None:
            return side
    return None


def _input_error(
    plan: Plan,
    name: str,
    model: nn.Module,
    example: torch.Tensor,
    failure: Exception,
    span: Any,
) -> Diagnostic:
    lines = str(failure).strip().splitlines()
    reason = lines[0] if lines else type(failure).__name__
    shape = "x".join(str(s) for s in example.shape[1:])
    side = smallest_side(model, example)
    if side is None:
        help_text = (
            f"`{name}` fails on every image size kdr tried (up to {TRIAL_SIDES[-1]}x"
            f"{TRIAL_SIDES[-1]}): check the input it expects (channels, size) against the data"
        )
    else:
        help_text = (
            f"`{name}` runs on {side}x{side} images, the smallest size kdr tried that works: "
            f"{_resize_fix(plan, side)}"
        )
    return error(
        "KDR507",
        f"`{name}` ({_constructor(plan, name)}) cannot take the data's images ({shape}): {reason}",
        span,
        Note(kind="help", message=help_text),
    )


def _resize_fix(plan: Plan, side: int) -> str:
    """How to give the data ``side``-pixel images: the recipe's data call with ``image_size``,
    or, for a data factory (kdr passes it no image size), what its images must be."""
    call = plan.data or {}
    name = str(call.get("call", "data"))
    if call.get("factory"):
        return f"make `{name}` return images of at least {side}x{side}"
    kwargs = {**(call.get("kwargs") or {}), "image_size": side}
    args = [_show(a) for a in call.get("args") or []]
    args += [f"{k}={_show(v)}" for k, v in kwargs.items()]
    return f"use `{name}({', '.join(args)})` or larger images"


def _show(value: Any) -> str:
    """A plan value as the recipe writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _constructor(plan: Plan, name: str) -> str:
    spec = plan.models.get(name)
    return str(spec.constructor) if spec is not None and spec.constructor else name


def _width_error(
    plan: Plan, name: str, shape: tuple[int, ...], classes: int, span: Any
) -> Diagnostic:
    got = f"{shape[-1]} outputs" if len(shape) == 2 else f"outputs of shape {shape}"
    return error(
        "KDR501",
        f"`{name}` gives {got} but the data has {classes} classes",
        span,
        Note(kind="help", message=class_fix(plan, name, classes)),
    )


def class_fix(plan: Plan, name: str, classes: int) -> str:
    """How to give ``name`` the data's classes (each fix is tested to work)."""
    spec = plan.models.get(name)
    if spec is not None and spec.kind == "factory":
        return (
            f"`{name}`'s factory must build {classes} outputs: it receives `num_classes` "
            "from the data (see docs/factories.md)"
        )
    field = "num_classes"
    if spec is not None and (spec.constructor or "").startswith("hf."):
        field = "num_labels"
    return (
        f"build `{name}` with {field}={classes}, or leave `{field}` out: kdr takes it from the data"
    )
