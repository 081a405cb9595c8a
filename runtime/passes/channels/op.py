"""``prune.channels``: the plan op, structured pruning that physically removes channels.

With ``params.ratio`` the pass prunes that share of every channel group in scope; with
``params.budget`` it first searches the ratio that meets the budget (:mod:`.budget`): one op,
one record and one replay, whichever way the ratio was chosen. The record is the kept indices
of :mod:`.surgery`; :func:`replay_channels` applies it to a freshly built model so a pruned
checkpoint loads (build -> replay -> ``load_state_dict``).

>>> from runtime.passes.base import PASSES
>>> PASSES["prune.channels"].replay is replay_channels
True
"""

from __future__ import annotations

from typing import Any

from torch import nn

from compiler.ops import PruneChannelsParams

from ..base import PassContext, PassResult, register_pass
from ..scopes import Scope
from .budget import Trial, search_ratio
from .graph import DependencyGraph
from .importance import Batches
from .prune import prune_model
from .surgery import apply_record

#: Seed of the ``random`` criterion. The plan carries none for it, and a fixed one makes the
#: model-aware dry run (``kdr check --models``) pick the same channels as the run.
SEED = 0


def replay_channels(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    return apply_record(model, record)


def _fixed(batches: Batches | None) -> Batches | None:
    """The context's batches, drawn once: a budget search scores every trial and the final cut
    on the same data, so a data-driven criterion (taylor) cuts what the search measured."""
    if batches is None:
        return None
    drawn: list[Any] = []

    def same() -> list[Any]:
        if not drawn:
            drawn.append(next(iter(batches())))
        return drawn

    return same


@register_pass("prune.channels", replay=replay_channels)
def prune_channels(module: nn.Module, params: PruneChannelsParams, ctx: PassContext) -> PassResult:
    """Prune ``params.ratio`` of the channels in scope, or as many as ``params.budget`` needs."""
    scope = Scope.of(params)
    how = Trial(params.criterion, params.ranking, scope, _fixed(ctx.batches), SEED)
    extra: dict[str, Any] = {}
    dg: DependencyGraph | None = None
    if params.budget is not None:
        ratio, extra, dg = search_ratio(module, ctx.example_inputs, params.budget, how)
    else:
        assert params.ratio is not None  # the params model: exactly one of ratio and budget
        ratio = params.ratio
    record, info = prune_model(
        module, ctx.example_inputs, ratio, how.criterion, how.ranking, scope, how.batches, SEED, dg
    )
    info.update(extra)
    return PassResult(module, modified=bool(record["layers"]), record=record, info=info)


__all__ = ["prune_channels", "replay_channels"]
