"""The gradual prune's parts against hand computations: levels, movement scores, the optimizer
state that follows a channel cut, cumulative channel counts."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compiler.ops import PruneChannelsParams, PruneWeightsParams, Schedule
from runtime.gradual.channels import ChannelRamp, follow, shadow_of
from runtime.gradual.weights import WeightRamp
from runtime.passes.channels.prune import prune_model
from runtime.passes.channels.surgery import apply_record


def test_schedule_curves_by_hand() -> None:
    # cubic (Zhu & Gupta): s = t + (s0 - t)(1 - f)^3 at f = 0, 1/2, 1
    cubic = Schedule(start=0.1, every_steps=10).points(0.9, 30, 10)
    assert [s for s, _ in cubic] == [0, 10, 20]
    assert [round(v, 6) for _, v in cubic] == [0.1, round(0.9 - 0.8 * 0.125, 6), 0.9]
    linear = Schedule(curve="linear").points(0.8, 40, 10)
    assert [round(v, 6) for _, v in linear] == [0.0, round(0.8 / 3, 6), round(1.6 / 3, 6), 0.8]
    # exponential: the density 1 - s shrinks by one factor per update: 1, 0.1**0.5, 0.1
    expo = Schedule(curve="exponential").points(0.9, 30, 10)
    assert [round(1 - v, 6) for _, v in expo] == [1.0, round(0.1**0.5, 6), 0.1]
    assert Schedule().points(0.5, 10, 10) == [(0, 0.5)]  # one epoch, once per epoch: no ramp


def _linear(values: list[list[float]]) -> nn.Linear:
    m = nn.Linear(len(values[0]), len(values), bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(values))
    return m


def test_weight_levels_count_from_what_was_alive() -> None:
    m = _linear([[0.0, 0.5, -0.1, 0.3, 0.2, -0.6, 0.0, 0.4]])  # 6 alive of 8
    ramp = WeightRamp(m, PruneWeightsParams(ratio=0.5), seed=0)
    ramp.apply(m, 1 / 3)  # 2 of the 6 alive: the smallest, -0.1 and 0.2
    assert m.weight.tolist()[0] == pytest.approx([0, 0.5, 0, 0.3, 0, -0.6, 0, 0.4])
    ramp.apply(m, 0.5)  # 3 of 6: 0.3 goes next
    assert m.weight.tolist()[0] == pytest.approx([0, 0.5, 0, 0, 0, -0.6, 0, 0.4])


def test_global_levels_rank_across_layers() -> None:
    model = nn.Sequential(_linear([[0.1, 0.2], [0.3, 0.4]]), _linear([[0.9, 0.05]]))
    ramp = WeightRamp(model, PruneWeightsParams(ratio=0.5, ranking="global"), seed=0)
    ramp.apply(model, 0.5)  # 3 of 6: 0.05, 0.1, 0.2
    assert model[0].weight.flatten().tolist() == pytest.approx([0, 0, 0.3, 0.4])
    assert model[1].weight.flatten().tolist() == pytest.approx([0.9, 0])


def test_movement_scores_by_hand() -> None:
    """S = -sum_t w_t * g_t: weights that training pushes toward zero go first, large or not."""
    m = _linear([[0.5, -0.5, 0.1, -0.1]])
    ramp = WeightRamp(m, PruneWeightsParams(ratio=0.5, criterion="movement"), seed=0)
    steps = [
        ([0.5, -0.5, 0.1, -0.1], [1.0, 0.0, -1.0, 0.0]),
        ([0.4, -0.5, 0.2, -0.1], [1.0, -1.0, 0.0, 2.0]),
    ]
    for w, g in steps:
        with torch.no_grad():
            m.weight.copy_(torch.tensor([w]))
        m.weight.grad = torch.tensor([g])
        ramp.accumulate(m)
    # by hand: -(0.5*1 + 0.4*1), -(0 + 0.5), -(-0.1 + 0), -(0 - 0.2)
    assert ramp.movement is not None
    assert ramp.movement[""].tolist()[0] == pytest.approx([-0.9, -0.5, 0.1, 0.2])
    ramp.apply(m, 0.5)  # the two lowest scores: entries 0 and 1, the largest weights
    assert m.weight.tolist()[0] == pytest.approx([0, 0, 0.2, -0.1])


def _convs() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    )  # fmt: skip


def test_channel_cuts_add_up_to_one_cut() -> None:
    x = torch.randn(2, 3, 8, 8)
    one, ramped = _convs(), _convs()
    prune_model(one, x, 0.625)
    ramp = ChannelRamp(ramped, x, PruneChannelsParams(ratio=0.625))
    opt = torch.optim.SGD(ramped.parameters(), lr=0.1)
    for level in (0.2, 0.4, 0.625):
        ramp.apply(ramped, level, opt, None)
    assert [p.shape for p in ramped.parameters()] == [p.shape for p in one.parameters()]
    assert ramped[0].out_channels == 3  # 8 - round(0.625 * 8)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_optimizer_state_follows_the_cut(name: str) -> None:
    """After a cut, one optimizer step equals the step of a model born small whose state is
    the old state at the kept positions, computed here by hand with index_select."""
    model = _convs()
    make = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01),
    }[name]
    opt = make(model.parameters())
    x = torch.randn(4, 3, 8, 8)
    for _ in range(2):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    keep = [0, 2, 5]
    record = {"layers": {"0": {"out": keep}, "1": {"norm": keep}, "3": {"in": keep}}}
    key = "momentum_buffer" if name == "sgd" else "exp_avg"
    old = {n: opt.state[p][key].clone() for n, p in model.named_parameters()}
    shadow = shadow_of(model, opt)
    assert shadow is not None
    apply_record(model, record)
    follow(opt, model, shadow, record)
    new = {n: opt.state[p][key] for n, p in model.named_parameters()}
    assert torch.equal(new["0.weight"], old["0.weight"][keep])
    assert torch.equal(new["1.bias"], old["1.bias"][keep])
    assert torch.equal(new["3.weight"], old["3.weight"][:, keep])
    assert torch.equal(new["7.weight"], old["7.weight"])  # untouched layer: same state
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {
        id(p) for p in model.parameters()
    }
    born = copy.deepcopy(model)
    twin = make(born.parameters())
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))  # load_state_dict shares tensors
    for m, o in ((model, opt), (born, twin)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    for a, b in zip(model.parameters(), born.parameters(), strict=True):
        assert torch.equal(a, b)
