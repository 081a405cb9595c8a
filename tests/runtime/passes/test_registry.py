"""The pass registry and the op table agree, and params reach passes as typed models."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from compiler.ops import OPS, CalibrateParams, PruneWeightsParams
from recipe_lang.diagnostics import KdrError
from runtime.passes import PASSES, PassContext, register_pass, run_pass
from runtime.passes.base import typed_params


def test_every_graph_op_has_a_pass_and_every_pass_a_graph_op() -> None:
    graph_ops = {op for op, info in OPS.items() if info.graph}
    assert set(PASSES) == graph_ops
    for op in PASSES:
        assert op in OPS and OPS[op].graph


@pytest.mark.parametrize("op", ["prune.everything", "train", "evaluate"])
def test_register_pass_refuses_ops_that_are_not_graph_ops(op: str) -> None:
    with pytest.raises(ValueError, match="not a graph op"):
        register_pass(op)
    assert op not in PASSES


def test_passes_receive_the_ops_params_model(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    entry = PASSES["prune.weights"]

    def spy(module: nn.Module, params: object, ctx: PassContext) -> object:
        seen.append(params)
        return entry.fn(module, params, ctx)

    monkeypatch.setitem(PASSES, "prune.weights", dataclasses.replace(entry, fn=spy))
    m, ctx = nn.Sequential(nn.Linear(4, 4)), PassContext(example_inputs=torch.randn(2, 4))
    run_pass("prune.weights", m, {"ratio": 0.5}, ctx)
    typed = PruneWeightsParams(ratio=0.25, ranking="global")
    run_pass("prune.weights", m, typed, ctx)
    assert seen[0] == PruneWeightsParams(ratio=0.5)
    assert seen[1] is typed


def test_a_dict_that_does_not_fit_is_kdr999_naming_op_and_field() -> None:
    assert typed_params("quant.calibrate", {}) == CalibrateParams()
    with pytest.raises(KdrError) as info:
        typed_params("quant.calibrate", {"batches": 0})
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR999"
    assert "quant.calibrate" in diag.message and "batches" in diag.message
    with pytest.raises(KdrError) as info:
        typed_params("fuse.bn", {"surprise": 1})
    assert "surprise" in info.value.diagnostics[0].message
