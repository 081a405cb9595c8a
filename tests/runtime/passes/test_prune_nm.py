"""prune.weights with an N:M pattern: hand-computed groups, skipped layers, held by training."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes  # noqa: F401  (registers the passes)
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.prune_weights import prune_nm_model, prune_weights_model
from runtime.weight_stats import nm_conformance


def _set(layer: nn.Module, values: list[Any]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(values, dtype=torch.float32).reshape(layer.weight.shape))


def net() -> Any:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 36, 10)
    ).eval()


X = torch.randn(2, 3, 8, 8)


def test_a_linear_layer_keeps_the_two_largest_of_every_four_by_hand() -> None:
    layer = nn.Linear(8, 2)
    _set(
        layer,
        [
            [0.5, -3.0, 1.0, 2.0, -0.1, 0.2, 4.0, -5.0],
            [1.0, 0.0, 0.0, 0.3, 0.6, -0.7, 0.8, 0.9],  # its first group already has 2 zeros
        ],
    )
    bias = layer.bias.detach().clone()
    info = prune_nm_model(layer, 2, 4)
    expected = torch.tensor(
        [
            [0.0, -3.0, 0.0, 2.0, 0.0, 0.0, 4.0, -5.0],
            [1.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.8, 0.9],
        ]
    )
    assert torch.equal(layer.weight.detach(), expected)
    assert torch.equal(layer.bias.detach(), bias)  # biases are never pruned
    assert info["pattern"] == "2:4" and info["layers"] == 1 and info["layers_skipped"] == {}
    assert info["sparsity"] == 0.5


def test_a_conv_groups_along_its_flattened_input_by_hand() -> None:
    # weight [out=2, in=2, 1, 2]: a row is (c0k0, c0k1, c1k0, c1k1), one group of 4 with 1:4
    conv = nn.Conv2d(2, 2, (1, 2), bias=False)
    _set(conv, [[1.0, -2.0, 3.0, 0.5], [-0.5, 0.1, -0.2, 0.3]])
    prune_nm_model(conv, 1, 4)
    assert conv.weight.detach().reshape(2, -1).tolist() == [
        [0.0, 0.0, 3.0, 0.0],
        [-0.5, 0.0, 0.0, 0.0],
    ]


def test_the_pass_skips_layers_whose_rows_do_not_divide() -> None:
    m = net()
    ref = copy.deepcopy(m)
    result = run_pass("prune.weights", m, {"pattern": {"n": 2, "m": 4}}, PassContext(X))
    assert torch.equal(m[0].weight, ref[0].weight)  # 3 x 3 x 3 = 27 entries a row: skipped
    assert result.info["layers_skipped"] == {"0": "its rows have 27 entries, not a multiple of 4"}
    groups = m[4].weight.detach().reshape(10, -1, 4)
    assert ((groups == 0).sum(-1) == 2).all()
    kept = ref[4].weight.detach().reshape(10, -1, 4).abs().topk(2, dim=-1).values
    assert torch.equal(groups.abs().sort(-1).values[..., 2:], kept.sort(-1).values)
    assert result.info["pattern"] == "2:4" and result.info["sparsity"] == 0.5
    assert result.record == {"pattern": "2:4", "structural": False}
    assert nm_conformance(m, 2, 4) == {
        "pattern": "2:4",
        "conformance": 1.0,
        "groups": 10 * 144,
        "layers": 1,
    }
    fresh = net()
    assert replay_pass("prune.weights", fresh, result.record) is fresh  # zeros travel in weights


def test_no_layer_fits_is_kdr502_with_help() -> None:
    with pytest.raises(KdrError) as info:
        run_pass(
            "prune.weights", net(), {"pattern": {"n": 2, "m": 4}, "include": ["0"]}, PassContext(X)
        )
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR502"
    assert (
        "no layer in scope fits the 2:4 pattern" in diag.message and "`0`: its rows" in diag.message
    )
    assert any("divide by 4" in n.message for n in diag.notes)


def test_random_is_seeded_and_keeps_the_pattern() -> None:
    a, b, by_l1 = nn.Linear(16, 8), nn.Linear(16, 8), nn.Linear(16, 8)
    b.load_state_dict(a.state_dict())
    by_l1.load_state_dict(a.state_dict())
    prune_nm_model(a, 1, 4, criterion="random", seed=3)
    prune_nm_model(b, 1, 4, criterion="random", seed=3)
    assert torch.equal(a.weight, b.weight)
    assert ((a.weight.detach().reshape(8, 4, 4) != 0).sum(-1) == 1).all()
    prune_nm_model(by_l1, 1, 4)
    assert not torch.equal(by_l1.weight, a.weight)  # random is not magnitude in disguise


def test_an_earlier_prune_keeps_its_zeros() -> None:
    m = nn.Linear(64, 16)
    prune_weights_model(m, 0.75)
    before = m.weight.detach() == 0
    prune_nm_model(m, 2, 4)
    after = m.weight.detach() == 0
    assert bool(after[before].all())  # every earlier zero is still zero
    assert (after.reshape(16, 16, 4).sum(-1) >= 2).all()
    assert nm_conformance(m, 2, 4)["conformance"] == 1.0


def test_movement_needs_a_gradual_stage() -> None:
    with pytest.raises(KdrError) as info:
        prune_nm_model(nn.Linear(8, 2), 2, 4, criterion="movement")
    assert info.value.diagnostics[0].code == "KDR502"


def test_the_pattern_holds_through_a_recovery_training() -> None:
    from runtime.data import build_data
    from runtime.engine import TrainConfig, fit

    data = build_data("mnist10k", [], {"batch_size": 32, "limit": 128, "eval_limit": 32}, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    prune_nm_model(model, 2, 4)
    sgd: dict[str, Any] = {
        "optimizer": "sgd",
        "optimizer_kwargs": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
    }
    fit(model, data, TrainConfig(steps=8, keep_zeros=True, **sgd))
    for layer in (model[1], model[3]):
        groups = layer.weight.detach().reshape(layer.out_features, -1, 4)
        assert ((groups == 0).sum(-1) >= 2).all()
    assert nm_conformance(model, 2, 4)["conformance"] == 1.0
    # without the masks, training regrows the pruned entries: the check above can fail
    fit(model, data, TrainConfig(steps=8, **sgd))
    assert nm_conformance(model, 2, 4)["conformance"] < 0.5
