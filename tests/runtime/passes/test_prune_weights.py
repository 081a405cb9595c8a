"""prune.weights: permanent unstructured magnitude sparsity, local and global."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes  # noqa: F401  (registers the passes)
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.prune_weights import prune_weights_model


def net() -> Any:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 36, 10)
    ).eval()


X = torch.randn(2, 3, 8, 8)


def test_local_zeroes_the_smallest_entries_of_each_layer() -> None:
    m = net()
    ref = copy.deepcopy(m)
    result = run_pass(
        "prune.weights", m, {"ratio": 0.75, "ranking": "local"}, PassContext(example_inputs=X)
    )
    for layer, orig in ((m[0], ref[0]), (m[4], ref[4])):
        w, w0 = layer.weight, orig.weight
        n = w.numel()
        assert int((w == 0).sum()) == round(0.75 * n)
        kept = w0.abs().reshape(-1).sort().values[round(0.75 * n) :]
        assert torch.equal(w[w != 0].abs().sort().values, kept)  # survivors untouched
    assert result.info["sparsity"] == pytest.approx(0.75, abs=1e-3)
    # permanent: no parametrization, no masks, same state dict keys
    assert set(m.state_dict()) == set(ref.state_dict())
    assert not any("mask" in k or "orig" in k for k in m.state_dict())
    assert result.record["structural"] is False


def test_global_uses_one_threshold() -> None:
    m = net()
    with torch.no_grad():
        m[0].weight.mul_(1e-3)  # the conv is globally small: it loses most entries
    run_pass("prune.weights", m, {"ratio": 0.5, "ranking": "global"}, PassContext(example_inputs=X))
    total = m[0].weight.numel() + m[4].weight.numel()
    zeros = int((m[0].weight == 0).sum() + (m[4].weight == 0).sum())
    assert zeros == round(0.5 * total)
    assert int((m[0].weight == 0).sum()) == m[0].weight.numel()


def test_compressed_size_shrinks_and_replay_is_identity() -> None:
    m = net()
    dense = prune_weights_model(copy.deepcopy(m), 0.0)  # a plan's ratio is > 0: call directly
    sparse = run_pass("prune.weights", m, {"ratio": 0.9}, PassContext(example_inputs=X))
    assert sparse.info["compressed_size_bytes"] < 0.5 * dense["compressed_size_bytes"]
    fresh = net()
    assert replay_pass("prune.weights", fresh, sparse.record) is fresh
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh(X), m(X))


def test_scope_and_bad_ratio() -> None:
    m = net()
    run_pass("prune.weights", m, {"ratio": 0.5, "exclude": ["4"]}, PassContext(example_inputs=X))
    assert int((m[4].weight == 0).sum()) == 0 and int((m[0].weight == 0).sum()) > 0
    with pytest.raises(KdrError) as info:
        run_pass("prune.weights", net(), {"ratio": 0.5, "include": ["nope*"]}, PassContext(X))
    assert info.value.diagnostics[0].code == "KDR502"
    with pytest.raises(KdrError) as info:  # the compiler never emits it: a bug, not a user error
        run_pass("prune.weights", net(), {"ratio": 1.0}, PassContext(example_inputs=X))
    assert info.value.diagnostics[0].code == "KDR999"
    with pytest.raises(KdrError) as info:  # a direct caller gets KDR502
        prune_weights_model(net(), 1.0)
    assert info.value.diagnostics[0].code == "KDR502"
