"""``prune P% channels`` through attention blocks (runtime/passes/channels/rules_attention.py).

The residual width (q/k/v in-features, out-projection out-features) joins the stream's group
and the inner width is pruned uniformly across heads; the pruned model runs, keeps its output
shape, and replays from its record onto a fresh model into which its state dict loads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from runtime.passes.channels.prune import prune_model
from runtime.passes.channels.surgery import apply_record
from runtime.passes.heads import PrunableMultiheadAttention


class Block(nn.Module):
    """A pre-norm transformer block on a width-``d`` stream, with a given attention."""

    def __init__(self, attn: nn.Module, d: int = 32, mha: bool = True) -> None:
        super().__init__()
        self.embed = nn.Linear(6, d)
        self.norm = nn.LayerNorm(d)
        self.attn, self.mha = attn, mha
        self.fc = nn.Linear(d, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        h = self.norm(x)
        a = self.attn(h, h, h, need_weights=False)[0] if self.mha else self.attn(h)
        return self.fc((x + a).mean(1))


def _prune_and_replay(build: Callable[[], nn.Module], x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = build().eval()
    record, info = prune_model(model, x, 0.5)
    assert info["params_after"] < 0.6 * info["params_before"]
    with torch.no_grad():
        out = model(x)
    assert out.shape == (x.shape[0], 5)
    fresh = apply_record(build().eval(), record)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh(x), out, atol=1e-5)
    loss = copy.deepcopy(model).train()(x).sum()
    loss.backward()
    return model


@pytest.mark.parametrize("kind", ["nn", "prunable"])
def test_mha_residual_and_head_widths_are_pruned(kind: str):
    def build() -> nn.Module:
        attn = nn.MultiheadAttention(32, 4, batch_first=True)
        if kind == "prunable":
            attn = PrunableMultiheadAttention.from_mha(attn)
        return Block(attn)

    model = _prune_and_replay(build, torch.randn(2, 7, 6))
    attn = model.attn
    assert isinstance(attn, PrunableMultiheadAttention)
    assert attn.num_heads == 4 and attn.head_dim == 4  # 8 -> 4 per head, every head alike
    assert attn.q_proj.weight.shape == (16, 16) and attn.out_proj.weight.shape == (16, 16)
    assert attn.scaling == pytest.approx(8**-0.5)  # the original attention scale


def test_timm_attention_residual_and_head_widths_are_pruned():
    timm = pytest.importorskip("timm")

    def build() -> nn.Module:
        return Block(timm.layers.Attention(32, num_heads=4, qkv_bias=True), mha=False)

    x = torch.randn(2, 7, 6)
    model = _prune_and_replay(build, x)
    attn = model.attn
    assert (attn.head_dim, attn.attn_dim, attn.num_heads) == (4, 16, 4)
    with torch.no_grad():  # the fused path (its own scale) and the unfused one (attn.scale) agree
        attn.fused_attn = True
        fused = model(x)
        attn.fused_attn = False
        assert torch.allclose(model(x), fused, atol=1e-5)
    assert attn.qkv.weight.shape == (48, 16) and attn.proj.weight.shape == (16, 16)


def test_cross_attention_is_left_whole():
    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h = nn.Linear(6, 12)  # the one prunable group
            self.a, self.b = nn.Linear(12, 16), nn.Linear(12, 16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.fc = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.h(x).relu()
            q, kv = self.a(h), self.b(h)
            return self.fc(self.attn(q, kv, kv)[0].mean(1))

    model = Cross().eval()
    record, _ = prune_model(model, torch.randn(2, 7, 6), 0.5)
    assert isinstance(model.attn, nn.MultiheadAttention) and model.attn.embed_dim == 16
    assert "attn" not in record["layers"] and model.h.out_features == 6


def test_vits_prune_their_head_widths():
    tv = pytest.importorskip("torchvision")
    timm = pytest.importorskip("timm")
    x = torch.randn(1, 3, 32, 32)
    torch.manual_seed(0)
    vit = tv.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
        num_classes=10,
    )  # fmt: skip
    _, info = prune_model(vit.eval(), x, 0.5)
    attn = vit.encoder.layers[0].self_attention
    assert isinstance(attn, PrunableMultiheadAttention) and attn.head_dim == 8
    assert vit(x).shape == (1, 10) and info["params_after"] < 0.65 * info["params_before"]
    t = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2)
    _, info = prune_model(t.eval(), x, 0.5)
    assert t.blocks[0].attn.head_dim == 32 and t(x).shape == (1, 1000)
