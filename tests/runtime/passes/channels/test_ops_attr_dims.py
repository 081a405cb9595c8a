"""torchvision's VisionTransformer reshapes its patch embedding with the constant
``self.hidden_dim``: kdr ties that reshape to ``conv_proj``'s outputs and resets ``hidden_dim``
after the cut and on replay, so the residual width is pruned."""

from __future__ import annotations

import json

import torch
from torchvision.models import VisionTransformer

from runtime.passes.channels import apply_record, count_params, prune_model
from runtime.passes.scopes import Scope


def _vit() -> VisionTransformer:
    return VisionTransformer(32, 8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                             num_classes=10)  # fmt: skip


def test_torchvision_vit_prunes_its_residual_width_and_replays() -> None:
    torch.manual_seed(0)
    m, x = _vit().eval(), torch.randn(2, 3, 32, 32)
    dense = count_params(m)
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    assert m.hidden_dim == m.conv_proj.out_channels == 32
    assert m.class_token.shape[-1] == m.encoder.pos_embedding.shape[-1] == 32
    assert count_params(m) <= 0.35 * dense
    assert m(x).shape == (2, 10)
    fresh = _vit()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh.hidden_dim == 32
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), m(x), atol=1e-6)
    m.train()
    m(x).sum().backward()  # trains
