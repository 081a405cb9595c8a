"""One model, one tool: build it small, prune 50% of its channels, and check what came out.

Runs inside a child process (``bench/prune_zoo.py`` forks one per model and tool), so a model
that hangs, crashes or eats the memory costs its own row only. Every step catches its own
exception: a row says how far each tool got, never just "failed".

- **Input size**: the smallest of ``SIZES`` whose eval forward works. Models built for a fixed
  resolution (ViT-like) get ``img_size`` when their constructor takes it, so they run at the
  small size too; the row records both the size and whether ``img_size`` was passed.
- **kdr**: ``prune_model(model, x, 0.5, "l1", "local")``, everything in scope. A ``KdrError`` is
  a refusal (``declined``, with its code and message); any other exception is an ``error``.
  The replay builds the model afresh, applies the JSON round-tripped record, loads the pruned
  state dict (strict) and must give the pruned model's outputs.
- **Torch-Pruning**: the settings of ``bench/prune_vs_torch_pruning.py`` (``MetaPruner``,
  ``GroupMagnitudeImportance(p=1)``, local ratio 0.5); the classifier (timm's
  ``get_classifier()``) is ignored, as kdr never prunes a classifier's outputs.
- **Checks**, for both: eval forward with the dense model's output shape; one training step
  (train mode, batch of 2, cross-entropy, ``backward``, SGD step) with a finite loss.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from typing import Any

import timm
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.passes.channels import apply_record, count_macs, count_params, prune_model

from .summary import tally

SIZES = (64, 96, 128, 224)
RATIO = 0.5
Row = dict[str, Any]


def short(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line`` of an exception, or ``KDRxxx: message (help: ...)`` for kdr's."""
    if isinstance(exc, KdrError) and exc.diagnostics:
        d = exc.diagnostics[0]
        helps = [n.message for n in d.notes if n.kind == "help"]
        text = f"{d.code}: {d.message}" + (f" (help: {helps[0]})" if helps else "")
    else:
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def create(name: str, size: int, img_size: bool) -> nn.Module:
    """The timm model with random weights (seed 0), 10 classes, in eval mode."""
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 10}
    if img_size:
        kwargs["img_size"] = size
    return timm.create_model(name, **kwargs).eval()


def logits(out: Any) -> torch.Tensor:
    """The first tensor of a model's output (some heads return a tuple in training)."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    assert isinstance(out, torch.Tensor), f"model returned {type(out).__name__}"
    return out


def build(name: str, size: int, plain: nn.Module | None = None) -> tuple[nn.Module, bool]:
    """The model for ``size``: with ``img_size`` if the constructor takes it, else ``plain``
    (the one resolution-free build, reused across sizes)."""
    try:
        return create(name, size, True), True
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
    return plain or create(name, size, False), False


def choose_input(name: str) -> tuple[nn.Module, int, bool, str]:
    """``(model, size, img_size passed, why larger sizes were needed)``: first size that runs."""
    failures: list[str] = []
    plain: nn.Module | None = None
    for size in SIZES:
        try:
            model, img_size = build(name, size, plain)
            plain = None if img_size else model
            with torch.no_grad():
                logits(model(torch.randn(1, 3, size, size)))
            return model, size, img_size, "; ".join(failures)
        except Exception as exc:  # any failure means: try a larger input
            failures.append(f"{size}: {short(exc, 120)}")
    raise RuntimeError("no input size works: " + "; ".join(failures))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def forward_ok(model: nn.Module, x: torch.Tensor, shape: torch.Size) -> tuple[bool, str]:
    try:
        model.eval()
        with torch.no_grad():
            out = logits(model(x))
        if out.shape != shape:
            return False, f"output shape {tuple(out.shape)} instead of {tuple(shape)}"
        return True, ""
    except Exception as exc:
        return False, short(exc)


def train_step_ok(model: nn.Module, size: int) -> tuple[bool, str]:
    """One SGD step in train mode on a batch of two (batch norm needs more than one sample)."""
    try:
        model.train()
        torch.manual_seed(1)
        x, y = torch.randn(2, 3, size, size), torch.tensor([1, 2])
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
        loss = nn.functional.cross_entropy(logits(model(x)), y)
        loss.backward()
        opt.step()
        model.eval()
        value = loss.item()
        return (True, "") if math.isfinite(value) else (False, f"loss {value}")
    except Exception as exc:
        return False, short(exc)


def reasons(found: Any) -> list[str]:
    """Every reason string in ``info["blocked"]`` / ``info["kept_whole"]`` (shape-agnostic:
    a dict of name -> reason, a list of reasons, or of records with a ``reason``)."""
    if found is None:
        return []
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):
        if isinstance(found.get("reason"), str):
            return [found["reason"]]
        return [r for v in found.values() for r in reasons(v)]
    if isinstance(found, (list, tuple, set)):
        return [r for v in found for r in reasons(v)]
    return [str(found)]


def replay_ok(
    name: str, size: int, img_size: bool, record: dict[str, Any], pruned: nn.Module, x: torch.Tensor
) -> tuple[bool, str]:
    """Build afresh, apply the record, load the pruned weights: same outputs as the pruned."""
    try:
        fresh = create(name, size, img_size)
        apply_record(fresh, json.loads(json.dumps(record)))
        fresh.load_state_dict(pruned.state_dict())
        fresh.eval(), pruned.eval()
        with torch.no_grad():
            a, b = logits(fresh(x)), logits(pruned(x))
        if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
            return False, f"replayed outputs differ by {float((a - b).abs().max()):.3g}"
        return True, ""
    except Exception as exc:
        return False, short(exc)


def prune_tp(model: nn.Module, x: torch.Tensor) -> None:
    import torch_pruning as tp

    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else ()
    heads = head if isinstance(head, (tuple, list)) else (head,)  # levit: (head, head_dist)
    ignored: list[nn.Module] = [
        m
        for h in heads
        if isinstance(h, nn.Module)
        for m in h.modules()
        if list(m.parameters(recurse=False))
    ]
    linears: list[nn.Module] = [m for m in model.modules() if isinstance(m, nn.Linear)]
    ignored = ignored or linears[-1:]  # no timm head: as bench/prune_vs_torch_pruning.py
    pruner = tp.pruner.MetaPruner(
        model,
        x,
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=RATIO,
        global_pruning=False,
        ignored_layers=ignored,
    )
    pruner.step()


def prune_kdr(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
    return prune_model(model, x, RATIO, criterion="l1", ranking="local")


def measure(name: str, tool: str, send: Callable[[Row], None], size: int | None = None) -> None:
    """Measure ``tool`` ("kdr" or "tp") on ``name``; ``send`` gets the row after every step
    (so a timeout keeps what was measured). ``size``: the input size found by an earlier
    child (``None``: search it)."""
    row: Row = {"tool": tool}
    if size is None:
        base, size, img_size, why = choose_input(name)
        row["why_larger_input"] = why
    else:
        base, img_size = build(name, size)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        shape = logits(base(x)).shape
    row.update(input=size, img_size=img_size, base_params=count_params(base))
    row["base_macs"] = count_macs(base, x)
    send(row)
    model = copy.deepcopy(base)
    try:
        if tool == "kdr":
            (record, info), row["prune_s"] = timed(lambda: prune_kdr(model, x))
            blocked = reasons(info.get("blocked", info.get("groups_unprunable")))
            kept_whole = reasons(info.get("kept_whole"))
            row.update(blocked=tally(blocked), kept_whole=tally(kept_whole))
            row["reason_examples"] = (blocked + kept_whole)[:3]
            row["groups_pruned"] = info.get("groups_pruned")
        else:
            _, row["prune_s"] = timed(lambda: prune_tp(model, x))
        row["status"] = "pruned"
    except KdrError as exc:
        row.update(status="declined", error=short(exc, 1000))
    except Exception as exc:
        row.update(status="error", error=short(exc))
    if row["status"] != "pruned":
        send(row)
        return
    row["params_ratio"] = count_params(model) / row["base_params"]
    row["forward"], row["forward_error"] = forward_ok(model, x, shape)
    if row["forward"]:
        try:
            row["macs_ratio"] = count_macs(model, x) / max(row["base_macs"], 1)
        except Exception as exc:  # the forward ran, so this is the counter's problem
            row["macs_ratio"], row["macs_error"] = None, short(exc)
    send(row)
    if tool == "kdr":
        row["replay"], row["replay_error"] = replay_ok(name, size, img_size, record, model, x)
        send(row)
    row["train_step"], row["train_error"] = train_step_ok(model, size)
    send(row)


__all__ = ["RATIO", "SIZES", "choose_input", "measure", "reasons", "short"]
