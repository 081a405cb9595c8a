"""Validation at epoch ends and `keep best` in the engine (runtime/validation.py), through a
LoopState checkpoint and a SIGKILL."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from compiler import compile_source
from compiler.ops import PruneWeightsGradualParams
from compiler.vocab import KEEP_BEST_BY
from recipe_lang.diagnostics import KdrError
from runtime import validation as validation_module
from runtime.checkpoint import load_checkpoint, save_checkpoint
from runtime.data import DataBundle, build_data
from runtime.engine import TrainConfig, fit
from runtime.fit_state import LoopState
from runtime.gradual import GradualPrune
from runtime.run.preflight import _check_keep_best
from runtime.validation import KEEP_BEST, EpochValidation, validate

ROOT = Path(__file__).resolve().parents[2]
SCORES = ("accuracy", "loss")


def _data(**extra: Any) -> DataBundle:
    kwargs = {"limit": 320, "val": 64, "eval_limit": 16, "batch_size": 32, **extra}
    return build_data("mnist10k", [], kwargs, seed=0)


def _linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def test_keep_best_restores_the_best_epoch_when_it_is_not_the_last() -> None:
    # A constant lr far too high for AdamW: validation accuracy jumps about from epoch to epoch.
    data = _data()
    cfg = TrainConfig(epochs=3, optimizer="adamw", lr=2.0, schedule="constant", seed=1)
    last = _linear()
    plain = fit(last, data, cfg)
    best = _linear()
    cfg.keep_best = "accuracy"
    kept = fit(best, data, cfg)
    assert [(v["epoch"], v["step"]) for v in kept.val_curve] == [(1, 8), (2, 16), (3, 24)]
    assert kept.val_curve == plain.val_curve  # validating draws nothing from the training
    accuracy = [v["accuracy"] for v in kept.val_curve]
    assert kept.best_epoch == accuracy.index(max(accuracy)) + 1
    assert kept.best_epoch != len(accuracy), "the setup must make an earlier epoch the best"
    assert plain.best_epoch is None
    assert validate(best, data) == {k: kept.val_curve[kept.best_epoch - 1][k] for k in SCORES}
    assert validate(last, data) == {k: plain.val_curve[-1][k] for k in SCORES}
    assert best.training  # validation leaves the model in the mode it found it in


def test_a_steps_training_validates_its_last_partial_epoch() -> None:
    data = _data()  # 256 training images: 8 steps per epoch
    stats = fit(_linear(), data, TrainConfig(steps=11, seed=0))
    assert [(v["epoch"], v["step"]) for v in stats.val_curve] == [(1, 8), (2, 11)]
    short = fit(_linear(), data, TrainConfig(steps=3, seed=0, keep_best="loss"))
    assert [(v["epoch"], v["step"]) for v in short.val_curve] == [(1, 3)]
    assert short.best_epoch == 1
    assert fit(_linear(), _data(val=None), TrainConfig(steps=2)).val_curve == []


def _scripted(monkeypatch: pytest.MonkeyPatch, scores: list[tuple[float, float]]) -> None:
    """``validate`` returns ``scores`` in turn, whatever the model."""
    it = iter(scores)

    def fake(model: nn.Module, data: DataBundle) -> dict[str, float]:
        accuracy, loss = next(it)
        return {"accuracy": accuracy, "loss": loss}

    monkeypatch.setattr(validation_module, "validate", fake)


def _run_tracker(tracker: EpochValidation, epochs: int, changed_after: int = 0) -> nn.Module:
    """Epochs of a model whose weight is the epoch number; returns the model after finish."""
    model = nn.Linear(1, 1, bias=False)
    for epoch in range(1, epochs + 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        tracker.epoch_end(epoch * 4, model)
        if epoch == changed_after:
            tracker.model_changed()
    tracker.finish(model)
    return model


@pytest.mark.parametrize(
    ("by", "changed_after", "best"),
    [
        ("accuracy", 0, 2),  # 0.5 at epochs 2 and 4: the earlier wins
        ("loss", 0, 3),  # the lowest loss; the NaN of epoch 5 never wins
        ("accuracy", 2, 4),  # a hook changed the model after epoch 2: only 3..5 may win
    ],
)
def test_keep_best_chooses_by_accuracy_or_loss(
    monkeypatch: pytest.MonkeyPatch, by: str, changed_after: int, best: int
) -> None:
    _scripted(monkeypatch, [(0.1, 3.0), (0.5, 2.0), (0.4, 1.0), (0.5, 1.5), (0.2, math.nan)])
    tracker = EpochValidation(_data(limit=64, val=8), by, steps_per_epoch=4)
    model = _run_tracker(tracker, 5, changed_after)
    assert tracker.best_epoch == best and float(model.weight.detach()) == best
    assert [v["epoch"] for v in tracker.curve] == [1, 2, 3, 4, 5]


def test_keep_best_without_a_validation_split_is_a_diagnostic() -> None:
    model = _linear()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(KdrError) as exc:
        fit(model, _data(val=None), TrainConfig(steps=2, keep_best="accuracy"))
    diagnostic = exc.value.diagnostics[0]
    assert diagnostic.code == "KDR207" and "validation split" in diagnostic.message
    assert "val=" in diagnostic.notes[0].message
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(KdrError) as exc:
        fit(model, _data(), TrainConfig(steps=2, keep_best="precision"))
    assert exc.value.diagnostics[0].code == "KDR103"


def test_the_preflight_refuses_keep_best_without_a_validation_split() -> None:
    assert sorted(KEEP_BEST) == sorted(KEEP_BEST_BY)  # the runtime knows every compiler choice
    plan = compile_source(
        "data = mnist10k(limit=64)\nmodel student = convnet(width=4)\n"
        "train student for 1 epoch\nthen train student for 1 epoch\n"
    ).plan
    assert plan is not None
    second = plan.passes[-1]
    second.params = second.params.model_copy(update={"keep_best": "loss"})  # what `keep best` says
    diags = _check_keep_best(plan, _data(val=None))
    assert [d.code for d in diags] == ["KDR207"]
    assert second.span is not None and diags[0].span == second.span
    assert _check_keep_best(plan, _data()) == []


def test_keep_best_survives_a_loop_state_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _scripted(monkeypatch, [(0.3, 1.0), (0.6, 0.9), (0.2, 0.8)])
    data = _data(limit=64, val=8)
    tracker = EpochValidation(data, "accuracy", steps_per_epoch=4)
    model = nn.Linear(1, 1, bias=False)
    for epoch in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(epoch)
        tracker.epoch_end(epoch * 4, model)
    state = LoopState(
        step=12,
        samples=0,
        epoch_generator=torch.Generator().get_state(),
        epoch_drawn=0,
        rng=torch.get_rng_state(),
        optimizer={},
        scheduler=None,
        losses=torch.zeros(12),
        validation=tracker.state_dict(),
    )
    save_checkpoint(tmp_path / "loop.pt", {"loop": state.to_plain()})  # plain data only
    loaded = LoopState.from_plain(load_checkpoint(tmp_path / "loop.pt")["loop"])
    resumed = EpochValidation(data, "accuracy", steps_per_epoch=4)
    resumed.load_state_dict(loaded.validation)
    assert resumed.curve == tracker.curve
    assert (resumed.best_epoch, resumed.best_score) == (2, 0.6)
    assert resumed.finish(model) == 2 and float(model.weight.detach()) == 2.0
    # a LoopState written before there was a validation split loads too
    old = {k: v for k, v in state.to_plain().items() if k != "validation"}
    assert LoopState.from_plain(old).validation is None


# The child trains a gradual prune with keep best, checkpoints the loop at the cut at step 7
# (after the validation of epoch 1) to a kdr checkpoint, then waits to be killed.
CHILD = """
import sys, time
import torch
from tests.runtime.test_keep_best import gradual_setup
from runtime.checkpoint import save_checkpoint
from runtime.engine import fit

def save(state, hook_state):
    save_checkpoint(sys.argv[1], {
        "state_dict": model.state_dict(), "loop": state.to_plain(), "gradual": hook_state,
    })
    time.sleep(600)  # killed here

model, data, cfg, hook = gradual_setup(save)
fit(model, data, cfg, hook)
"""


def gradual_setup(save: Any) -> tuple[nn.Module, DataBundle, TrainConfig, GradualPrune]:
    """A 3-epoch (5 steps each) gradual prune with cuts at steps 0 and 7, keeping its best."""
    data = _data(limit=192, val=32, batch_size=32)
    params = PruneWeightsGradualParams(
        cut={"ratio": 0.6, "criterion": "l1"},
        schedule={"every_steps": 7, "curve": "linear"},
        training={"epochs": 3},
    )
    model = _linear()
    hook = GradualPrune(
        model, params, [(0, 0.3), (7, 0.6)], example=data.example_batch(4), seed=3, save=save
    )
    cfg = TrainConfig(
        epochs=3, optimizer="adamw", lr=1.0, schedule="constant", seed=2, keep_zeros=True
    )
    cfg.keep_best = "accuracy"
    return model, data, cfg, hook


@pytest.mark.slow  # a child process that imports torch: ~5 s unloaded
def test_keep_best_after_sigkill_inside_a_training_makes_the_same_choice(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        deadline = time.time() + 120
        while not path.with_name(path.name + ".sha256").exists():
            assert child.poll() is None and time.time() < deadline, "no checkpoint came"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    payload = load_checkpoint(path)
    start = LoopState.from_plain(payload["loop"])
    assert start.step == 7 and start.validation is not None
    assert [v["epoch"] for v in start.validation["curve"]] == [1]
    model, data, cfg, hook = gradual_setup(None)
    model.load_state_dict(payload["state_dict"])
    hook.load_state_dict(payload["gradual"])
    resumed = fit(model, data, cfg, hook, start)
    whole_model, data, cfg, whole_hook = gradual_setup(None)
    whole = fit(whole_model, data, cfg, whole_hook)
    assert resumed.val_curve == whole.val_curve and len(whole.val_curve) == 3
    assert resumed.best_epoch == whole.best_epoch is not None and whole.best_epoch >= 2
    for a, b in zip(model.state_dict().values(), whole_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_under_ema_the_average_is_what_is_validated_and_kept() -> None:
    """With `ema`, the training's result is the weights' average: each epoch's validation scores
    the average (the last epoch's score is the result's), and keep best keeps an average."""
    data = _data()
    cfg = TrainConfig(epochs=2, optimizer="adamw", lr=0.05, schedule="constant", seed=1, ema=0.5)
    model = _linear()
    stats = fit(model, data, cfg)
    assert stats.val_curve[-1] == {"epoch": 2, "step": 16, **validate(model, data)}
    cfg.keep_best = "loss"
    kept_model = _linear()
    kept = fit(kept_model, data, cfg)
    best = min(kept.val_curve, key=lambda v: v["loss"])
    assert validate(kept_model, data)["loss"] == pytest.approx(best["loss"])
