"""Cross-covariance attention (XCiT's ``XCA``, EdgeNeXt's ``CrossCovarianceAttn``) traced whole.

Cutting head-width position ``j`` from q, k and v renormalizes each head's channel softmax over
the kept channels: not the dense block with channels zeroed, so the reference here is XCA
computed by hand on the kept channels of the dense weights (see ``rules_xca``).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import apply_record, prune_model
from runtime.passes.scopes import Scope

xcit = pytest.importorskip("timm.models.xcit")
edgenext = pytest.importorskip("timm.models.edgenext")


class Tiny(nn.Module):
    """A residual stream of 16 channels through one XCA block (2 heads)."""

    def __init__(self, attn: Any) -> None:
        super().__init__()
        self.fc_in, self.fc_out = nn.Linear(8, 16), nn.Linear(16, 5)
        self.attn: Any = attn(16, num_heads=2, qkv_bias=True)
        with torch.no_grad():
            self.attn.temperature.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(x)
        return self.fc_out(h + self.attn(h))


def _xca(x: torch.Tensor, wq: torch.Tensor, bq: torch.Tensor, m: Any, wp: Any, bp: Any) -> Any:
    """XCA by hand: ``qkv`` rows ``wq``/``bq`` laid out ``[3][heads][d]``, projection ``wp``."""
    b, n, _ = x.shape
    h = int(m.num_heads)
    q, k, v = (x @ wq.T + bq).reshape(b, n, 3, h, -1).permute(2, 0, 3, 4, 1).unbind(0)
    attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
    out = ((attn * m.temperature).softmax(-1) @ v).permute(0, 3, 1, 2).reshape(b, n, -1)
    return out @ wp.T + bp


def _reference(dense: Any, keep: list[int], inner: list[int], x: torch.Tensor) -> Any:
    """The dense weights sliced by hand: residual ``keep``, head-width positions ``inner``."""
    a, c = dense.attn, dense.fc_in.out_features
    rows = [p * c + j for p in range(3) for j in inner]
    h = x @ dense.fc_in.weight[keep].T + dense.fc_in.bias[keep]
    wq, bq = a.qkv.weight[rows][:, keep], a.qkv.bias[rows]
    y = _xca(h, wq, bq, a, a.proj.weight[keep][:, inner], a.proj.bias[keep])
    return (h + y) @ dense.fc_out.weight[:, keep].T + dense.fc_out.bias


def _prune(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    return record


def _replays(make: Any, m: Any, record: dict[str, Any], x: torch.Tensor) -> None:
    """A fresh model replays the record and loads the pruned weights; the pruned one trains
    and pickles."""
    torch.manual_seed(1)
    fresh = make().eval()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    y = m.eval()(x)
    assert torch.allclose(fresh(x), y, atol=1e-5)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    assert torch.allclose(torch.load(buf, weights_only=False)(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()
    assert m.fc_in.weight.grad is not None


def test_xcit_xca_prunes_head_width_with_the_residual() -> None:
    torch.manual_seed(0)
    m: Any = Tiny(xcit.XCA).eval()
    x = torch.randn(2, 7, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    keep = record["layers"]["attn.qkv"]["in"]
    assert len(keep) == 8 and m.attn.qkv.weight.shape == (24, 8)
    assert m.attn.proj.weight.shape == (8, 8) and m.attn.num_heads == 2
    assert [j < 8 for j in keep].count(True) == 4  # every head keeps as many positions
    with torch.no_grad():
        expected = _reference(dense, keep, keep, x)
        assert torch.allclose(m(x), expected, atol=1e-5)
    _replays(lambda: Tiny(xcit.XCA), m, record, x)


def test_edgenext_xca_prunes_its_inner_width_on_its_own() -> None:
    torch.manual_seed(0)
    m: Any = Tiny(edgenext.CrossCovarianceAttn).eval()
    x = torch.randn(2, 7, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    keep, inner = record["layers"]["attn.qkv"]["in"], record["layers"]["attn"]["norm"]
    assert len(keep) == 8 and len(inner) == 8
    assert [j < 8 for j in inner].count(True) == 4  # every head keeps as many positions
    assert type(m.attn).__name__ == "NarrowCrossCovarianceAttn"
    assert m.attn.qkv.weight.shape == (24, 8) and m.attn.proj.weight.shape == (8, 8)
    with torch.no_grad():
        expected = _reference(dense, keep, inner, x)
        assert torch.allclose(m(x), expected, atol=1e-5)
    _replays(lambda: Tiny(edgenext.CrossCovarianceAttn), m, record, x)


def test_timm_xcit_nano_params_ratio(prunes_timm: Callable[..., dict[str, Any]]) -> None:
    prunes_timm("xcit_nano_12_p16_224", 32, img_size=32)


def test_timm_edgenext_xx_small_params_ratio(prunes_timm: Callable[..., dict[str, Any]]) -> None:
    prunes_timm("edgenext_xx_small", 64)


class ReadsDevice(nn.Module):
    """XCiT's positional encoding reads its projection's ``weight.device`` / ``.dtype``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc1.weight
        return self.fc2(self.fc1(x.to(device=w.device, dtype=w.dtype)).relu())


def test_weight_device_read_keeps_the_layer_prunable(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m, x = ReadsDevice().eval(), torch.randn(2, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m.fc1.out_features == 8
    matches_zeroed(dense, m, record, x)


def test_partition_chunks_with_the_same_classes_count_once() -> None:
    from runtime.passes.channels.groups import _distinct

    assert _distinct([[1, 2], [3, 4], [2, 1], [4, 3]]) == [[1, 2], [3, 4]]
    assert _distinct([[1, 1], [1, 1]]) == [[1, 1], [1, 1]]  # repeated classes: kept as is
