"""Head pruning: find attention modules, score their heads, choose, record and slice.

Module-level, no torch.fx: attention modules are found by kind (:mod:`.layouts`). ``local``
removes the same share of every module's heads (rounded half up, at least one kept);
``global`` ranks every head in scope together, each module's scores divided by its mean so
layers of different scale compare, again keeping at least one head per module. Slicing takes
real rows and columns out of the tensors (no masks) and the record
``{"heads": {module_path: kept_head_indices}}`` replays the same cut onto a freshly built model
(:func:`apply_heads`), after which a checkpoint of the pruned model loads.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.MultiheadAttention(8, 4, batch_first=True))
>>> record, info = prune_heads_of(m, 0.5)
>>> m[0].num_heads, m[0].q_proj.weight.shape, info["heads_after"]
(2, torch.Size([4, 8]), 2)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compiler.vocab import HEAD_CRITERIA, RANKINGS
from recipe_lang.diagnostics import KdrError, error

from ..ranking import Batches, kdr502, n_prune, taylor_gradients
from ..scopes import Scope
from .layouts import Layout, layout_for, prunable
from .mha import PrunableMultiheadAttention


def attention_modules(model: nn.Module, scope: Scope) -> dict[str, Layout]:
    """Layouts of every head-prunable attention module in scope, by qualified name (converting
    ``nn.MultiheadAttention`` to its prunable stand-in on the way)."""
    found: dict[str, Layout] = {}
    for path, m in list(model.named_modules()):
        if not path or not scope.selects(path):
            continue
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        m = prunable(parent, name, getattr(parent, name, m))
        lay = layout_for(model, path, m)
        if lay is not None:
            found[path] = lay
    return found


def disable_nested_fast_path(model: nn.Module) -> None:
    """An ``nn.TransformerEncoder`` whose layers now hold prunable attention must not take its
    nested-tensor fast path (it reads the packed ``in_proj_weight`` and feeds nested tensors)."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoder) and any(
            isinstance(getattr(layer, "self_attn", None), PrunableMultiheadAttention)
            for layer in m.layers
        ):
            m.use_nested_tensor = False


def head_scores(
    layouts: dict[str, Layout],
    criterion: str,
    model: nn.Module,
    batches: Batches | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Importance of every unit of every module: the ``criterion`` norm of its scored parts."""
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed)
        return {
            p: torch.rand(lay.units, generator=gen, dtype=torch.float64)
            for p, lay in layouts.items()
        }
    if criterion == "taylor":
        taylor_gradients(model, batches, "prune heads")
    out: dict[str, torch.Tensor] = {}
    try:
        for path, lay in layouts.items():
            acc = torch.zeros(lay.units, dtype=torch.float64)
            for part in lay.parts:
                t = getattr(part.owner, part.name)
                if not part.scored or t is None:
                    continue
                with torch.no_grad():
                    if criterion == "taylor":
                        t = (t * t.grad).abs() if t.grad is not None else torch.zeros_like(t)
                    t = t.detach().movedim(part.dim, 0)
                    for u, rows in enumerate(part.blocks):
                        s = t[rows].double()
                        acc[u] += float(s.pow(2).sum() if criterion == "l2" else s.abs().sum())
            out[path] = acc
    finally:
        if criterion == "taylor":
            model.zero_grad(set_to_none=True)
    return out


def choose_kept(
    scores: dict[str, torch.Tensor], ratio: float, ranking: str
) -> dict[str, list[int]]:
    """Kept unit indices per module (ascending), at least one per module."""
    drop: dict[str, set[int]] = {p: set() for p in scores}
    if ranking == "local":
        for p, s in scores.items():
            order = torch.argsort(s, stable=True).tolist()
            drop[p] = set(order[: n_prune(ratio, len(order))])
    else:
        flat: list[tuple[float, str, int]] = []
        for p, s in scores.items():
            mean = float(s.mean())
            norm = s / mean if mean > 0 else torch.zeros_like(s)
            flat += [(float(v), p, u) for u, v in enumerate(norm.tolist())]
        flat.sort(key=lambda t: t[0])
        total = math.floor(ratio * len(flat) + 0.5)
        for _, p, u in flat:
            if total <= 0:
                break
            if len(drop[p]) < len(scores[p]) - 1:
                drop[p].add(u)
                total -= 1
    return {p: [u for u in range(len(s)) if u not in drop[p]] for p, s in scores.items()}


def _take(t: torch.Tensor, dim: int, keep: list[int]) -> torch.Tensor:
    index = torch.tensor(keep, dtype=torch.long, device=t.device)
    return t.detach().index_select(dim, index).contiguous()


def slice_heads(lay: Layout, kept: list[int]) -> None:
    """Keep units ``kept`` of ``lay`` in place: smaller tensors, updated sizes and counts."""
    for part in lay.parts:
        old = getattr(part.owner, part.name)
        if old is None:
            continue
        rows = [i for u in kept for i in part.blocks[u]]
        new = _take(old, part.dim, rows)
        if isinstance(old, nn.Parameter):
            setattr(part.owner, part.name, nn.Parameter(new, requires_grad=old.requires_grad))
        else:
            part.owner._buffers[part.name] = new
    for layer in lay.layers:
        if isinstance(layer, nn.Linear):
            layer.out_features, layer.in_features = layer.weight.shape
        elif isinstance(layer, nn.LayerNorm):
            layer.normalized_shape = (int(layer.weight.shape[0]),)
    lay.finish(len(kept))


def apply_heads(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """The pass's surgery and its replay: keep ``record["heads"][path]`` of each module."""
    for path, kept in record.get("heads", {}).items():
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        m = prunable(parent, name, getattr(parent, name))
        lay = layout_for(model, path, m)
        if lay is None or not kept or max(kept) >= lay.units:
            raise KdrError(
                error("KDR999", f"cannot replay the head pruning of `{path}` ({type(m).__name__})")
            )
        slice_heads(lay, list(kept))
    disable_nested_fast_path(model)
    return model


def prune_heads_of(
    model: nn.Module,
    ratio: float,
    criterion: str = "l1",
    ranking: str = "local",
    scope: Scope | None = None,
    batches: Batches | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prune ``ratio`` of the heads in scope, in place; return ``(record, info)`` (KDR502)."""
    if not 0.0 < ratio < 1.0:
        raise kdr502(
            f"pruning ratio must be in (0, 1), got {ratio!r}", "write e.g. `prune 25% heads`"
        )
    if criterion not in HEAD_CRITERIA or ranking not in RANKINGS:
        raise kdr502(f"unknown head criterion or ranking `{criterion}`/`{ranking}`", "use `by l1`")
    scope = scope or Scope()
    before = sum(p.numel() for p in model.parameters())
    layouts = {p: lay for p, lay in attention_modules(model, scope).items() if lay.units > 1}
    if not layouts:
        raise kdr502(
            "nothing to prune: no attention module with more than one head is in scope",
            "heads are pruned in nn.MultiheadAttention, timm Attention, Hugging Face BERT/ViT "
            "self-attention and Llama-style attention; check `in` / `except`",
        )
    kept = choose_kept(head_scores(layouts, criterion, model, batches, seed), ratio, ranking)
    for path, lay in layouts.items():
        slice_heads(lay, kept[path])
    disable_nested_fast_path(model)
    info = {
        "ratio": ratio,
        "criterion": criterion,
        "ranking": ranking,
        "modules": len(layouts),
        "heads_before": sum(lay.units for lay in layouts.values()),
        "heads_after": sum(len(k) for k in kept.values()),
        "params_before": before,
        "params_after": sum(p.numel() for p in model.parameters()),
    }
    return {"heads": kept}, info


__all__ = [
    "apply_heads",
    "attention_modules",
    "choose_kept",
    "head_scores",
    "prune_heads_of",
    "slice_heads",
]
