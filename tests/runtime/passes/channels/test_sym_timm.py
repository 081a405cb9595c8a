"""timm models that read channel counts in Python (h15-sym): each pruned at 50% (l1, local) to
at most 0.35 of its params, then run forward, replayed and trained (small configs, 64 px)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

from runtime.passes.channels import apply_record, count_params, prune_model

MODELS: list[Any] = [
    ("pvt_v2_b0", {"depths": (1, 1, 1, 1)}),  # MLP dwconv view(B, C, H, W), kv head_dim
    ("cait_xxs24_224", {"img_size": 64, "depth": 2}),  # q by the residual's C // heads
    ("pit_ti_224", {"img_size": 64}),  # reshape(B, C, H, W), cls_tokens.shape[1]
    ("resnest14d", {}),  # reshape(B, radix, RC // radix, H, W)
    pytest.param("skresnet18", {}, marks=pytest.mark.slow),  # C // paths, split, ~12 s
    ("swin_tiny_patch4_window7_224", {"img_size": 64, "depths": (1, 1, 1, 1)}),  # windows
    pytest.param("maxvit_pico_rw_256", {"img_size": 64}, marks=pytest.mark.slow),  # ~20 s
]


@pytest.mark.parametrize(("name", "kwargs"), MODELS)
def test_timm_model_reading_its_channel_count_prunes(name: str, kwargs: dict[str, Any]) -> None:
    timm = pytest.importorskip("timm")

    def make() -> nn.Module:
        torch.manual_seed(0)
        return timm.create_model(name, pretrained=False, num_classes=10, **kwargs).eval()

    m, x = make(), torch.randn(1, 3, 64, 64)
    dense = count_params(m)
    record, _ = prune_model(m, x, 0.5, "l1", "local")
    assert count_params(m) <= 0.35 * dense
    y = m(x)
    assert y.shape == (1, 10)
    fresh = make()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(torch.randn(2, 3, 64, 64)).sum().backward()
