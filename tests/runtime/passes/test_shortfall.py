"""A prune that falls short: removed vs asked fractions, block_summary, KDR506/KDR508, report."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.ops import Budget
from runtime.passes.channels.budget import Trial, search_ratio
from runtime.passes.channels.build import build
from runtime.passes.channels.prune import prune_model
from runtime.passes.channels.shortfall import block_summary, shortfall_message
from runtime.passes.scopes import Scope
from runtime.report import prune_notes
from runtime.run.dry_run import _pass_notes


class Sorter(nn.Module):
    """An op kdr has no rule for (sorting along channels): its input channels are blocked."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sort(x, dim=1).values


class Net(nn.Module):
    """a (8) -> sort -> b (24) -> sort -> c (4) -> head: a and b blocked, c prunable."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 24, 3, padding=1)
        self.c = nn.Conv2d(24, 4, 1)
        self.sort = Sorter()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b(self.sort(torch.relu(self.a(x))))
        x = self.c(torch.sort(x, dim=1).values)
        return self.head(torch.relu(x).mean((2, 3)))


X = torch.randn(2, 3, 8, 8)


def test_block_summary_ranks_reasons_by_blocked_channels() -> None:
    summary = block_summary(build(Net(), X), top=3)
    assert [s["channels"] for s in summary] == [24, 8]  # b's group first, then a's
    assert "sort" in summary[0]["reason"] and "sort" in summary[1]["reason"]
    assert len(block_summary(build(Net(), X), top=1)) == 1


def test_prune_info_removed_against_asked_and_the_warning() -> None:
    _, info = prune_model(Net(), X, 0.5)
    assert info["asked_fraction"] == 0.5
    # 2 of c's 4 channels go; a (8) and b (24) are blocked; head's outputs do not count.
    assert info["removed_fraction"] == pytest.approx(2 / 36)
    assert [b["channels"] for b in info["blocked"]] == [24, 8]
    assert info["kept_whole"] == []
    message = shortfall_message(info)
    assert message is not None and "5.6% of the channels in scope where 50% was asked" in message
    assert "(24 channels)" in message


def test_a_scope_counts_only_its_groups() -> None:
    _, info = prune_model(Net(), X, 0.5, scope=Scope(include=("c",)))
    assert info["removed_fraction"] == pytest.approx(0.5)
    assert info["blocked"] == [] and shortfall_message(info) is None


def test_a_plain_model_does_not_fall_short() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU())
    net.append(nn.Conv2d(16, 4, 1))
    _, info = prune_model(net, X, 0.5)
    assert info["removed_fraction"] == pytest.approx(12 / 24)
    assert shortfall_message(info) is None


def test_a_budget_never_warns() -> None:
    ratio, extra, _ = search_ratio(Net(), X, Budget(unit="params", fraction=0.99), Trial())
    _, info = prune_model(Net(), X, ratio, dg=None)
    info.update(extra)
    assert info["removed_fraction"] < 0.8 * info["asked_fraction"]
    assert shortfall_message(info) is None


def test_gradual_cuts_count_earlier_cuts() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))
    _, first = prune_model(net, X, 0.25)
    _, second = prune_model(net, X, 0.5, base={"0": 8})
    assert first["removed_fraction"] == pytest.approx(0.25)
    assert second["removed_fraction"] == pytest.approx(0.5)


def test_dry_run_and_report_say_it() -> None:
    info = {
        "asked_fraction": 0.5,
        "removed_fraction": 0.05,
        "blocked": [{"reason": "`x` is not understood", "channels": 24}],
        "kept_whole": [{"module": "gate", "type": "Gate", "reason": "TraceError: no"}],
    }
    noted: set[tuple[str, str]] = set()
    diags = _pass_notes(info, "student", noted)
    assert [(d.code, d.severity) for d in diags] == [("KDR508", "note"), ("KDR506", "warning")]
    assert "`gate` (Gate) is kept whole" in diags[0].message and "`x`" in diags[1].message
    assert [d.code for d in _pass_notes(info, "student", noted)] == ["KDR506"]  # noted once
    notes = prune_notes(info)
    assert len(notes) == 2 and "KDR506" in notes[1] and "`gate`" in notes[0]
    assert prune_notes({"asked_fraction": 0.5, "removed_fraction": 0.45}) == []
