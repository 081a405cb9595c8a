"""How much of a channel prune was done, and what stopped the rest.

``prune 50% channels`` asks for half the channels of every group *in scope*; a group kdr cannot
follow through every op (an op without a rule, a block kept whole) is blocked and keeps all its
channels. On a model mostly made of such groups the prune removes far less than asked
(levit_128s: 1% of its parameters for 50% asked). The prune's info records the achieved share
(``removed_fraction``: of the channels of every group in scope, blocked ones included, the
model's outputs not) beside the asked one (``asked_fraction``), and the main reasons
(:func:`block_summary`); below :data:`SHORTFALL` of the ask, :func:`shortfall_message` says so
(KDR506 in ``kdr check --models``, a note in the report).

>>> print(shortfall_message({"asked_fraction": 0.5, "removed_fraction": 0.1,
...                          "blocked": [{"reason": "`x` is odd", "channels": 9}]}))
removed 10.0% of the channels in scope where 50% was asked; blocked: `x` is odd (9 channels)
"""

from __future__ import annotations

from typing import Any

from ..scopes import Scope
from .graph import DependencyGraph, Group

#: A prune that removes less than this share of what was asked gets a warning.
SHORTFALL = 0.8

#: Block reasons no ratio is expected to reach (the walker's words): the classifier's outputs
#: are the model's contract, so their groups count neither as asked nor as blocked.
NEVER_PRUNED = ("model output",)


def _expected(g: Group) -> bool:
    return g.blocked is None or not g.blocked.startswith(NEVER_PRUNED)


def scope_groups(dg: DependencyGraph, scope: Scope) -> list[Group]:
    """Groups in scope, prunable or not: a producer selected, no member protected by
    ``except`` (a protected group is the user's choice, not a shortfall)."""
    chosen = []
    for g in dg.groups:
        targets = {dg.endpoints[k].target for k in g.members}
        if any(scope.selects(p) for p in g.producers) and not any(
            scope.protects(t) for t in targets
        ):
            chosen.append(g)
    return chosen


def group_key(g: Group) -> str:
    """A name for a group that survives surgery: its producers' qualified names."""
    return "|".join(sorted(g.producers))


def block_summary(
    dg: DependencyGraph, top: int = 3, scope: Scope | None = None
) -> list[dict[str, Any]]:
    """The ``top`` reasons groups are blocked for, by channels blocked (most first), among the
    groups in ``scope`` (all groups without one): ``[{"reason": str, "channels": int}]``."""
    groups = scope_groups(dg, scope) if scope is not None else dg.groups
    channels: dict[str, int] = {}
    for g in groups:
        if g.blocked is not None and _expected(g):
            channels[g.blocked] = channels.get(g.blocked, 0) + g.size
    ranked = sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"reason": reason, "channels": n} for reason, n in ranked]


def removed_fraction(
    dg: DependencyGraph, scope: Scope, removed: int, base: dict[str, int] | None = None
) -> float:
    """Share of the in-scope channels gone once ``removed`` more go. With ``base`` (a gradual
    prune's sizes when it began, by group key) the earlier cuts count too."""
    total, gone = 0, removed
    for g in filter(_expected, scope_groups(dg, scope)):
        was = (base or {}).get(group_key(g), g.size) if g.blocked is None else g.size
        total += was
        gone += was - g.size
    return gone / total if total else 0.0


def shortfall_message(info: dict[str, Any]) -> str | None:
    """Why the prune described by ``info`` fell short, or None (it did not, or a budget chose
    the ratio: a budget that was met is what was asked)."""
    asked, done = info.get("asked_fraction"), info.get("removed_fraction")
    if asked is None or done is None or "budget_kind" in info:
        return None
    if not asked or done >= SHORTFALL * asked:
        return None
    reasons = "; ".join(
        f"{b['reason']} ({b['channels']} channels)" for b in info.get("blocked", [])
    )
    return (
        f"removed {100 * done:.1f}% of the channels in scope where {100 * asked:.0f}% was asked"
        + (f"; blocked: {reasons}" if reasons else "")
    )


def kept_whole_message(entry: dict[str, str]) -> str:
    """One block kept whole, for notes: path, type and fx's reason."""
    why = f": {entry['reason']}" if entry.get("reason") else ""
    return (
        f"`{entry['module']}` ({entry['type']}) is kept whole, the channels in and out of it "
        f"are not pruned: torch.fx cannot trace it{why}"
    )


__all__ = [
    "SHORTFALL",
    "block_summary",
    "group_key",
    "kept_whole_message",
    "removed_fraction",
    "scope_groups",
    "shortfall_message",
]
