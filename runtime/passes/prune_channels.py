"""``prune.channels``: structured pruning that physically removes channels (real speedup).

The pass builds the channel :class:`~runtime.passes.depgraph.DependencyGraph`, scores every
prunable group, picks the channels to drop (``local``: the same ratio in every group;
``global``: one threshold over importance normalised by each group's mean, keeping at least
one channel per group), and then rewrites the layers *in place*: each touched Conv/Linear/
norm gets smaller sliced parameters and updated ``in_channels`` / ``out_channels`` / ``groups``
/ ``num_features`` / ``normalized_shape``; layer-scale parameters are sliced too. Keeping
module identity (rather than swapping in new objects) keeps hooks, names and GraphModule
references valid; the tensors really are smaller, there are no masks.

Everything that can fail (scopes, ratio, empty layers) is decided on the plan *before* the
model is touched. The record is ``{"layers": {name: {"out"|"in"|"norm": kept}}, "params":
{name: {"dim": d, "keep": kept}}}``; :func:`apply_record` replays it onto a freshly built
model so a pruned checkpoint loads (build -> replay -> ``load_state_dict``).

When params hold ``budget`` (``{"kind": "params"|"macs", "value": N | "percent": P}``), the
same op first searches the ratio that meets it (:mod:`runtime.passes.budget`): one op, one
replay format, whichever way the ratio was chosen.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> record, info = prune_model(m, torch.randn(1, 3, 8, 8), ratio=0.5)
>>> m[0].out_channels, m[1].num_features, m[3].in_channels
(4, 4, 4)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error

from .base import PassContext, PassResult, register_pass
from .depgraph import DependencyGraph, Group, build
from .importance import CRITERIA, Batches, group_importance
from .scopes import Scope


def _kdr502(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR502", message, None, Note(kind="help", message=help_text)))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def select_groups(dg: DependencyGraph, scope: Scope) -> list[Group]:
    """Prunable groups in scope: a producer selected, no member protected by ``except``."""
    chosen = []
    for g in dg.prunable_groups():
        targets = {dg.endpoints[k].target for k in g.members}
        if any(scope.selects(p) for p in g.producers) and not any(
            scope.protects(t) for t in targets
        ):
            chosen.append(g)
    return chosen


def _n_prune(ratio: float, n: int) -> int:
    """Exact ratio, rounded half up, never emptying: at most ``n - 1``."""
    return max(0, min(math.floor(ratio * n + 0.5), n - 1))


def _lowest(scores: torch.Tensor, positions: list[int], k: int) -> list[int]:
    if k <= 0:
        return []
    sub = scores[positions]
    order = torch.argsort(sub, stable=True)[:k].tolist()
    return [positions[i] for i in order]


def choose_pruned(
    groups: list[Group], scores: dict[int, torch.Tensor], ratio: float, ranking: str
) -> set[int]:
    """Class roots to remove. Balanced chunks (grouped convs) lose the same count each."""
    counts: dict[int, int] = {}
    if ranking == "local":
        for g in groups:
            per = g.size // len(g.chunks) if g.chunks else g.size
            counts[g.index] = _n_prune(ratio, per) * (len(g.chunks) if g.chunks else 1)
    else:
        flat: list[tuple[float, int]] = []
        for g in groups:
            s = scores[g.index]
            mean = float(s.mean()) if g.size else 0.0
            norm = s / mean if mean > 0 else torch.zeros_like(s)
            flat += [(float(v), g.index) for v in norm]
        flat.sort(key=lambda t: t[0])
        total = math.floor(ratio * len(flat) + 0.5)
        for _, gi in flat[:total]:
            counts[gi] = counts.get(gi, 0) + 1
        for g in groups:
            k = len(g.chunks) if g.chunks else 1
            per = g.size // k
            counts[g.index] = min(counts.get(g.index, 0) // k, per - 1) * k
    pruned: set[int] = set()
    for g in groups:
        s, n = scores[g.index], counts.get(g.index, 0)
        chunks = g.chunks or [list(range(g.size))]
        for chunk in chunks:
            pruned |= {g.classes[p] for p in _lowest(s, chunk, n // len(chunks))}
    return pruned


def make_record(dg: DependencyGraph, pruned: set[int]) -> dict[str, Any]:
    """JSON-able kept indices per layer / parameter; KDR502 if any layer would be emptied."""
    record: dict[str, Any] = {"layers": {}, "params": {}}
    for key, keep in sorted(dg.keep_indices(pruned).items()):
        ep = dg.endpoints[key]
        if not keep:
            raise _kdr502(
                f"pruning would remove every channel of `{ep.target}`",
                "lower the ratio, or scope the layer out with `except`",
            )
        if ep.kind == "param":
            record["params"][ep.target] = {"dim": ep.dim, "keep": keep}
        else:
            record["layers"].setdefault(ep.target, {})[ep.kind] = keep
    return record


# -- surgery ----------------------------------------------------------------------------------
def _set(owner: nn.Module, name: str, value: torch.Tensor | None) -> None:
    old = getattr(owner, name)
    if old is None or value is None:
        return
    if isinstance(old, nn.Parameter):
        setattr(owner, name, nn.Parameter(value.contiguous(), requires_grad=old.requires_grad))
    else:
        owner._buffers[name] = value.contiguous()


def _take(t: torch.Tensor | None, keep: list[int], dim: int = 0) -> torch.Tensor | None:
    if t is None:
        return None
    return t.detach().index_select(dim, torch.tensor(keep, dtype=torch.long, device=t.device))


def _prune_conv(m: nn.modules.conv._ConvNd, out: list[int] | None, inp: list[int] | None) -> None:
    g, cin, cout = m.groups, m.in_channels, m.out_channels
    out = list(range(cout)) if out is None else out
    inp = list(range(cin)) if inp is None else inp
    w = m.weight.detach()
    if g == 1:
        w = w[out][:, inp]
    elif cin == g:  # depthwise: input channel k feeds exactly output channel k
        w, g = w[out], len(out)
    else:
        in_pg, out_pg, rows = cin // g, cout // g, []
        for k in range(g):
            cols = [i - k * in_pg for i in inp if i // in_pg == k]
            rows.append(w[[o for o in out if o // out_pg == k]][:, cols])
        if len({r.shape for r in rows}) != 1:
            raise KdrError(error("KDR999", f"unbalanced channel groups in `{type(m).__name__}`"))
        w = torch.cat(rows)
    _set(m, "weight", w)
    _set(m, "bias", _take(m.bias, out))
    m.in_channels, m.out_channels, m.groups = len(inp), len(out), g


def _prune_linear(m: nn.Linear, out: list[int] | None, inp: list[int] | None) -> None:
    if out is not None:
        _set(m, "weight", _take(m.weight, out))
        _set(m, "bias", _take(m.bias, out))
        m.out_features = len(out)
    if inp is not None:
        _set(m, "weight", _take(m.weight, inp, 1))
        m.in_features = len(inp)


def _prune_norm(m: nn.Module, keep: list[int]) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        if isinstance(getattr(m, name, None), torch.Tensor):
            _set(m, name, _take(getattr(m, name), keep))
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
        if isinstance(m, nn.modules.conv._ConvNd):
            _prune_conv(m, keeps.get("out"), keeps.get("in"))
        elif isinstance(m, nn.Linear):
            _prune_linear(m, keeps.get("out"), keeps.get("in"))
        elif "norm" in keeps:
            _prune_norm(m, keeps["norm"])
    for name, spec in record.get("params", {}).items():
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        _set(owner, attr, _take(getattr(owner, attr), spec["keep"], spec["dim"]))
    return model


def replay_channels(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    return apply_record(model, record)


# -- the pass ---------------------------------------------------------------------------------
def _check(ratio: Any, criterion: Any, ranking: Any) -> float:
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) < 1.0:
        raise _kdr502(
            f"pruning ratio must be in [0, 1), got {ratio!r}",
            "write e.g. `prune 50% channels`; 100% would empty every layer",
        )
    if criterion not in CRITERIA:
        raise _kdr502(f"unknown importance `{criterion}`", f"use one of {', '.join(CRITERIA)}")
    if ranking not in ("local", "global"):
        raise _kdr502(f"unknown ranking `{ranking}`", "use `local` or `global`")
    return float(ratio)


def prune_model(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ratio: float,
    criterion: str = "l1",
    ranking: str = "local",
    scope: Scope | None = None,
    batches: Batches | None = None,
    seed: int = 0,
    dg: DependencyGraph | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prune ``model`` in place; return ``(record, info)``. Raises KDR500 / KDR502."""
    ratio = _check(ratio, criterion, ranking)
    scope = scope or Scope()
    dg = dg or build(model, example_inputs, tuple(scope.exclude))
    groups = select_groups(dg, scope)
    if not groups:
        reasons = sorted({g.blocked for g in dg.groups if g.blocked})[:3]
        raise _kdr502(
            "nothing to prune: no channel group is both prunable and in scope",
            "check `in` / `except`; blocked because: " + ("; ".join(reasons) or "no layers"),
        )
    before = count_params(model)
    scores = group_importance(dg, model, groups, criterion, batches, seed)
    pruned = choose_pruned(groups, scores, ratio, ranking)
    record = make_record(dg, pruned)
    apply_record(model, record)
    info = {
        "ratio": ratio,
        "criterion": criterion,
        "ranking": ranking,
        "params_before": before,
        "params_after": count_params(model),
        "channels_removed": len(pruned),
        "groups_pruned": len(groups),
        "groups_unprunable": {
            ", ".join(g.producers[:2]): g.blocked for g in dg.groups if g.blocked
        },
    }
    return record, info


@register_pass("prune.channels", replay=replay_channels)
def prune_channels(module: nn.Module, params: dict[str, Any], ctx: PassContext) -> PassResult:
    """The plan op: ``{"ratio", "criterion", "ranking", "include", "exclude"[, "budget"]}``."""
    scope = Scope.from_params(params)
    criterion = params.get("criterion", "l1")
    ranking = params.get("ranking", "local")
    seed = int(params.get("seed", 0))
    ratio = params.get("ratio", 0.5)
    extra: dict[str, Any] = {}
    dg = None
    if params.get("budget") is not None:
        from .budget import search_ratio  # budget imports this module

        ratio, extra, dg = search_ratio(
            module, ctx, params["budget"], criterion, ranking, scope, seed
        )
    record, info = prune_model(
        module, ctx.example_inputs, ratio, criterion, ranking, scope, ctx.batches, seed, dg
    )
    info.update(extra)
    return PassResult(module, modified=bool(record["layers"]), record=record, info=info)
