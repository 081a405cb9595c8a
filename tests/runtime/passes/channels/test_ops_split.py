"""split / chunk / unbind / stack / getitem: pieces, partitions, and constant slices."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from runtime.passes.channels import build, prune_model


class Glu(nn.Module):
    """``a * sigmoid(b)`` of the two halves of a conv: the halves' channels pair up."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv0(x).chunk(2, dim=1)
        return self.conv1(a * b.sigmoid())


class TwoHeads(nn.Module):
    """Chunks read by separate convs: each chunk must keep as many channels as the other."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 5, 1), nn.Conv2d(4, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.chunk(self.conv0(x).relu(), 2, 1)
        return self.a(a) + self.b(b)


def test_glu_chunks_pair_channels_and_match_hand_sliced() -> None:
    torch.manual_seed(0)
    m, x = Glu().eval(), torch.randn(2, 3, 4, 4)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["conv0"]["out"]
    half = [k for k in keep if k < 4]
    assert keep == half + [k + 4 for k in half] and len(half) == 2
    assert record["layers"]["conv1"]["in"] == half
    with torch.no_grad():
        h = dense.conv0(x)
        ref = dense.conv1.weight[:, half]
        out = nn.functional.conv2d(h[:, half] * h[:, [k + 4 for k in half]].sigmoid(), ref)
        assert torch.allclose(m(x), out + dense.conv1.bias[None, :, None, None], atol=1e-5)


def test_chunks_read_apart_keep_equal_counts(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m, x = TwoHeads().eval(), torch.randn(2, 3, 4, 4)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["conv0"]["out"]
    assert sum(k < 4 for k in keep) == sum(k >= 4 for k in keep) == 2
    assert m.a.in_channels == m.b.in_channels == 2
    matches_zeroed(dense, m, record, x)


def test_constant_split_sizes_and_channel_slices_block() -> None:
    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, _ = torch.split(self.conv0(x), [3, 5], dim=1)
            return self.conv1(a)

    class Slice(Split):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv1(self.conv0(x)[:, 2:5])

    for model in (Split(), Slice()):
        dg = build(model, torch.randn(1, 3, 4, 4))
        assert not any("conv0" in g.producers for g in dg.prunable_groups())
        assert any("constant" in str(g.blocked) for g in dg.groups)


def test_full_slices_and_other_dims_pass_through(matches_zeroed: Any) -> None:
    class Slices(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv0(x)[:, :100, 1:]  # GhostNet's ``[:, :out_chs]``: keeps every channel
            top, bottom = h.split(1, dim=2)[0], h[..., -1:, :]
            both = torch.stack([top, bottom], dim=0).mean(0)
            u = h.unbind(2)
            rows = torch.stack([u[0], u[1]], dim=2)
            return self.conv1(both) + self.conv1(rows[:, :, :1])

    torch.manual_seed(0)
    m, x = Slices().eval(), torch.randn(2, 3, 5, 5)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    assert m.conv0.out_channels == 4 and m.conv1.in_channels == 4
    matches_zeroed(dense, m, record, x)


def test_the_tuple_escaping_blocks_its_pieces() -> None:
    class Escape(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv1(torch.cat(self.conv0(x).chunk(2, 1), 1))

    assert not build(Escape(), torch.randn(1, 3, 4, 4)).prunable_groups()


def test_a_channel_slice_with_computed_bounds_blocks() -> None:
    class Half(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv0(x)
            return self.conv1(h[:, : x.size(2)])  # bound read from the spatial size

    dg = build(Half(), torch.randn(1, 3, 4, 4))
    assert not any("conv0" in g.producers for g in dg.prunable_groups())


def test_an_unused_channel_count_from_unpacking_the_shape_reads_nothing() -> None:
    class Unpack(nn.Module):
        def __init__(self, use: bool) -> None:
            super().__init__()
            self.conv0, self.conv1, self.use = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1), use

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv0(x)
            b, c, hh, ww = h.shape
            return self.conv1(h.reshape(b, c if self.use else -1, hh, ww))

    x = torch.randn(1, 3, 4, 4)
    assert any("conv0" in g.producers for g in build(Unpack(False), x).prunable_groups())
    # reshaping ``h`` by its own count stays true after pruning (see test_ops_symbolic)
    assert any("conv0" in g.producers for g in build(Unpack(True), x).prunable_groups())
