"""Schedules, warmup, gradient clipping and the EMA of :func:`runtime.engine.fit`, read off the
lr curve it records; and how a training pass's own options override the recipe's."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from compiler.optim_params import LrSchedule, OptimizerSpec, Warmup
from compiler.params import TrainingParams
from compiler.settings import DEFAULT_SETTINGS
from compiler.vocab import SCHEDULES
from runtime.data import DataBundle, index_batches
from runtime.engine import FitStats, TrainConfig, fit
from runtime.fit_state import Change, LoopState
from runtime.run.train_config import optimization
from runtime.step_extras import LR_EVERY, LR_POINTS

LR = 0.5


def _bundle(n: int, batch: int, scale: float = 1.0) -> DataBundle:
    """``n`` random 1x2x2 images of two classes, in memory: ``n / batch`` steps per epoch."""
    g = torch.Generator().manual_seed(0)
    x = scale * torch.randn(n, 1, 2, 2, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)

    def train(generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in index_batches(n, batch, generator):
            yield x[idx], y[idx]

    def evaluate() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield x, y

    return DataBundle("tiny", 1, 2, 2, n, n, batch, False, 0, train, evaluate, (x, y))


def _net(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    if bn:
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


def _cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "optimizer": "sgd",
        "optimizer_kwargs": {"momentum": 0.0, "weight_decay": 0.0},
        "lr": LR,
        "schedule": "constant",
    }
    return TrainConfig(**{**base, **kw})


def _anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _onecycle(t: int, n: int) -> float:
    """torch's OneCycleLR (cosine, div 25, final div 1e4) with kdr's pct_start of 0.25."""
    peak = 1.0
    low = peak / 25
    up = max(0.25, 2.0 / n) * n - 1
    if t <= up:
        return _anneal(low, peak, t / up)
    return _anneal(peak, low / 1e4, (t - up) / (n - 1 - up))


def _restarts(t: int, period: int, mult: int) -> float:
    while t >= period:
        t, period = t - period, period * mult
    return 0.5 * (1 + math.cos(math.pi * t / period))


#: Each schedule's arguments and its factor of the peak lr at step t of n (t from 0).
FORMULAS: dict[str, tuple[dict[str, Any], Callable[[int, int], float]]] = {
    "constant": ({}, lambda t, n: 1.0),
    "onecycle": ({}, _onecycle),
    "cosine": ({}, lambda t, n: 0.5 * (1 + math.cos(math.pi * t / n))),
    "step": ({"step_size": 2, "gamma": 0.5}, lambda t, n: 0.5 ** (t // 2)),
    "multistep": (
        {"milestones": [3, 7], "gamma": 0.1},
        lambda t, n: 0.1 ** sum(t >= m for m in (3, 7)),
    ),
    "linear": ({"end": 0.2}, lambda t, n: 1 + (0.2 - 1) * t / n),
    "poly": ({"power": 3}, lambda t, n: (1 - t / n) ** 3),
    "cosine_restarts": ({"period": 2, "mult": 2}, lambda t, n: _restarts(t, 2, 2)),
}


#: Schedules with lengths: after a warmup they go on at their place counted from step 0; the
#: others run over the steps the warmup leaves.
PLACED = {"step", "multistep", "cosine_restarts"}


def test_every_schedule_has_a_formula() -> None:
    assert set(FORMULAS) == set(SCHEDULES)


@pytest.mark.parametrize("warmup", [0, 3])
@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_recorded_lr_follows_the_schedule(name: str, warmup: int) -> None:
    """One step per epoch, so every step's lr is recorded; lengths count epochs (= steps)
    from the training's start."""
    kwargs, formula = FORMULAS[name]
    stats = fit(
        _net(),
        _bundle(4, 4),
        _cfg(epochs=14, schedule=name, schedule_kwargs=kwargs, warmup_steps=warmup),
    )
    steps, lrs = zip(*stats.lr_curve, strict=True)
    assert list(steps) == list(range(14))
    expected = [LR * (t + 1) / warmup for t in range(warmup)]
    if name in PLACED:
        expected += [LR * formula(t, 14) for t in range(warmup, 14)]
    else:
        expected += [LR * formula(t, 14 - warmup) for t in range(14 - warmup)]
    assert list(lrs) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_multistep_milestone_decays_the_second_epoch() -> None:
    """``multistep(milestones=[1], gamma=0.1)`` on two epochs of 5 steps: x0.1 from epoch 2."""
    cfg = _cfg(epochs=2, schedule="multistep", schedule_kwargs={"milestones": [1]})
    curve = dict(fit(_net(), _bundle(20, 4), cfg).lr_curve)
    assert sorted(curve) == list(range(10))  # a short training: every step
    assert [curve[s] for s in range(5)] == pytest.approx([LR] * 5)
    assert [curve[s] for s in range(5, 10)] == pytest.approx([0.1 * LR] * 5)
    # the same milestone in a training counted in steps is step 1
    cfg = _cfg(steps=10, schedule="multistep", schedule_kwargs={"milestones": [1]})
    curve = dict(fit(_net(), _bundle(4, 4), cfg).lr_curve)
    assert curve[0] == pytest.approx(LR) and curve[1] == pytest.approx(0.1 * LR)


def test_warmup_20_steps_starts_low_and_reaches_the_peak_at_step_20() -> None:
    stats = fit(_net(), _bundle(4, 4), _cfg(steps=60, schedule="cosine", warmup_steps=20))
    lrs = dict(stats.lr_curve)
    assert len(lrs) == 60
    assert lrs[0] <= LR / 20
    assert all(lrs[t] < lrs[t + 1] for t in range(19))  # rising
    assert lrs[20] == pytest.approx(LR) and max(lrs.values()) == pytest.approx(LR)
    assert lrs[59] < 0.01 * LR  # then the cosine over the 40 steps left


def test_warmup_in_epochs_and_the_sparse_record() -> None:
    """210 steps of 7 per epoch: recorded at each epoch's start, every 50 steps, every third
    step (about 100 points) and the last."""
    cfg = _cfg(epochs=30, schedule="linear", warmup_epochs=2)
    stats = fit(_net(), _bundle(28, 4), cfg)
    curve = dict(stats.lr_curve)
    assert LR_POINTS == 100  # 210 steps: every third
    grid = {*range(0, 210, 7), *range(0, 210, LR_EVERY), *range(0, 210, 3), 209}
    assert sorted(curve) == sorted(grid)
    assert curve[0] == pytest.approx(LR / 14) and curve[7] == pytest.approx(LR * 8 / 14)
    assert curve[14] == pytest.approx(LR) and curve[112] == pytest.approx(LR / 2)


def test_clip_grad_bounds_the_step() -> None:
    """Huge inputs, SGD without momentum, lr 0.5: one step moves the weights by lr x the
    gradient's norm, which the clip holds at 0.1."""
    moved = []
    for clip in (None, 0.1):
        model = _net()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        fit(model, _bundle(4, 4, scale=1e4), _cfg(steps=1, clip_grad=clip))
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        moved.append(float((after - before).norm()))
    assert moved[0] > 100 * LR * 0.1
    assert moved[1] == pytest.approx(LR * 0.1, rel=1e-4)


class Spy:
    """A fit hook that copies the model's state before every step and may change it."""

    def __init__(self, act: Callable[[int, nn.Module], Change] | None = None) -> None:
        self.seen: dict[int, dict[str, torch.Tensor]] = {}
        self.saved: list[tuple[LoopState, dict[str, torch.Tensor]]] = []
        self.act = act

    def before_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> Change:
        change = self.act(step, model) if self.act is not None else ""
        self.model = model
        self.seen[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return change

    def after_backward(self, step: int, model: nn.Module) -> None:
        pass

    def checkpoint(self, state: LoopState) -> None:
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.saved.append((LoopState.from_plain(state.to_plain()), weights))


def test_the_ema_is_the_result_and_equals_the_hand_average() -> None:
    decay, steps, data = 0.6, 5, _bundle(8, 4)
    spy, plain = Spy(), _net(bn=True)
    fit(plain, data, _cfg(steps=steps), spy)
    # the weights after each step: what the next step starts from, and the plain run's result
    after = [spy.seen[s] for s in range(1, steps)] + [plain.state_dict()]
    hand = {k: v.clone() for k, v in after[0].items()}
    for state in after[1:]:
        for k, v in hand.items():
            if v.is_floating_point():
                v.mul_(decay).add_((1 - decay) * state[k])
    averaged = _net(bn=True)
    fit(averaged, data, _cfg(steps=steps, ema=decay))
    result = averaged.state_dict()
    for k, v in hand.items():
        if v.is_floating_point():  # weights and BN statistics alike
            assert torch.allclose(result[k], v, atol=1e-6), k
    assert not torch.allclose(result["3.weight"], after[-1]["3.weight"], atol=1e-4)
    assert not torch.allclose(result["2.running_mean"], after[-1]["2.running_mean"], atol=1e-4)
    assert int(result["2.num_batches_tracked"]) == steps  # a counter, not averaged


def test_the_ema_keeps_zeros_and_restarts_on_new_tensors() -> None:
    data = _bundle(8, 4)

    def prune(step: int, model: nn.Module) -> Change:
        if step == 2:  # new zeros in the middle of the training
            with torch.no_grad():
                model[1].weight[:, :2] = 0
            return "weights"
        return ""

    model = _net()
    fit(model, data, _cfg(steps=6, ema=0.9, keep_zeros=True), Spy(prune))
    assert torch.all(model[1].weight[:, :2] == 0)  # the average had them, the result has not
    assert torch.all(model[1].weight[:, 2:] != 0)
    fresh = nn.Linear(4, 2)
    untrained = fresh.weight.detach().clone()

    def replace(step: int, model: nn.Module) -> Change:
        if step == 4:  # new tensors, which this test's optimizer does not train
            model[1] = fresh
            return "structure"
        return ""

    model = _net()
    fit(model, data, _cfg(steps=6, ema=0.5), Spy(replace))
    assert model[1] is fresh
    # restarted at step 4, the average is of the (untrained) new tensors only
    assert torch.equal(fresh.weight, untrained)


@pytest.mark.parametrize(
    ("name", "kwargs", "at"),
    [
        ("multistep", {"milestones": [2, 4]}, 2),  # inside the warmup
        ("multistep", {"milestones": [2, 4]}, 5),  # after it
        ("cosine_restarts", {"period": 1, "mult": 2}, 2),
        ("onecycle", {}, 7),
    ],
)
def test_resume_mid_schedule_gives_the_same_curve_and_weights(
    name: str, kwargs: dict[str, Any], at: int
) -> None:
    """Stopped at step ``at`` (a hook's checkpoint, through its plain form) and resumed: the
    same lr curve, EMA and weights as the run that went through."""
    data = _bundle(8, 4)
    cfg = _cfg(epochs=6, schedule=name, schedule_kwargs=kwargs, warmup_steps=3)
    cfg.ema = 0.8
    cfg.clip_grad = 1.0

    def mark(step: int, model: nn.Module) -> Change:
        return "weights" if step == at else ""  # a checkpoint there

    spy, whole = Spy(mark), _net()
    full = fit(whole, data, cfg, spy)
    [(state, weights)] = spy.saved
    assert state.step == at and state.ema is not None
    if name == "multistep":
        # 3 steps of warmup, x0.1 from epoch 2 (step 4), x0.01 from epoch 4 (step 8)
        expected = [LR / 3, 2 * LR / 3, LR, LR] + [0.1 * LR] * 4 + [0.01 * LR] * 4
        assert [lr for _, lr in full.lr_curve] == pytest.approx(expected)
    resumed = _net()
    resumed.load_state_dict(weights)
    rest = fit(resumed, data, cfg, Spy(), start=state)
    assert rest.lr_curve == full.lr_curve and len(full.lr_curve) == 12
    for k, v in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


def test_summary_carries_the_curves() -> None:
    stats = fit(_net(), _bundle(20, 4), _cfg(epochs=2))
    train = stats.summary()
    assert train["lr_curve"] == [[s, LR] for s in range(10)]
    assert [s for s, _ in train["loss_curve"]] == list(range(10))
    assert [v for _, v in train["loss_curve"]] == pytest.approx(stats.loss_curve)
    assert "val_curve" not in train and "best_epoch" not in train
    stats.val_curve, stats.best_epoch = [{"epoch": 1, "accuracy": 0.5, "loss": 0.7}], 1
    assert stats.summary()["best_epoch"] == 1 and len(stats.summary()["val_curve"]) == 1
    long = FitStats(
        **{**stats.to_dict(), "loss_curve": [1.0, 0.5], "loss_steps": [49, 99], "lr_curve": []}
    )
    assert long.summary()["loss_curve"] == [[49, 1.0], [99, 0.5]]


def test_a_trainings_own_options_override_the_recipes_for_it_only() -> None:
    settings = {
        **DEFAULT_SETTINGS,
        "optimizer": {"name": "adamw", "lr": 0.005, "weight_decay": 0.0005, "beta1": 0.8},
        "schedule": {"name": "multistep", "milestones": [2], "warmup": {"epochs": 1}},
    }
    plain = optimization(settings, TrainingParams(epochs=3))
    assert plain == {
        "optimizer": "adamw",
        "optimizer_kwargs": {"lr": 0.005, "weight_decay": 0.0005, "betas": (0.8, 0.999)},
        "lr": None,
        "schedule": "multistep",
        "schedule_kwargs": {"milestones": [2]},
        "warmup_steps": 0,
        "warmup_epochs": 1,
        "clip_grad": None,
        "ema": None,
        "keep_best": None,
    }
    own = TrainingParams(
        epochs=3,
        lr=0.02,
        optimizer=OptimizerSpec(name="sgd", lr=0.01, momentum=0.9),
        schedule=LrSchedule(name="linear", end=0.1),
        warmup=Warmup(steps=7),
        weight_decay=0.0,
        clip_grad=2.0,
        ema=0.99,
        keep_best="loss",
    )
    assert optimization(settings, own) == {
        "optimizer": "sgd",
        "optimizer_kwargs": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        "lr": 0.02,
        "schedule": "linear",
        "schedule_kwargs": {"end": 0.1},
        "warmup_steps": 7,
        "warmup_epochs": 0,
        "clip_grad": 2.0,
        "ema": 0.99,
        "keep_best": "loss",
    }
    # a schedule of its own brings its own warmup (here none), not the recipe's
    own_schedule = TrainingParams(epochs=3, schedule=LrSchedule(name="cosine"))
    assert optimization(settings, own_schedule)["warmup_epochs"] == 0
    # the recipe's settings are untouched for the next training
    assert optimization(settings, TrainingParams(epochs=1)) == plain


def test_the_per_stage_optimizer_changes_the_recorded_lr_of_that_stage_only() -> None:
    """Two trainings in a row, as a plan runs them: the first with its own optimizer."""
    settings = {**DEFAULT_SETTINGS, "schedule": {"name": "constant"}}
    data, model = _bundle(8, 4), _net()
    first = TrainingParams(epochs=1, optimizer=OptimizerSpec(name="sgd", lr=0.01))
    lrs = [
        fit(model, data, TrainConfig(epochs=1, **optimization(settings, p))).lr_curve
        for p in (first, TrainingParams(epochs=1))
    ]
    assert lrs == [[(0, 0.01), (1, 0.01)], [(0, 0.005), (1, 0.005)]]
