"""prune.channels with a params / MACs budget, fed exactly what the compiler emits.

The budget is ``Budget(unit, value | fraction)`` (:mod:`compiler.ops`); ``fraction`` is the
share of the model *as it enters the pass* that may remain. The ratio is bisected; a budget
that cannot be met is KDR502; a params dict that does not fit the model is a bug (KDR999).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes  # noqa: F401  (registers the passes)
from compiler.driver import compile_source
from compiler.ops import Budget, PruneChannelsParams
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.channels import count_macs, count_params

X = torch.randn(1, 3, 8, 8)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()  # fmt: skip


def wide() -> nn.Sequential:
    """Enough channels that one channel is well under 2% of the MACs near the target."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()  # fmt: skip


def macs(m: nn.Module) -> int:
    return count_macs(m, X)


MEASURE: dict[str, Callable[[nn.Module], int]] = {"macs": macs, "params": count_params}


def compiled_params(stage: str) -> Any:
    """The params of the recipe's ``prune.channels`` pass, as the compiler emits them."""
    source = f'recipe "b"\nmodel student = resnet18()\n{stage}\n'
    result = compile_source(source)
    assert result.plan is not None, result.diagnostics
    (p,) = [p for p in result.plan.passes if p.op == "prune.channels"]
    assert isinstance(p.params, PruneChannelsParams)
    return p.params


def check_pruned_to(params: PruneChannelsParams, target_of: Callable[[int], float]) -> None:
    assert params.budget is not None
    measure = MEASURE[params.budget.unit]
    m = wide()
    before = measure(m)
    fresh = copy.deepcopy(m)
    result = run_pass("prune.channels", m, params, PassContext(example_inputs=X))
    target, after = target_of(before), measure(m)
    assert after <= target
    assert after >= 0.98 * target, (after, target)  # within 2% of the budget
    assert result.info["budget_after"] == after and 0 < result.info["budget_ratio"] < 1
    assert result.info["budget_before"] == before
    replay_pass("prune.channels", fresh, result.record).load_state_dict(m.state_dict())
    assert torch.allclose(fresh(X), m(X), atol=1e-6)


def test_count_macs_by_hand() -> None:
    m = net()
    expected = 64 * 32 * 3 * 9 + 64 * 64 * 32 * 9 + 64 * 10
    assert count_macs(m, X) == expected


def test_fraction_of_macs_is_met_within_two_percent() -> None:
    params = PruneChannelsParams(budget=Budget(unit="macs", fraction=0.4))
    check_pruned_to(params, lambda before: 0.4 * before)


def test_params_value_is_met_within_two_percent() -> None:
    params = PruneChannelsParams(budget=Budget(unit="params", value=20_000))
    check_pruned_to(params, lambda before: 20_000)


@pytest.mark.parametrize(
    ("stage", "target_of"),
    [
        ("prune student to 40% macs", lambda before: 0.4 * before),
        ("prune student to 20K params", lambda before: 20_000),
    ],
)
def test_what_the_compiler_emits_runs(stage: str, target_of: Callable[[int], float]) -> None:
    check_pruned_to(compiled_params(stage), target_of)


def test_fraction_is_of_the_model_entering_the_pass() -> None:
    m = wide()
    ctx = PassContext(example_inputs=X)
    run_pass("prune.channels", m, {"ratio": 0.25}, ctx)
    entering = macs(m)
    params = PruneChannelsParams(budget=Budget(unit="macs", fraction=0.5))
    result = run_pass("prune.channels", m, params, ctx)
    assert result.info["budget_before"] == entering
    assert 0.9 * 0.5 * entering <= macs(m) <= 0.5 * entering  # fewer channels: coarser steps


def test_budget_already_met_prunes_nothing() -> None:
    m = net()
    params = PruneChannelsParams(budget=Budget(unit="params", value=10**9))
    result = run_pass("prune.channels", m, params, PassContext(example_inputs=X))
    assert result.info["budget_ratio"] == 0.0 and not result.modified


def test_impossible_budget_is_kdr502() -> None:
    m = net()  # below what 99% pruning leaves
    params = PruneChannelsParams(budget=Budget(unit="params", value=10))
    with pytest.raises(KdrError) as info:
        run_pass("prune.channels", m, params, PassContext(example_inputs=X))
    assert info.value.diagnostics[0].code == "KDR502"
    assert m[0].out_channels == 32  # the model is untouched


@pytest.mark.parametrize(
    "budget",
    [
        {"kind": "macs", "percent": 40},  # the old runtime-only spelling
        {"unit": "flops", "value": 100},
        {"unit": "macs", "fraction": 1.4},
        {"unit": "params"},
        {"unit": "params", "value": 100, "fraction": 0.5},
    ],
)
def test_params_that_do_not_fit_are_a_bug_kdr999(budget: dict[str, Any]) -> None:
    m = net()
    with pytest.raises(KdrError) as info:
        run_pass("prune.channels", m, {"budget": budget}, PassContext(example_inputs=X))
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR999" and "prune.channels" in diag.message and "budget" in diag.message
    assert m[0].out_channels == 32


def test_a_taylor_budget_is_met_when_every_draw_of_data_differs():
    """The pass draws its batch once: the search's trials and the final cut see the same data,
    even from a context whose batches change at every call (as a shared generator's do)."""
    budget = Budget(unit="params", value=20_000)
    params = PruneChannelsParams(budget=budget, criterion="taylor", ranking="global")
    generator = torch.Generator().manual_seed(0)

    def changing():
        return [(torch.randn(4, *X.shape[1:], generator=generator), torch.randint(0, 10, (4,)))]

    m = wide()
    run_pass("prune.channels", m, params, PassContext(example_inputs=X, batches=changing))
    assert count_params(m) <= 20_000
