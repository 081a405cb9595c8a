"""`prune ... channels by fpgm`: filters nearest the geometric median go first (by hand)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes  # noqa: F401  (registers the passes)
from runtime.passes.base import PassContext, run_pass
from runtime.passes.channels import build, group_importance
from runtime.passes.channels.graph import DependencyGraph

#: Four 2-entry filters (Conv2d(1, 4, (1, 2))): the origin, (3, 0), (0, 4) and (6, 8).
FILTERS = [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [6.0, 8.0]]
X = torch.randn(2, 1, 3, 4)


def net() -> Any:
    m = nn.Sequential(nn.Conv2d(1, 4, (1, 2), bias=False), nn.ReLU(), nn.Conv2d(4, 3, 1))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(FILTERS).reshape(4, 1, 1, 2))
    return m.eval()


def test_scores_are_sums_of_distances_to_the_other_filters() -> None:
    m = net()
    dg = build(m, X)
    scores = group_importance(dg, m, dg.prunable_groups(), "fpgm")
    assert len(scores) == 1  # one group: conv 0's outputs (conv 2 is the classifier)
    # distances: d01 = 3, d02 = 4, d03 = 10, d12 = 5, d13 = sqrt(9 + 64), d23 = sqrt(36 + 16)
    expected = [
        3 + 4 + 10,
        3 + 5 + math.sqrt(73),
        4 + 5 + math.sqrt(52),
        10 + math.sqrt(73) + math.sqrt(52),
    ]
    assert next(iter(scores.values())).tolist() == pytest.approx(expected, rel=1e-12)


def test_the_filters_nearest_the_median_are_removed_not_the_smallest() -> None:
    # fpgm drops filter 2 (16.21) and filter 1 (16.54) and keeps the all-zero filter 0 (17),
    # which any magnitude criterion would remove first
    fpgm = run_pass("prune.channels", net(), {"ratio": 0.5, "criterion": "fpgm"}, PassContext(X))
    assert fpgm.record["layers"]["0"]["out"] == [0, 3]
    l2 = run_pass("prune.channels", net(), {"ratio": 0.5, "criterion": "l2"}, PassContext(X))
    assert 0 not in l2.record["layers"]["0"]["out"]


def test_a_group_without_filters_falls_back_to_l2() -> None:
    # a producer with no weight (an "out" endpoint on a pooling layer) beside a BatchNorm
    model = nn.ModuleDict({"pool": nn.AvgPool2d(2), "bn": nn.BatchNorm2d(3)})
    with torch.no_grad():
        model["bn"].weight.copy_(torch.tensor([3.0, 1.0, 2.0]))
    dg = DependencyGraph()
    out, norm = dg.endpoint("pool", "out", 3), dg.endpoint("bn", "norm", 3)
    dg.union(out.atoms, norm.atoms)
    dg.finalize()
    groups = dg.prunable_groups()
    fpgm = group_importance(dg, model, groups, "fpgm")
    assert fpgm[groups[0].index].tolist() == [9.0, 1.0, 4.0]  # squared gammas, as l2 scores
