"""CoaT's factorized attention (``FactorAttnConvRelPosEnc``) traced whole, with a shared
``ConvRelPosEnc``.

Cutting head-width position ``j`` removes one term of ``q @ (softmax_N(k)^T @ v)`` and one
output column (the key softmax runs over tokens): the reference is the dense model with the
pruned channels zeroed at their readers (conftest) and, in addition, at the query rows of
``qkv``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from runtime.passes.channels import apply_record, prune_model
from runtime.passes.scopes import Scope

coat = pytest.importorskip("timm.models.coat")


class Tiny(nn.Module):
    """Two factorized attentions (2 heads of 8) sharing one relative position encoding."""

    def __init__(self) -> None:
        super().__init__()
        self.crpe = coat.ConvRelPosEnc(head_chs=8, num_heads=2, window={3: 1, 5: 1})
        self.fc_in, self.fc_out = nn.Linear(8, 16), nn.Linear(16, 5)
        kw: Any = {"num_heads": 2, "qkv_bias": True, "shared_crpe": self.crpe}
        self.a1 = coat.FactorAttnConvRelPosEnc(16, **kw)
        self.a2 = coat.FactorAttnConvRelPosEnc(16, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1 + 4 * 4, 8)
        h = self.fc_in(x)
        h = h + self.a1(h, size=(4, 4))
        return self.fc_out(h + self.a2(h, size=(4, 4)))


def _prune(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    return record


def _zeroed(dense: nn.Module, record: dict[str, Any], gone: list[int]) -> Any:
    """The dense model with the pruned channels zeroed at every Linear reading them and at the
    query rows of ``qkv``."""
    ref: Any = copy.deepcopy(dense)
    with torch.no_grad():
        for name, keeps in record["layers"].items():
            lin = ref.get_submodule(name)
            if isinstance(lin, nn.Linear) and "in" in keeps:
                lin.weight[:, [j for j in range(lin.in_features) if j not in keeps["in"]]] = 0
        for a in (ref.a1, ref.a2):
            a.qkv.weight[gone] = 0
            a.qkv.bias[gone] = 0
    return ref.eval()


def test_factor_attention_prunes_heads_and_shared_crpe() -> None:
    torch.manual_seed(0)
    m: Any = Tiny().eval()
    x = torch.randn(2, 17, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    keep = record["layers"]["a1.qkv"]["in"]
    assert len(keep) == 8 and [j < 8 for j in keep].count(True) == 4  # balanced heads
    assert m.crpe.channel_splits == [4, 4] and m.crpe.conv_list[1].weight.shape[0] == 4
    assert m.a2.qkv.weight.shape == (24, 8)
    ref = _zeroed(dense, record, [j for j in range(16) if j not in keep])
    with torch.no_grad():
        assert torch.allclose(m(x), ref(x), atol=1e-5)
    fresh = Tiny().eval()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh(x), m(x), atol=1e-5)
    m.train()
    m(x).sum().backward()


@pytest.mark.slow
def test_timm_coat_lite_tiny_params_ratio(prunes_timm: Callable[..., dict[str, Any]]) -> None:
    prunes_timm("coat_lite_tiny", 32, img_size=32)
