"""Op rules for untracked parameters, ECA, DPN and BoTNet: ``F.normalize``, ``roll``,
computed ``pad`` widths, ``new_empty``,
EdgeNeXt-style aligned chunks (uneven too), MetaFormer's ``Scale`` view by attribute, DPN's
dual-path slices (prefix counted by the record), SelectiveKernel's split, and timm's ECA (an
approximation: checked against ECA applied to the kept channels, not against zeroing)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import apply_record, build, count_params, prune_model, rules_split
from runtime.passes.scopes import Scope
from runtime.passes.trace import type_name


def _prune(m: nn.Module, x: torch.Tensor, ratio: float = 0.5, crit: str = "l1") -> dict[str, Any]:
    record, _ = prune_model(m, x, ratio, crit, "local", Scope())
    return record


def _replays(make: Callable[[], nn.Module], m: nn.Module, record: dict[str, Any], x: Any) -> None:
    """The record rebuilds the pruned model from a fresh one, and the pruned model trains."""
    fresh = make()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh.eval()(x), m.eval()(x), atol=1e-5)
    m.train()
    m(x).sum().backward()


class Wrap(nn.Module):
    """conv -> ``op`` -> conv: the op decides whether the middle channels can go."""

    def __init__(self, op: Callable[[torch.Tensor], torch.Tensor], c: int = 8) -> None:
        super().__init__()
        self.op, self.a, self.b = op, nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.op(self.a(x)))


def _pad_nhwc(x: torch.Tensor) -> torch.Tensor:
    """Swin's window padding: channel-last, sizes computed from the input's shape."""
    x = x.permute(0, 2, 3, 1)
    _, h, w, _ = x.shape
    x = F.pad(x, (0, 0, 0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4))
    return x.permute(0, 3, 1, 2)


def _noise(x: torch.Tensor) -> torch.Tensor:
    """timm drop_path's per-sample factor, built with ``new_empty``."""
    return x * x.new_empty((x.shape[0], 1, 1, 1)).fill_(0.5)


OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "normalize_spatial": lambda x: F.normalize(x, dim=-1),
    "roll_spatial": lambda x: torch.roll(x, shifts=(1, -2), dims=(2, 3)),
    "pad_computed": _pad_nhwc,
    "new_empty": _noise,
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_channelwise_ops_prune_like_zeroing(name: str, matches_zeroed: Callable[..., None]) -> None:
    torch.manual_seed(0)
    m, x = Wrap(OPS[name]).eval(), torch.randn(2, 3, 6, 6)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m.a.out_channels == 4
    matches_zeroed(dense, m, record, x)
    _replays(lambda: Wrap(OPS[name]), m, record, x)


@pytest.mark.parametrize(
    "op",
    [lambda x: F.normalize(x, dim=1), lambda x: torch.roll(x, 1, 1), lambda x: torch.roll(x, 1)],
    ids=["normalize_channels", "roll_channels", "roll_flat"],
)
def test_ops_over_the_channel_dim_stay_blocked(op: Callable[[torch.Tensor], torch.Tensor]) -> None:
    dg = build(Wrap(op), torch.randn(1, 3, 6, 6))
    assert not dg.prunable_groups()


class Aligned(nn.Module):
    """EdgeNeXt's pattern: chunk, ``sp = conv(sp + spx[i])``, the last piece passed through."""

    def __init__(self, c: int = 11, n: int = 3) -> None:
        super().__init__()
        self.n = n
        w = -(-c // n)
        self.convs = nn.ModuleList(nn.Conv2d(w, w, 3, padding=1, groups=w) for _ in range(n - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spx, spo = x.chunk(self.n, dim=1), []
        sp = spx[0]
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + spx[i])
            spo.append(sp)
        spo.append(spx[-1])
        return torch.cat(spo, 1) + x


class AlignedNet(nn.Module):
    def __init__(self, c: int = 11) -> None:
        super().__init__()
        self.stem, self.block, self.head = nn.Conv2d(3, c, 3), Aligned(c), nn.Conv2d(c, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)))


@pytest.mark.parametrize("c", [11, 12, 10])  # pieces 4,4,3 / 4,4,4 / 4,4,2
@pytest.mark.parametrize("seed", range(4))
def test_aligned_chunks_keep_chunking_into_the_pruned_pieces(
    c: int, seed: int, monkeypatch: pytest.MonkeyPatch, matches_zeroed: Callable[..., None]
) -> None:
    monkeypatch.setattr(rules_split, "ALIGNED_CHUNKS", frozenset({type_name(Aligned)}))
    torch.manual_seed(seed)
    m, x = AlignedNet(c).eval(), torch.randn(2, 3, 8, 8)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.3 + 0.1 * seed, "random", "local", Scope(), seed=seed)
    assert m.stem.out_channels < c
    matches_zeroed(dense, m, record, x)


def test_uneven_chunk_without_alignment_stays_blocked() -> None:
    dg = build(AlignedNet(11), torch.randn(1, 3, 8, 8))
    assert not dg.prunable_groups() or all("stem" not in g.producers for g in dg.prunable_groups())


def _scale_net() -> nn.Sequential:
    metaformer = pytest.importorskip("timm.models.metaformer")
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), metaformer.Scale(8, init_value=0.5), nn.ReLU(), nn.Conv2d(8, 4, 1)
    )


def test_metaformer_scale_view_by_shape_attribute(matches_zeroed: Callable[..., None]) -> None:
    torch.manual_seed(0)
    m, x = _scale_net().eval(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        m[1].get_parameter("scale").uniform_(0.5, 1.5)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m[0].out_channels == 4 and m[1].scale.shape == (4,) and m[1].shape == (4, 1, 1)
    matches_zeroed(dense, m, record, x)
    _replays(_scale_net, m, record, x)


def _dpn_net() -> nn.Sequential:
    dpn = pytest.importorskip("timm.models.dpn")
    return nn.Sequential(
        nn.Conv2d(3, 16, 3),
        dpn.DualPathBlock(16, 16, 16, 16, 8, groups=4, block_type="proj"),  # 16 + 2 * 8 + 8
        dpn.DualPathBlock(40, 16, 16, 16, 8, groups=4),  # 16 + 24 + 8
        dpn.DualPathBlock(48, 16, 16, 16, 8, groups=4, b=True),
        nn.Conv2d(56, 4, 1),
    )


def test_dpn_dual_path_slices_count_the_residual_prefix(
    matches_zeroed: Callable[..., None],
) -> None:
    torch.manual_seed(0)
    m, x = _dpn_net().eval(), torch.randn(2, 3, 10, 10)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert [b.num_1x1_c for b in m[1:4]] == [8, 8, 8]
    assert m[4].in_channels == 28  # 8 residual + 4 + 4 + 4 + 4 + 4 dense
    matches_zeroed(dense, m, record, x)
    _replays(_dpn_net, m, record, x)


def _sk_net() -> nn.Sequential:
    sk = pytest.importorskip("timm.layers.selective_kernel")
    return nn.Sequential(nn.Conv2d(3, 8, 3), sk.SelectiveKernel(8, 8, split_input=True))


def test_selective_kernel_split_by_attribute() -> None:
    torch.manual_seed(0)
    m, x = _sk_net().eval(), torch.randn(2, 3, 10, 10)
    _prune(m, x)
    sk: Any = m[1]
    assert m[0].out_channels == 4 and sk.in_channels == 4
    assert [p.conv.in_channels for p in sk.paths] == [2, 2]
    assert m(x).shape[1] == sk.out_channels


class EcaNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        eca = pytest.importorskip("timm.layers.eca")
        self.conv, self.bn = nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16)
        self.eca, self.head = eca.EcaModule(16), nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.eca(self.bn(self.conv(x)).relu()))


def test_eca_runs_on_the_kept_channels() -> None:
    """ECA's Conv1d slides along the channels: after pruning, a kept channel's gate reads its
    kept neighbours (not zeroed ones), so the pruned block is ECA applied to the kept
    channels, which is what is checked (plus shapes, replay and a train step)."""
    torch.manual_seed(0)
    m, x = EcaNet().eval(), torch.randn(2, 3, 8, 8)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    keep = record["layers"]["conv"]["out"]
    assert m.conv.out_channels == m.head.in_channels == 8
    assert m.eca.conv.weight.shape == dense.eca.conv.weight.shape  # no per-channel weight
    with torch.no_grad():
        feats = dense.bn(dense.conv(x)).relu()[:, keep]
        assert torch.allclose(m.bn(m.conv(x)).relu(), feats, atol=1e-6)
        assert torch.allclose(m.eca(feats), dense.eca(feats), atol=1e-6)
    _replays(EcaNet, m, record, x)


def _timm(name: str) -> tuple[nn.Module, Callable[[], nn.Module]]:
    timm = pytest.importorskip("timm")
    kw = {"img_size": 32} if name.startswith("botnet") else {}  # its position tables' size

    def make() -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=10, **kw)

    torch.manual_seed(0)
    return make().eval(), make


@pytest.mark.slow  # 10-30 s each on two shared cores (build, prune, replay, a train step)
@pytest.mark.parametrize("name", ["poolformer_s12", "ecaresnet26t", "dpn68", "botnet26t_256"])
def test_timm_models_reach_a_third_of_their_params(name: str) -> None:
    m, make = _timm(name)
    x = torch.randn(2, 3, 32, 32)
    dense = count_params(m)
    record = _prune(m, x)
    assert count_params(m) <= 0.35 * dense
    assert m(x).shape == (2, 10)
    _replays(make, m, record, x)


class BotNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        ba = pytest.importorskip("timm.layers.bottleneck_attn")
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.attn = ba.BottleneckAttn(16, 16, feat_size=(4, 4), num_heads=2)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(self.stem(x).relu()))


def test_bottleneck_attn_prunes_head_widths() -> None:
    """Pruned BoTNet attention == the dense one with the removed inputs and q/k/v rows of the
    qkv conv, the removed columns of the position tables and the head's removed inputs zeroed."""
    torch.manual_seed(0)
    m, x = BotNet().eval(), torch.randn(2, 3, 4, 4)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    attn: Any = m.attn
    assert (attn.dim_head_qk, attn.dim_head_v, attn.qkv.out_channels) == (4, 4, 24)
    assert attn.pos_embed.height_rel.shape == (7, 4) and m.head.in_channels == 8
    ref: Any = copy.deepcopy(dense)
    gone = sorted(set(range(48)) - set(record["layers"]["attn.qkv"]["out"]))
    with torch.no_grad():
        ref.attn.qkv.weight[gone] = 0
        ref.attn.qkv.weight[:, sorted(set(range(16)) - set(record["layers"]["attn.qkv"]["in"]))] = 0
        for table in ("height_rel", "width_rel"):
            keep = record["params"][f"attn.pos_embed.{table}"]["keep"]
            cols = sorted(set(range(8)) - set(keep))
            getattr(ref.attn.pos_embed, table)[:, cols] = 0
        ref.head.weight[:, sorted(set(range(16)) - set(record["layers"]["head"]["in"]))] = 0
        assert torch.allclose(m(x), ref(x), atol=1e-5)
    _replays(BotNet, m, record, x)
