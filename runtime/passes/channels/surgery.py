"""Surgery: slice each layer to its kept channels, with one pruner per layer type (a registry).

Each touched Conv/Linear/norm gets smaller sliced parameters and updated ``in_channels`` /
``out_channels`` / ``groups`` / ``num_features`` / ``normalized_shape``; layer-scale parameters
are sliced too. Keeping module identity (rather than swapping in new objects) keeps hooks,
names and GraphModule references valid; the tensors really are smaller, there are no masks.

The record is ``{"layers": {name: {"out"|"in"|"norm": kept}}, "params": {name: {"dim": d,
"keep": kept}}}``; :func:`apply_record` is both the pass's surgery and its replay onto a freshly
built model (build -> replay -> ``load_state_dict``). A pruner is looked up along the layer's
MRO, so subclasses (ConvNeXt's ``LayerNorm2d``) use their base's.

>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
>>> _ = apply_record(m, {"layers": {"0": {"out": [0, 2]}, "1": {"norm": [0, 2]}}})
>>> m[0].weight.shape[0], m[1].num_features
(2, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, error

from ..trace import type_name
from .attr_dims import count_pruner, fix_attributes

#: ``(layer, {"out"|"in"|"norm": kept positions})``, in place.
Pruner = Callable[[Any, dict[str, list[int]]], None]
PRUNERS: dict[type[nn.Module], Pruner] = {}
#: The same by ``"module.QualName"``, for optional libraries kdr must not import to register
#: (timm's LeViT attention): importing timm costs seconds in every process.
PRUNERS_BY_NAME: dict[str, Pruner] = {}


def register_pruner(*types: type[nn.Module]) -> Callable[[Pruner], Pruner]:
    def register(fn: Pruner) -> Pruner:
        for t in types:
            PRUNERS[t] = fn
        return fn

    return register


def pruner_for(m: nn.Module) -> Pruner | None:
    """By the layer's MRO, else a block whose slice prefix count the record carries (DPN)."""
    for t in type(m).__mro__:
        found = PRUNERS.get(t) or PRUNERS_BY_NAME.get(type_name(t))
        if found is not None:
            return found
    return count_pruner(m)


def set_tensor(owner: nn.Module, name: str, value: torch.Tensor | None) -> None:
    """Replace parameter or buffer ``name`` of ``owner``, keeping its kind and grad flag."""
    old = getattr(owner, name)
    if old is None or value is None:
        return
    if isinstance(old, nn.Parameter):
        setattr(owner, name, nn.Parameter(value.contiguous(), requires_grad=old.requires_grad))
    else:
        owner._buffers[name] = value.contiguous()


def take(t: torch.Tensor | None, keep: list[int], dim: int = 0) -> torch.Tensor | None:
    if t is None:
        return None
    return t.detach().index_select(dim, torch.tensor(keep, dtype=torch.long, device=t.device))


@register_pruner(nn.modules.conv._ConvNd)
def prune_conv(m: nn.modules.conv._ConvNd, keeps: dict[str, list[int]]) -> None:
    g, cin, cout = m.groups, m.in_channels, m.out_channels
    out = keeps.get("out", list(range(cout)))
    inp = keeps.get("in", list(range(cin)))
    w = m.weight.detach()
    if g == 1:
        w = w[out][:, inp]
    else:  # group k maps input chunk k to output chunk k; a group losing all of both goes
        in_pg, out_pg, blocks = cin // g, cout // g, []
        for k in range(g):
            cols = [i - k * in_pg for i in inp if i // in_pg == k]
            rows = [o for o in out if o // out_pg == k]
            if rows or cols:
                blocks.append(w[rows][:, cols])
        if not blocks or len({b.shape for b in blocks}) != 1 or not blocks[0].numel():
            raise KdrError(error("KDR999", f"unbalanced channel groups in `{type(m).__name__}`"))
        w, g = torch.cat(blocks), len(blocks)
    set_tensor(m, "weight", w)
    set_tensor(m, "bias", take(m.bias, out))
    m.in_channels, m.out_channels, m.groups = len(inp), len(out), g


@register_pruner(nn.Linear)
def prune_linear(m: nn.Linear, keeps: dict[str, list[int]]) -> None:
    out, inp = keeps.get("out"), keeps.get("in")
    if out is not None:
        set_tensor(m, "weight", take(m.weight, out))
        set_tensor(m, "bias", take(m.bias, out))
        m.out_features = len(out)
    if inp is not None:
        set_tensor(m, "weight", take(m.weight, inp, 1))
        m.in_features = len(inp)


@register_pruner(nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
def prune_norm(m: nn.Module, keeps: dict[str, list[int]]) -> None:
    keep = keeps.get("norm")
    if keep is None:
        return
    for name in ("weight", "bias", "running_mean", "running_var"):
        if isinstance(getattr(m, name, None), torch.Tensor):
            set_tensor(m, name, take(getattr(m, name), keep))
    if isinstance(m, nn.GroupNorm):
        if m.num_groups == m.num_channels:
            m.num_groups = len(keep)
        m.num_channels = len(keep)
    elif isinstance(m, nn.LayerNorm):
        m.normalized_shape = (len(keep),)
    else:
        m.num_features = len(keep)  # type: ignore[assignment]


def apply_record(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Apply kept indices to ``model`` in place (the pass's surgery and its replay)."""
    for name, keeps in record.get("layers", {}).items():
        m = model.get_submodule(name)
        pruner = pruner_for(m)
        if pruner is None:
            raise KdrError(error("KDR999", f"no channel pruner for `{type(m).__name__}` `{name}`"))
        pruner(m, keeps)
    for name, spec in record.get("params", {}).items():
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        set_tensor(owner, attr, take(getattr(owner, attr), spec["keep"], spec["dim"]))
    fix_attributes(model)
    return model


__all__ = ["PRUNERS", "PRUNERS_BY_NAME", "Pruner", "apply_record", "prune_conv", "register_pruner"]
