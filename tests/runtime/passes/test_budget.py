"""prune.channels with a params / MACs budget: bisection on the ratio, KDR502 when impossible."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes.prune_channels  # noqa: F401  (registers the pass)
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.budget import count_macs
from runtime.passes.prune_channels import count_params


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()  # fmt: skip


X = torch.randn(1, 3, 8, 8)


def test_count_macs_by_hand() -> None:
    m = net()
    expected = 64 * 32 * 3 * 9 + 64 * 64 * 32 * 9 + 64 * 10
    assert count_macs(m, X) == expected


@pytest.mark.parametrize(
    ("budget", "measure"),
    [
        ({"kind": "params", "value": 8000}, lambda m: count_params(m)),
        ({"kind": "macs", "percent": 40}, lambda m: count_macs(m, X)),
    ],
)
def test_budget_is_met_and_close(budget: dict[str, Any], measure: Any) -> None:
    m = net()
    before = measure(m)
    fresh = copy.deepcopy(m)
    result = run_pass("prune.channels", m, {"budget": budget}, PassContext(example_inputs=X))
    target = budget.get("value") or before * budget["percent"] / 100
    after = measure(m)
    assert after <= target
    assert after >= 0.8 * target  # bisection does not overshoot wildly
    assert result.info["budget_after"] == after and 0 < result.info["budget_ratio"] < 1
    replay_pass("prune.channels", fresh, result.record).load_state_dict(m.state_dict())
    assert torch.allclose(fresh(X), m(X), atol=1e-6)


def test_budget_already_met_prunes_nothing() -> None:
    m = net()
    result = run_pass(
        "prune.channels",
        m,
        {"budget": {"kind": "params", "value": 1e9}},
        PassContext(example_inputs=X),
    )
    assert result.info["budget_ratio"] == 0.0 and not result.modified


@pytest.mark.parametrize(
    "budget",
    [
        {"kind": "params", "value": 10},  # below what 99% pruning leaves: impossible
        {"kind": "flops", "value": 100},
        {"kind": "macs", "percent": 140},
        {"kind": "params"},
    ],
)
def test_impossible_or_malformed_budget_is_kdr502(budget: dict[str, Any]) -> None:
    m = net()
    with pytest.raises(KdrError) as info:
        run_pass("prune.channels", m, {"budget": budget}, PassContext(example_inputs=X))
    assert info.value.diagnostics[0].code == "KDR502"
    assert m[0].out_channels == 32  # the model is untouched
