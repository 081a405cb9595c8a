"""LeViT: ``bn(x.flatten(0, 1)).reshape_as(x)`` (``LinearNorm``) and the attention blocks
(``Attention``, ``AttentionDownsample``) traced whole, with per-head key and value dims.

Removing a key dim removes a ``q_j * k_j`` term of every head's scores, which no consumer's
input columns express: the reference zeroes the pruned channels at their BatchNorm too (in eval
mode a zero weight and bias make the channel exactly 0), then the consumers' input columns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from runtime.passes.channels import apply_record, build, prune_model
from runtime.passes.scopes import Scope


class LinearNormMlp(nn.Module):
    """LeViT's MLP pattern: Linear, BatchNorm1d over the flattened tokens, ``reshape_as``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = self.bn(h.flatten(0, 1)).reshape_as(h).relu()
        return self.fc2(h)


class Unlike(nn.Module):
    """``reshape_as`` onto a tensor whose channels sit elsewhere: stays blocked."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 6), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 4, 8)
        y = self.b(x.reshape(x.shape[0], 4, 8)[:, :3]).transpose(1, 2)  # (B, 4, 3)
        return self.a(x[:, :2]).reshape_as(y) + y


def _prune(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    return record


def test_reshape_as_of_linear_norm_prunes_hidden(
    matches_zeroed: Callable[[nn.Module, nn.Module, dict[str, Any], torch.Tensor], None],
) -> None:
    torch.manual_seed(0)
    m, x = LinearNormMlp().eval(), torch.randn(2, 5, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m.fc1.out_features == 8 and m.bn.num_features == 8 and m.fc2.in_features == 8
    matches_zeroed(dense, m, record, x)


def test_reshape_as_unlike_its_model_tensor_blocks() -> None:
    dg = build(Unlike().eval(), torch.randn(2, 4, 8))
    assert not any("a" in g.producers for g in dg.prunable_groups())


def _randomize_norms(m: nn.Module) -> None:
    """Random BatchNorm statistics, so that a channel left in place would show."""
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            assert mod.running_mean is not None and mod.running_var is not None
            with torch.no_grad():
                mod.weight.normal_()
                mod.bias.normal_()
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)


def _reference(dense: nn.Module, record: dict[str, Any]) -> nn.Module:
    """The dense model with every pruned channel zeroed at its BatchNorm and its readers."""
    ref = copy.deepcopy(dense)
    for name, keeps in record["layers"].items():
        mod = ref.get_submodule(name)
        for kind, weights, dim in (("norm", ("weight", "bias"), 0), ("in", ("weight",), 1)):
            if kind not in keeps or not isinstance(
                mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Linear, nn.Conv2d)
            ):
                continue
            size = getattr(mod, weights[0]).shape[dim]
            gone = torch.tensor(sorted(set(range(size)) - set(keeps[kind])), dtype=torch.long)
            with torch.no_grad():
                for t in weights:
                    getattr(mod, t).index_fill_(dim, gone, 0.0)
    return ref.eval()


def _tiny_levit(use_conv: bool) -> Any:
    levit = pytest.importorskip("timm.models.levit")
    torch.manual_seed(0)
    m = levit.Levit(
        img_size=64,
        num_classes=5,
        embed_dim=(16, 24),
        key_dim=4,
        depth=(1, 1),
        num_heads=(2, 3),
        attn_ratio=2.0,
        mlp_ratio=2.0,
        use_conv=use_conv,
    )
    _randomize_norms(m)
    return m.eval()


@pytest.mark.parametrize("use_conv", [False, True])
def test_tiny_levit_prunes_keys_values_and_residual(use_conv: bool) -> None:
    m, x = _tiny_levit(use_conv), torch.randn(2, 3, 64, 64)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    attn, down = m.stages[0].blocks[0].attn, m.stages[1].downsample.attn_downsample
    assert (attn.key_dim, attn.val_dim, attn.val_attn_dim) == (2, 4, 8)
    assert (down.key_dim, down.val_dim, down.val_attn_dim) == (2, 8, 32)
    assert m.stem.conv4.linear.out_channels == 8  # the residual stream of stage 0
    with torch.no_grad():
        expected, got = _reference(dense, record)(x), m(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    fresh = _tiny_levit(use_conv)
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), got, atol=1e-5)
    m.train()
    m(x).sum().backward()


def test_timm_levit_128s_params_ratio(prunes_timm: Callable[..., dict[str, Any]]) -> None:
    prunes_timm("levit_128s", 32, img_size=32)


def test_levit_attention_of_another_layout_stays_whole() -> None:
    m = _tiny_levit(False)
    attn = m.stages[0].blocks[0].attn
    attn.proj.ln = nn.Linear(attn.val_attn_dim, 16)  # not a LinearNorm: not understood
    dg = build(m, torch.randn(1, 3, 64, 64))
    prunable = {p for g in dg.prunable_groups() for p in g.producers}
    assert not any(p.startswith("stages.0.blocks.0.attn") for p in prunable)
