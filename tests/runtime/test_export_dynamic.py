"""``export onnx`` of a dynamic int8 model: written through a float graph of its dequantized
weights and ONNX Runtime's dynamic quantization (torch's exporter cannot trace dynamic int8
Linear); the ONNX model is int8 and computes what the PyTorch int8 model computes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import fx, nn

from runtime.export import export_model, load_exported, run_onnx
from runtime.export_dynamic import bind_default_inputs, dequantized_copy

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _dynamic_int8(m: nn.Module, x: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import QConfigMapping, default_dynamic_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    mapping = QConfigMapping().set_object_type(nn.Linear, default_dynamic_qconfig)
    mapping = mapping.set_object_type(nn.ReLU, default_dynamic_qconfig)  # fused LinearReLU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(prepare_fx(m.eval(), mapping, (x,)))


def test_dynamic_int8_exports_to_int8_onnx_that_matches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.randn(4, 1, 8, 8)
    q = _dynamic_int8(dense, x)
    path = export_model(q, "onnx", tmp_path / "q.onnx", x)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops  # int8 in the file
    got, want = run_onnx(load_exported("onnx", path), x), q(x)
    assert torch.allclose(got, want, atol=0.05), (got - want).abs().max()
    assert not torch.allclose(want, dense(x), atol=1e-6)  # the int8 model, not the float one


def test_dequantized_copy_computes_with_the_int8_weights() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 16)
    q = _dynamic_int8(nn.Sequential(nn.Linear(16, 8)), x)
    f = dequantized_copy(q)
    assert not any("quantized" in type(m).__module__ for m in f.modules())
    assert torch.allclose(f(x), q(x), atol=0.05)


class _Optional(nn.Module):
    def forward(self, x: torch.Tensor, scale: float = 2.0, flag: bool = False) -> torch.Tensor:
        return x * scale


def test_optional_inputs_of_a_graph_are_folded_into_their_defaults() -> None:
    gm = fx.symbolic_trace(_Optional(), concrete_args=None)
    bound = bind_default_inputs(gm)
    assert [n.op for n in bound.graph.nodes].count("placeholder") == 1
    assert torch.equal(bound(torch.ones(2)), torch.full((2,), 2.0))
